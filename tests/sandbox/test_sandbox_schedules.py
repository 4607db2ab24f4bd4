"""Schedules: create, unschedule, lookups, edits, execution by the clock, and their webhooks."""

import time

import pytest

from tests.sandbox.sandbox_helpers import FAR_EXPIRY, GOOD_CARD, INSUFFICIENT_CARD, schedule_item

DAY = 24 * 3600


@pytest.fixture
def now(sandbox):
    sandbox.freeze()
    return sandbox.now()


def test_schedule_creates_scheduled_entries_when_key_exists(iamport, now):
    iamport.issued("c1", customer_name="홍길동", customer_email="kim@example.kr")

    response = iamport.schedule("c1", schedule_item("sch-1", now + DAY, custom_data='{"sub": 7}'))

    body = response.json()
    assert response.status_code == 200 and body["code"] == 0
    (schedule,) = body["response"]
    assert schedule["schedule_status"] == "scheduled" and schedule["payment_status"] is None
    assert schedule["imp_uid"] is None
    assert schedule["executed_at"] == 0 and schedule["revoked_at"] == 0
    assert schedule["schedule_at"] == now + DAY and schedule["amount"] == 9900
    assert schedule["buyer_email"] == "kim@example.kr" and schedule["buyer_name"] == "홍길동"


def test_schedule_issues_key_first_when_customer_is_new_and_card_given(iamport, now):
    response = iamport.schedule(
        "c_new", schedule_item("sch-new", now + DAY), card_number=GOOD_CARD, expiry=FAR_EXPIRY, birth="900101"
    )

    assert response.json()["code"] == 0
    assert iamport.get("/subscribe/customers/c_new").json()["response"]["card_number"] == "4242-42**-****-4242"


def test_schedule_refuses_with_code_1_when_customer_unknown_and_no_card(iamport, now):
    response = iamport.schedule("ghost", schedule_item("sch-ghost", now + DAY))

    assert response.status_code == 200
    assert response.json() == {"code": 1, "message": "등록된 고객정보가 없습니다.", "response": None}


def test_schedule_refuses_with_code_1_when_merchant_uid_already_scheduled(iamport, now):
    iamport.issued("c1")
    iamport.schedule("c1", schedule_item("sch-dup", now + DAY))

    body = iamport.schedule("c1", schedule_item("sch-dup", now + 2 * DAY)).json()

    assert body["code"] == 1 and body["response"] is None
    assert iamport.get("/subscribe/payments/schedule/sch-dup").json()["response"]["schedule_at"] == now + DAY


def test_schedule_creates_nothing_when_one_item_of_the_batch_is_refused(iamport, now):
    iamport.issued("c1")
    iamport.schedule("c1", schedule_item("sch-taken", now + DAY))

    body = iamport.schedule("c1", schedule_item("sch-free", now + DAY), schedule_item("sch-taken", now + DAY)).json()

    assert body["code"] == 1
    assert iamport.get("/subscribe/payments/schedule/sch-free").status_code == 404


def test_schedule_returns_400_when_schedule_at_is_in_the_past(iamport, now):
    iamport.issued("c1")

    assert iamport.schedule("c1", schedule_item("sch-past", now - 1)).status_code == 400


def test_schedule_accepts_form_encoded_nested_schedules_when_sent_as_form(iamport, now):
    iamport.issued("c1")
    form = {
        "customer_uid": "c1",
        "schedules[0][merchant_uid]": "form-1",
        "schedules[0][schedule_at]": str(now + DAY),
        "schedules[0][amount]": "1000",
        "schedules[0][name]": "a",
        "schedules[1][merchant_uid]": "form-2",
        "schedules[1][schedule_at]": str(now + 2 * DAY),
        "schedules[1][amount]": "2000",
        "schedules[1][name]": "b",
    }

    response = iamport.post("/subscribe/payments/schedule", data=form)

    assert [s["merchant_uid"] for s in response.json()["response"]] == ["form-1", "form-2"]


def test_get_schedule_returns_404_when_merchant_uid_not_scheduled(iamport):
    response = iamport.get("/subscribe/payments/schedule/nothing-here")

    assert response.status_code == 404 and response.json()["code"] != 0


