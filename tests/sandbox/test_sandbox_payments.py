"""Payment lookups (/payments/...) and amount pre-registration (/payments/prepare)."""

import pytest

from tests.sandbox.sandbox_helpers import INSUFFICIENT_CARD

DAY = 24 * 3600


def test_get_payment_returns_404_when_include_sandbox_not_set(iamport):
    iamport.issued("c1")
    paid = iamport.paid("c1", "p-1")

    response = iamport.get(f"/payments/{paid['imp_uid']}")

    assert response.status_code == 404
    assert response.json() == {"code": 1, "message": "존재하지 않는 결제정보입니다.", "response": None}


def test_get_payment_returns_payment_when_include_sandbox_true(iamport):
    iamport.issued("c1")
    paid = iamport.paid("c1", "p-1")

    response = iamport.get(f"/payments/{paid['imp_uid']}", params={"include_sandbox": "true"})

    assert response.status_code == 200 and response.json()["response"] == paid


def test_get_payment_returns_404_when_imp_uid_unknown(iamport):
    assert iamport.get("/payments/imp_999999999999", params={"include_sandbox": "true"}).status_code == 404


def test_multi_get_returns_207_with_found_payments_when_some_ids_missing(iamport):
    iamport.issued("c1")
    paid = iamport.paid("c1", "p-multi")

    response = iamport.get(
        "/payments", params={"imp_uid[]": [paid["imp_uid"], "imp_000000000000"], "merchant_uid[]": ["p-multi"]}
    )

    assert response.status_code == 207
    assert [p["imp_uid"] for p in response.json()["response"]] == [paid["imp_uid"], paid["imp_uid"]]


def test_multi_get_returns_200_when_all_ids_found(iamport):
    iamport.issued("c1")
    a = iamport.paid("c1", "p-a")
    b = iamport.paid("c1", "p-b")

    response = iamport.get("/payments", params={"imp_uid[]": [a["imp_uid"], b["imp_uid"]]})

    assert response.status_code == 200 and len(response.json()["response"]) == 2


def test_multi_get_returns_404_when_no_id_found(iamport):
    assert iamport.get("/payments", params={"imp_uid[]": ["imp_000000000000"]}).status_code == 404


def test_find_returns_latest_attempt_when_merchant_uid_has_several(sandbox, iamport):
    sandbox.freeze()
    iamport.issued("c1", INSUFFICIENT_CARD)
    failed = iamport.again("c1", "p-find").json()["response"]
    sandbox.set_card_behaviour("c1", "paid")
    paid = iamport.paid("c1", "p-find")

    latest = iamport.get("/payments/find/p-find").json()["response"]
    oldest = iamport.get("/payments/find/p-find", params={"sorting": "started"}).json()["response"]
    only_failed = iamport.get("/payments/find/p-find/failed").json()["response"]

    assert latest["imp_uid"] == paid["imp_uid"]
    assert oldest["imp_uid"] == failed["imp_uid"]
    assert only_failed["imp_uid"] == failed["imp_uid"]


def test_find_returns_404_when_no_payment_in_that_status(iamport):
    iamport.issued("c1")
    iamport.paid("c1", "p-status")

    assert iamport.get("/payments/find/p-status/cancelled").status_code == 404
    assert iamport.get("/payments/find/never-used").status_code == 404


def test_find_all_pages_attempts_when_limit_smaller_than_total(sandbox, iamport):
    iamport.issued("c1", INSUFFICIENT_CARD)
    attempts = [iamport.again("c1", "p-many").json()["response"]["imp_uid"] for _ in range(3)]

    page = iamport.get("/payments/findAll/p-many", params={"limit": 2, "page": 1}).json()["response"]
    failed_only = iamport.get("/payments/findAll/p-many/failed").json()["response"]

    assert page["total"] == 3 and page["previous"] == 0 and page["next"] == 2
    assert [p["imp_uid"] for p in page["list"]] == [attempts[2], attempts[1]]
    assert failed_only["total"] == 3


def test_find_all_returns_404_when_merchant_uid_never_used(iamport):
    response = iamport.get("/payments/findAll/never-used")

    assert response.status_code == 404 and response.json()["code"] != 0


def test_payments_by_status_lists_only_that_status_within_window(sandbox, iamport):
    sandbox.freeze()
    iamport.issued("ok")
    iamport.issued("bad", INSUFFICIENT_CARD)
    paid = iamport.paid("ok", "st-1")
    iamport.again("bad", "st-2")

    listing = iamport.get("/payments/status/paid").json()["response"]
    everything = iamport.get("/payments/status/all").json()["response"]

    assert [p["imp_uid"] for p in listing["list"]] == [paid["imp_uid"]]
    assert everything["total"] == 2


def test_payments_by_status_excludes_payments_older_than_default_90_days(sandbox, iamport):
    sandbox.freeze()
    iamport.issued("ok")
    iamport.paid("ok", "st-old")
    sandbox.advance(91 * DAY)
    iamport.token(refresh=True)

    assert iamport.get("/payments/status/paid").json()["response"]["total"] == 0


def test_payments_by_status_returns_400_when_window_exceeds_90_days(sandbox, iamport):
    now = sandbox.now()

    response = iamport.get("/payments/status/paid", params={"from": now - 91 * DAY, "to": now})

    assert response.status_code == 400


def test_payments_by_status_returns_400_when_status_unknown(iamport):
    assert iamport.get("/payments/status/weird").status_code == 400


def test_prepare_registers_amount_when_merchant_uid_new(iamport):
    response = iamport.post("/payments/prepare", json={"merchant_uid": "prep-1", "amount": 9900})

    assert response.json()["response"]["amount"] == 9900
    assert iamport.get("/payments/prepare/prep-1").json()["response"]["amount"] == 9900


def test_prepare_refuses_with_code_1_when_merchant_uid_already_prepared(iamport):
    iamport.post("/payments/prepare", json={"merchant_uid": "prep-1", "amount": 9900})

    response = iamport.post("/payments/prepare", json={"merchant_uid": "prep-1", "amount": 100})

    assert response.json()["code"] == 1
    assert iamport.get("/payments/prepare/prep-1").json()["response"]["amount"] == 9900


def test_prepare_update_changes_amount_when_registered(iamport):
    iamport.post("/payments/prepare", data={"merchant_uid": "prep-2", "amount": "9900"})

    iamport.put("/payments/prepare", json={"merchant_uid": "prep-2", "amount": 12000})

    assert iamport.get("/payments/prepare/prep-2").json()["response"]["amount"] == 12000


@pytest.mark.parametrize("method", ["put", "get"])
def test_prepare_returns_404_when_merchant_uid_not_registered(iamport, method):
    if method == "put":
        response = iamport.put("/payments/prepare", json={"merchant_uid": "ghost", "amount": 1})
    else:
        response = iamport.get("/payments/prepare/ghost")

    assert response.status_code == 404
