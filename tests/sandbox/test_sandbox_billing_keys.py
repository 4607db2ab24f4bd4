"""Billing keys: /subscribe/customers/{customer_uid} issue, get, delete, multi-get, payments, schedules."""

import pytest

from tests.sandbox.sandbox_helpers import (
    EXPIRED_CARD,
    FAR_EXPIRY,
    GOOD_CARD,
    INSUFFICIENT_CARD,
    LIMIT_CARD,
    LOST_CARD,
    REFUSED_CARD,
    schedule_item,
)

UNKNOWN_KEY_MESSAGE = "요청하신 customer_uid(ghost)로 등록된 정보를 찾을 수 없습니다."


def test_issue_returns_masked_card_and_sandbox_flag_when_card_is_good(iamport):
    response = iamport.issue("user1_card1", customer_name="홍길동", customer_email="a@b.kr")

    body = response.json()
    assert response.status_code == 200 and body["code"] == 0
    key = body["response"]
    assert key["customer_uid"] == "user1_card1"
    assert key["card_number"] == "4242-42**-****-4242"
    assert key["card_name"] == "신한카드"
    assert key["sandbox"] is True
    assert key["pg_provider"] and key["pg_id"]
    assert key["customer_name"] == "홍길동" and key["customer_email"] == "a@b.kr"
    assert key["inserted"] > 0 and key["updated"] == key["inserted"]


@pytest.mark.parametrize("card", [INSUFFICIENT_CARD, LIMIT_CARD, LOST_CARD])
def test_issue_succeeds_when_card_only_fails_at_charge_time(iamport, card):
    response = iamport.issue("user_soft", card)

    assert response.json()["code"] == 0


def test_issue_is_refused_with_code_minus_1_when_card_is_the_refused_test_card(iamport):
    response = iamport.issue("user_refused", REFUSED_CARD)

    body = response.json()
    assert response.status_code == 200
    assert body == {"code": -1, "message": "카드정보 인증 및 빌키 발급에 실패하였습니다.", "response": None}
    assert iamport.get("/subscribe/customers/user_refused").status_code == 404


def test_issue_is_refused_when_card_is_the_expired_test_card(iamport):
    body = iamport.issue("user_expired", EXPIRED_CARD).json()

    assert body["code"] == -1 and "만료" in body["message"]


def test_issue_is_refused_when_expiry_month_passed_by_sandbox_clock(sandbox, iamport):
    sandbox.set_now(4102444800)  # 2100-01-01 UTC, after FAR_EXPIRY

    body = iamport.issue("user_old").json()

    assert body["code"] == -1 and "만료" in body["message"]


def test_issue_is_refused_as_invalid_number_when_luhn_check_fails(iamport):
    body = iamport.issue("user_bad", "1234-5678-9012-3456").json()

    assert body == {"code": -1, "message": "유효하지않은 카드번호를 입력하셨습니다.", "response": None}


def test_issue_accepts_other_number_as_good_card_when_luhn_valid(iamport):
    key = iamport.issued("user_other", "5555-5555-5555-4444")
    payment = iamport.paid("user_other", "order-other")

    assert key["card_number"] == "5555-55**-****-4444"
    assert payment["status"] == "paid"


def test_issue_is_refused_when_card_number_lacks_dashes(iamport):
    body = iamport.issue("user_nodash", "4242424242424242").json()

    assert body["code"] == -1 and body["message"] == "유효하지않은 카드번호를 입력하셨습니다."


def test_issue_is_refused_when_expiry_is_not_yyyy_mm(iamport):
    body = iamport.issue("user_expiry", expiry="12/30").json()

    assert body["code"] == -1 and "YYYY-MM" in body["message"]


def test_issue_returns_400_when_card_number_missing(iamport):
    response = iamport.post("/subscribe/customers/user_x", json={"expiry": FAR_EXPIRY, "channel_key": "k"})

    assert response.status_code == 400
    assert response.json()["code"] != 0 and "card_number" in response.json()["message"]


def test_issue_accepts_legacy_pg_when_channel_key_absent(iamport):
    response = iamport.post(
        "/subscribe/customers/user_pg", json={"card_number": GOOD_CARD, "expiry": FAR_EXPIRY, "pg": "nice.nictest04m"}
    )

    assert response.json()["code"] == 0