def test_unschedule_revokes_listed_merchant_uids_when_scheduled(iamport, now):
    iamport.issued("c1")
    iamport.schedule("c1", schedule_item("un-1", now + DAY), schedule_item("un-2", now + 2 * DAY))

    response = iamport.post("/subscribe/payments/unschedule", json={"customer_uid": "c1", "merchant_uid": ["un-1"]})

    (revoked,) = response.json()["response"]
    assert revoked["merchant_uid"] == "un-1" and revoked["schedule_status"] == "revoked"
    assert revoked["revoked_at"] == now
    assert iamport.get("/subscribe/payments/schedule/un-2").json()["response"]["schedule_status"] == "scheduled"


def test_unschedule_revokes_all_of_customer_when_merchant_uid_omitted(iamport, now):
    iamport.issued("c1")
    iamport.schedule("c1", schedule_item("all-1", now + DAY), schedule_item("all-2", now + 2 * DAY))

    response = iamport.post("/subscribe/payments/unschedule", data={"customer_uid": "c1"})

    assert sorted(s["merchant_uid"] for s in response.json()["response"]) == ["all-1", "all-2"]


def test_unschedule_accepts_form_array_when_merchant_uids_sent_as_brackets(iamport, now):
    iamport.issued("c1")
    iamport.schedule("c1", schedule_item("arr-1", now + DAY), schedule_item("arr-2", now + DAY))

    response = iamport.post(
        "/subscribe/payments/unschedule", data={"customer_uid": "c1", "merchant_uid[]": ["arr-1", "arr-2"]}
    )

    assert len(response.json()["response"]) == 2


def test_unschedule_returns_code_1_when_nothing_to_revoke(iamport, now):
    iamport.issued("c1")

    response = iamport.post("/subscribe/payments/unschedule", json={"customer_uid": "c1"})

    assert response.json() == {"code": 1, "message": "취소할 예약결제 기록이 존재하지 않습니다.", "response": None}


def test_update_schedule_moves_schedule_at_when_still_scheduled(iamport, now):
    iamport.issued("c1")
    iamport.schedule("c1", schedule_item("put-1", now + DAY))

    response = iamport.put("/subscribe/payments/schedule/put-1", json={"schedule_at": now + 3 * DAY})

    assert response.status_code == 200 and response.json()["response"]["schedule_at"] == now + 3 * DAY


@pytest.mark.parametrize("case", ["missing", "past", "revoked"])
def test_update_schedule_returns_400_when_rule_broken(iamport, now, case):
    iamport.issued("c1")
    iamport.schedule("c1", schedule_item("put-2", now + DAY))
    body = {"schedule_at": now + 2 * DAY}
    if case == "missing":
        body = {}
    elif case == "past":
        body = {"schedule_at": now - 10}
    else:
        iamport.post("/subscribe/payments/unschedule", json={"merchant_uid": ["put-2"]})

    response = iamport.put("/subscribe/payments/schedule/put-2", json=body)

    assert response.status_code == 400


def test_update_schedule_returns_404_when_merchant_uid_unknown(iamport, now):
    assert iamport.put("/subscribe/payments/schedule/ghost", json={"schedule_at": now + DAY}).status_code == 404


def test_clock_advance_executes_due_schedules_in_schedule_at_order(sandbox, iamport, now):
    iamport.issued("c1")
    iamport.schedule(
        "c1",
        schedule_item("late", now + 300),
        schedule_item("early", now + 100),
        schedule_item("middle", now + 200),
        schedule_item("future", now + 10 * DAY),
    )

    result = sandbox.advance(400)

    assert [e["merchant_uid"] for e in result["executed"]] == ["early", "middle", "late"]
    imp_uids = [e["imp_uid"] for e in result["executed"]]
    assert imp_uids == sorted(imp_uids)
    assert iamport.get("/subscribe/payments/schedule/future").json()["response"]["schedule_status"] == "scheduled"


def test_executed_schedule_records_paid_payment_with_scheduled_usage_when_card_good(sandbox, iamport, now):
    iamport.issued("c1")
    iamport.schedule("c1", schedule_item("exec-1", now + 60, custom_data='{"sub": 9}'))

    sandbox.advance(60)

    schedule = iamport.get("/subscribe/payments/schedule/exec-1").json()["response"]
    assert schedule["schedule_status"] == "executed" and schedule["payment_status"] == "paid"
    assert schedule["executed_at"] == now + 60 and schedule["imp_uid"]
    payment = iamport.payment(schedule["imp_uid"])
    assert payment["customer_uid_usage"] == "payment.scheduled" and payment["status"] == "paid"
    assert payment["custom_data"] == '{"sub": 9}' and payment["merchant_uid"] == "exec-1"


