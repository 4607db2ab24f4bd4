"""GET /payments/status/all as 대사 reads it (paging, limit, the time field of each status), and the controls
that make the sandbox disagree with the merchant's books."""

from iamport_sandbox.control import SandboxControlError

DAY = 24 * 3600


def _listing(iamport, **params):
    response = iamport.get("/payments/status/all", params=params)
    assert response.status_code == 200, response.text
    return response.json()["response"]


def test_status_all_pages_by_limit_when_more_payments_than_one_page(sandbox, iamport):
    sandbox.freeze()
    now = sandbox.now()
    sandbox.bulk_payments(prefix="pg-", count=5, amount=1000, from_=now - 100, to=now - 10)

    pages = [
        _listing(iamport, **{"from": now - DAY, "to": now, "limit": 2, "page": p, "sorting": "started"})
        for p in (1, 2, 3)
    ]

    assert [page["total"] for page in pages] == [5, 5, 5]
    assert [page["next"] for page in pages] == [2, 3, 0]
    assert [page["previous"] for page in pages] == [0, 1, 2]
    assert [p["merchant_uid"] for page in pages for p in page["list"]] == [f"pg-{i}" for i in range(5)]


def test_status_all_refuses_limit_above_1000(iamport):
    response = iamport.get("/payments/status/all", params={"limit": 1001})

    assert response.status_code == 400 and response.json()["code"] != 0


def test_status_all_filters_each_payment_on_the_time_of_its_own_status(sandbox, iamport):
    sandbox.freeze()
    start = sandbox.now()
    paid = sandbox.direct_payment("tf-paid", 5000, paid_at=start - 3 * DAY)
    refunded = sandbox.direct_payment("tf-refunded", 7000, paid_at=start - 3 * DAY)
    sandbox.console_refund(refunded["imp_uid"])  # fully refunded now: cancelled_at = start

    three_days_ago = _listing(iamport, **{"from": start - 3 * DAY, "to": start - 2 * DAY})
    today = _listing(iamport, **{"from": start - 60, "to": start})

    assert [p["imp_uid"] for p in three_days_ago["list"]] == [paid["imp_uid"]]
    assert [p["imp_uid"] for p in today["list"]] == [refunded["imp_uid"]]


def test_status_all_window_includes_both_ends(sandbox, iamport):
    sandbox.freeze()
    now = sandbox.now()
    sandbox.direct_payment("edge-from", 1000, paid_at=now - 100)
    sandbox.direct_payment("edge-to", 1000, paid_at=now - 50)
    sandbox.direct_payment("edge-after", 1000, paid_at=now - 49)

    listing = _listing(iamport, **{"from": now - 100, "to": now - 50})

    assert sorted(p["merchant_uid"] for p in listing["list"]) == ["edge-from", "edge-to"]


def test_console_refund_cancels_without_a_webhook(sandbox, iamport):
    sandbox.set_default_notice_url("http://127.0.0.1:9/unreachable")
    payment = sandbox.direct_payment("cr-1", 10000)

    after = sandbox.console_refund(payment["imp_uid"], amount=3000)

    assert after["status"] == "paid" and after["cancel_amount"] == 3000
    assert after["cancel_history"][0]["cancellation_id"]
    assert sandbox.webhooks() == []
    assert iamport.payment(payment["imp_uid"])["cancel_amount"] == 3000


def test_direct_payment_refuses_a_merchant_uid_already_paid(sandbox):
    sandbox.direct_payment("dup-1", 1000)

    try:
        sandbox.direct_payment("dup-1", 1000)
    except SandboxControlError as exc:
        assert exc.status == 400
    else:
        raise AssertionError("a second paid payment under one merchant_uid was accepted")


def test_set_payment_amount_changes_what_lookups_report(sandbox, iamport):
    payment = sandbox.direct_payment("amt-1", 9900)

    sandbox.set_payment_amount(payment["imp_uid"], 19800)

    assert iamport.payment(payment["imp_uid"])["amount"] == 19800