def test_issue_returns_400_when_neither_channel_key_nor_pg_sent(iamport):
    response = iamport.post("/subscribe/customers/user_none", json={"card_number": GOOD_CARD, "expiry": FAR_EXPIRY})

    assert response.status_code == 400
    assert "channel_key" in response.json()["message"]


def test_issue_returns_400_when_customer_uid_longer_than_80(iamport):
    response = iamport.issue("u" * 81)

    assert response.status_code == 400


def test_issue_replaces_card_when_same_customer_uid_issued_again(iamport):
    first = iamport.issued("user_swap", GOOD_CARD)

    second = iamport.issued("user_swap", INSUFFICIENT_CARD)

    assert second["card_number"] == "4000-00**-****-9995"
    assert second["inserted"] == first["inserted"]
    fetched = iamport.get("/subscribe/customers/user_swap").json()["response"]
    assert fetched["card_number"] == "4000-00**-****-9995"
    assert iamport.again("user_swap", "after-swap").json()["response"]["status"] == "failed"


def test_issue_accepts_form_encoded_body_when_sent_as_form(iamport):
    response = iamport.post(
        "/subscribe/customers/user_form",
        data={"card_number": GOOD_CARD, "expiry": FAR_EXPIRY, "birth": "900101", "pwd_2digit": "12", "pg": "nice"},
    )

    assert response.json()["code"] == 0


def test_get_key_returns_404_with_iamport_message_when_customer_uid_unknown(iamport):
    response = iamport.get("/subscribe/customers/ghost")

    assert response.status_code == 404
    assert response.json() == {"code": 1, "message": UNKNOWN_KEY_MESSAGE, "response": None}


def test_delete_key_returns_deleted_key_and_forgets_it_when_key_exists(iamport):
    iamport.issued("user_del")

    response = iamport.delete("/subscribe/customers/user_del", params={"reason": "해지"})

    assert response.status_code == 200 and response.json()["response"]["customer_uid"] == "user_del"
    assert iamport.get("/subscribe/customers/user_del").status_code == 404
    assert iamport.again("user_del", "after-delete").json()["message"] == "등록되지 않은 구매자입니다."


def test_delete_key_returns_404_when_customer_uid_unknown(iamport):
    response = iamport.delete("/subscribe/customers/ghost")

    assert response.status_code == 404
    assert response.json()["message"] == UNKNOWN_KEY_MESSAGE


def test_multi_get_returns_all_keys_when_every_customer_uid_exists(iamport):
    iamport.issued("multi_a")
    iamport.issued("multi_b")

    response = iamport.get("/subscribe/customers", params={"customer_uid[]": ["multi_a", "multi_b"]})

    assert response.status_code == 200
    assert [key["customer_uid"] for key in response.json()["response"]] == ["multi_a", "multi_b"]


def test_multi_get_returns_207_with_found_keys_when_some_are_missing(iamport):
    iamport.issued("multi_a")

    response = iamport.get("/subscribe/customers", params={"customer_uid[]": ["multi_a", "ghost"]})

    assert response.status_code == 207
    assert [key["customer_uid"] for key in response.json()["response"]] == ["multi_a"]


def test_multi_get_returns_404_when_no_customer_uid_exists(iamport):
    response = iamport.get("/subscribe/customers", params={"customer_uid[]": ["ghost", "ghost2"]})

    assert response.status_code == 404


def test_key_payments_lists_charges_newest_first_when_key_was_charged(sandbox, iamport):
    sandbox.freeze()
    iamport.issued("user_hist")
    first = iamport.paid("user_hist", "hist-1")
    sandbox.advance(10)
    second = iamport.paid("user_hist", "hist-2")

    page = iamport.get("/subscribe/customers/user_hist/payments", params={"page": 1}).json()["response"]

    assert page["total"] == 2
    assert [p["imp_uid"] for p in page["list"]] == [second["imp_uid"], first["imp_uid"]]
    assert page["previous"] == 0 and page["next"] == 0


def test_key_schedules_alias_lists_schedules_when_called_on_customers_path(sandbox, iamport):
    now = sandbox.now()
    iamport.issued("user_sch")
    iamport.schedule("user_sch", schedule_item("alias-1", now + 3600))

    response = iamport.get("/subscribe/customers/user_sch/schedules", params={"from": now, "to": now + 86400})

    assert response.status_code == 200
    assert [s["merchant_uid"] for s in response.json()["response"]["list"]] == ["alias-1"]