def test_executed_schedule_records_failure_when_card_declines(sandbox, iamport, now):
    iamport.issued("c1", INSUFFICIENT_CARD)
    iamport.schedule("c1", schedule_item("exec-fail", now + 60))

    sandbox.advance(60)

    schedule = iamport.get("/subscribe/payments/schedule/exec-fail").json()["response"]
    assert schedule["schedule_status"] == "executed" and schedule["payment_status"] == "failed"
    assert schedule["fail_reason"].startswith("[잔액부족]")
    assert iamport.payment(schedule["imp_uid"])["status"] == "failed"


def test_schedule_still_executes_and_fails_when_key_deleted_before_due(sandbox, iamport, now):
    iamport.issued("c1")
    iamport.schedule("c1", schedule_item("exec-deleted", now + 60))
    iamport.delete("/subscribe/customers/c1")

    sandbox.advance(60)

    schedule = iamport.get("/subscribe/payments/schedule/exec-deleted").json()["response"]
    assert schedule["schedule_status"] == "executed" and schedule["payment_status"] == "failed"


def test_background_thread_executes_due_schedule_when_clock_runs_on_its_own(sandbox, iamport):
    iamport.issued("c1")
    sandbox.freeze(False)
    iamport.schedule("c1", schedule_item("auto-1", sandbox.now() + 1))

    deadline = time.monotonic() + 4
    status = None
    while time.monotonic() < deadline:
        status = iamport.get("/subscribe/payments/schedule/auto-1").json()["response"]["schedule_status"]
        if status == "executed":
            break
        time.sleep(0.05)

    assert status == "executed"


def test_reschedule_puts_failed_schedule_back_when_new_time_in_future(sandbox, iamport, now):
    iamport.issued("c1", INSUFFICIENT_CARD)
    iamport.schedule("c1", schedule_item("re-1", now + 60))
    sandbox.advance(60)
    sandbox.set_card_behaviour("c1", "paid")

    response = iamport.post("/subscribe/payments/schedule/re-1/reschedule", json={"schedule_at": now + 600})

    schedule = response.json()["response"]
    assert schedule["schedule_status"] == "scheduled" and schedule["payment_status"] is None
    sandbox.advance(600)
    assert iamport.get("/subscribe/payments/schedule/re-1").json()["response"]["payment_status"] == "paid"
    assert iamport.get("/payments/findAll/re-1").json()["response"]["total"] == 2


@pytest.mark.parametrize("case", ["not_executed", "paid", "past"])
def test_reschedule_returns_400_when_schedule_not_failed_or_time_past(sandbox, iamport, now, case):
    iamport.issued("c1")
    iamport.schedule("c1", schedule_item("re-2", now + 60))
    schedule_at = now + 600
    if case == "paid":
        sandbox.advance(60)
    elif case == "past":
        iamport.post("/subscribe/payments/unschedule", json={"merchant_uid": ["re-2"]})
        schedule_at = now - 1

    response = iamport.post("/subscribe/payments/schedule/re-2/reschedule", json={"schedule_at": schedule_at})

    assert response.status_code == 400


def test_retry_charges_revoked_schedule_now_and_returns_payment(iamport, now):
    iamport.issued("c1")
    iamport.schedule("c1", schedule_item("retry-1", now + DAY))
    iamport.post("/subscribe/payments/unschedule", json={"merchant_uid": ["retry-1"]})

    response = iamport.post("/subscribe/payments/schedule/retry-1/retry")

    payment = response.json()["response"]
    assert payment["status"] == "paid" and payment["merchant_uid"] == "retry-1"
    assert payment["customer_uid_usage"] == "payment.scheduled"


def test_retry_returns_404_when_key_deleted(iamport, now):
    iamport.issued("c1")
    iamport.schedule("c1", schedule_item("retry-2", now + DAY))
    iamport.post("/subscribe/payments/unschedule", json={"merchant_uid": ["retry-2"]})
    iamport.delete("/subscribe/customers/c1")

    assert iamport.post("/subscribe/payments/schedule/retry-2/retry").status_code == 404


def test_list_schedules_filters_window_and_status_newest_first(iamport, now):
    iamport.issued("c1")
    iamport.schedule(
        "c1",
        schedule_item("ls-1", now + DAY),
        schedule_item("ls-2", now + 2 * DAY),
        schedule_item("ls-3", now + 3 * DAY),
        schedule_item("ls-out", now + 40 * DAY),
    )
    iamport.post("/subscribe/payments/unschedule", json={"merchant_uid": ["ls-2"]})
    window = {"schedule_from": now, "schedule_to": now + 30 * DAY}

    everything = iamport.get("/subscribe/payments/schedule", params=window).json()["response"]
    scheduled = iamport.get(
        "/subscribe/payments/schedule", params={**window, "schedule_status": "scheduled", "sorting": "scheduled"}
    ).json()["response"]

    assert [s["merchant_uid"] for s in everything["list"]] == ["ls-3", "ls-2", "ls-1"]
    assert everything["total"] == 3
    assert [s["merchant_uid"] for s in scheduled["list"]] == ["ls-1", "ls-3"]


def test_list_schedules_pages_when_limit_smaller_than_total(iamport, now):
    iamport.issued("c1")
    iamport.schedule("c1", *[schedule_item(f"pg-{i}", now + DAY + i) for i in range(5)])

    page = iamport.get(
        "/subscribe/payments/schedule",
        params={"schedule_from": now, "schedule_to": now + 2 * DAY, "limit": 2, "page": 2, "sorting": "scheduled"},
    ).json()["response"]

    assert [s["merchant_uid"] for s in page["list"]] == ["pg-2", "pg-3"]
    assert (page["total"], page["previous"], page["next"]) == (5, 1, 3)


def test_list_schedules_returns_400_when_window_exceeds_three_months(iamport, now):
    response = iamport.get("/subscribe/payments/schedule", params={"schedule_from": now, "schedule_to": now + 93 * DAY})

    assert response.status_code == 400


def test_list_schedules_accepts_window_of_89_days(iamport, now):
    response = iamport.get("/subscribe/payments/schedule", params={"schedule_from": now, "schedule_to": now + 89 * DAY})

    assert response.status_code == 200


def test_list_schedules_returns_400_when_window_params_missing(iamport):
    assert iamport.get("/subscribe/payments/schedule").status_code == 400


def test_customer_schedules_filters_by_hyphenated_schedule_status(iamport, now):
    iamport.issued("c1")
    iamport.issued("c2")
    iamport.schedule("c1", schedule_item("cs-1", now + DAY), schedule_item("cs-2", now + 2 * DAY))
    iamport.schedule("c2", schedule_item("cs-other", now + DAY))
    iamport.post("/subscribe/payments/unschedule", json={"merchant_uid": ["cs-1"]})
    params = {"from": now, "to": now + 10 * DAY}

    everything = iamport.get("/subscribe/payments/schedule/customers/c1", params=params).json()["response"]
    revoked = iamport.get(
        "/subscribe/payments/schedule/customers/c1", params={**params, "schedule-status": "revoked"}
    ).json()["response"]

    assert [s["merchant_uid"] for s in everything["list"]] == ["cs-2", "cs-1"]
    assert [s["merchant_uid"] for s in revoked["list"]] == ["cs-1"]


def test_customer_schedules_returns_400_when_window_exceeds_three_months(iamport, now):
    iamport.issued("c1")

    response = iamport.get("/subscribe/payments/schedule/customers/c1", params={"from": now, "to": now + 100 * DAY})

    assert response.status_code == 400


def test_schedule_payment_status_becomes_cancelled_when_its_payment_fully_refunded(sandbox, iamport, now):
    iamport.issued("c1")
    iamport.schedule("c1", schedule_item("sch-refund", now + 60))
    sandbox.advance(60)
    imp_uid = iamport.get("/subscribe/payments/schedule/sch-refund").json()["response"]["imp_uid"]

    iamport.cancel(imp_uid=imp_uid)

    assert iamport.get("/subscribe/payments/schedule/sch-refund").json()["response"]["payment_status"] == "cancelled"


def test_schedule_is_refused_when_checking_amount_charge_declines(iamport, now):
    iamport.issued("c1", INSUFFICIENT_CARD)

    body = iamport.schedule("c1", schedule_item("chk-1", now + DAY), checking_amount=1000).json()

    assert body["code"] == -1 and "[잔액부족]" in body["message"]
    assert iamport.get("/subscribe/payments/schedule/chk-1").status_code == 404


def test_unschedule_returns_400_when_neither_customer_uid_nor_merchant_uid_given(iamport):
    assert iamport.post("/subscribe/payments/unschedule", json={}).status_code == 400
