"""Charging keys: /subscribe/payments/again and /onetime, decline shapes, merchant_uid reuse, limits."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.sandbox.sandbox_helpers import (
    EXPIRED_CARD,
    FAR_EXPIRY,
    GOOD_CARD,
    INSUFFICIENT_CARD,
    LIMIT_CARD,
    LOST_CARD,
    REFUSED_CARD,
    Iamport,
)


def test_again_returns_paid_payment_with_iamport_fields_when_card_is_good(iamport):
    iamport.issued("c1")

    response = iamport.again("c1", "order-1", 9900, buyer_email="a@b.kr", custom_data='{"sub": 1}')

    body = response.json()
    assert response.status_code == 200 and body["code"] == 0
    payment = body["response"]
    assert payment["status"] == "paid"
    assert payment["imp_uid"].startswith("imp_") and len(payment["imp_uid"]) == 16
    assert payment["imp_uid"][4:].isdigit()
    assert payment["amount"] == 9900 and payment["cancel_amount"] == 0
    assert payment["paid_at"] > 0 and payment["failed_at"] == 0 and payment["cancelled_at"] == 0
    assert payment["channel"] == "api" and payment["pay_method"] == "card"
    assert payment["customer_uid"] == "c1" and payment["customer_uid_usage"] == "payment"
    assert payment["card_number"] == "4242-42**-****-4242"
    assert payment["pg_tid"] and payment["apply_num"] and payment["receipt_url"]
    assert payment["custom_data"] == '{"sub": 1}' and payment["buyer_email"] == "a@b.kr"
    assert payment["sandbox"] is True


def test_again_assigns_sequential_imp_uids_when_charging_twice(iamport):
    iamport.issued("c1")

    first = iamport.paid("c1", "seq-1")
    second = iamport.paid("c1", "seq-2")

    assert int(second["imp_uid"][4:]) == int(first["imp_uid"][4:]) + 1


@pytest.mark.parametrize(
    ("card", "reason_tag"),
    [(INSUFFICIENT_CARD, "[잔액부족]"), (LIMIT_CARD, "[한도초과]"), (LOST_CARD, "[분실/도난 카드]")],
)
def test_again_returns_code_0_and_failed_payment_when_card_is_declined(iamport, card, reason_tag):
    iamport.issued("c_decl", card)

    response = iamport.again("c_decl", "order-declined")

    body = response.json()
    assert response.status_code == 200
    assert body["code"] == 0
    payment = body["response"]
    assert payment["status"] == "failed"
    assert payment["fail_reason"].startswith(reason_tag)
    assert payment["failed_at"] > 0 and payment["paid_at"] == 0
    assert payment["imp_uid"].startswith("imp_")
    assert iamport.payment(payment["imp_uid"])["status"] == "failed"


def test_again_returns_code_1_and_null_response_when_customer_uid_unknown(iamport):
    response = iamport.again("ghost", "order-ghost")

    assert response.status_code == 200
    assert response.json() == {"code": 1, "message": "등록되지 않은 구매자입니다.", "response": None}
    assert iamport.get("/payments/findAll/order-ghost").status_code == 404


def test_again_refuses_with_code_1_when_merchant_uid_already_paid(iamport):
    iamport.issued("c1")
    iamport.paid("c1", "order-dup")

    body = iamport.again("c1", "order-dup").json()

    assert body["code"] == 1 and body["response"] is None and "merchant_uid" in body["message"]
    assert iamport.get("/payments/findAll/order-dup").json()["response"]["total"] == 1


def test_again_refuses_when_merchant_uid_was_paid_then_refunded(iamport):
    iamport.issued("c1")
    paid = iamport.paid("c1", "order-refunded")
    assert iamport.cancel(imp_uid=paid["imp_uid"]).json()["code"] == 0

    body = iamport.again("c1", "order-refunded").json()

    assert body["code"] == 1


def test_again_accepts_merchant_uid_again_when_earlier_attempts_only_failed(sandbox, iamport):
    iamport.issued("c1", INSUFFICIENT_CARD)
    failed = iamport.again("c1", "order-retry").json()["response"]
    sandbox.set_card_behaviour("c1", "paid")

    paid = iamport.paid("c1", "order-retry")

    listing = iamport.get("/payments/findAll/order-retry").json()["response"]
    assert listing["total"] == 2
    assert {p["imp_uid"] for p in listing["list"]} == {failed["imp_uid"], paid["imp_uid"]}


def test_again_pays_merchant_uid_only_once_when_same_order_is_sent_concurrently(sandbox, sandbox_server):
    client = Iamport(sandbox_server.url)
    client.issued("c_race")
    token = client.token()

    def charge(_):
        return requests.post(
            f"{sandbox_server.url}/subscribe/payments/again",
            json={"customer_uid": "c_race", "merchant_uid": "order-race", "amount": 1000, "name": "x"},
            headers={"Authorization": token},
            timeout=10,
        ).json()

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(charge, range(16)))

    assert sum(1 for r in results if r["code"] == 0 and r["response"]["status"] == "paid") == 1
    assert sum(1 for r in results if r["code"] == 1) == 15


@pytest.mark.parametrize(
    ("field", "value"), [("merchant_uid", "m" * 41), ("customer_uid", "c" * 81), ("name", "n" * 41)]
)
def test_again_returns_400_envelope_when_field_exceeds_max_length(iamport, field, value):
    iamport.issued("c1")
    body = {"customer_uid": "c1", "merchant_uid": "order-long", "amount": 100, "name": "x", field: value}

    response = iamport.post("/subscribe/payments/again", json=body)

    assert response.status_code == 400
    assert response.json()["code"] != 0 and field in response.json()["message"]


def test_again_accepts_field_at_exact_max_length(iamport):
    iamport.issued("c" * 80)

    payment = iamport.paid("c" * 80, "m" * 40, name="n" * 40)

    assert payment["merchant_uid"] == "m" * 40


@pytest.mark.parametrize("missing", ["customer_uid", "merchant_uid", "amount", "name"])
def test_again_returns_400_when_required_field_missing(iamport, missing):
    iamport.issued("c1")
    body = {"customer_uid": "c1", "merchant_uid": "order-missing", "amount": 100, "name": "x"}
    del body[missing]

    response = iamport.post("/subscribe/payments/again", json=body)

    assert response.status_code == 400
    assert response.json()["response"] is None and missing in response.json()["message"]


def test_again_returns_400_when_amount_is_v2_style_object(iamport):
    iamport.issued("c1")

    response = iamport.again("c1", "order-v2", amount={"total": 9900})

    assert response.status_code == 400


def test_again_returns_400_when_amount_is_not_positive(iamport):
    iamport.issued("c1")

    assert iamport.again("c1", "order-zero", amount=0).status_code == 400


def test_again_accepts_form_encoded_body_when_sent_as_form(iamport):
    iamport.issued("c1")

    response = iamport.post(
        "/subscribe/payments/again",
        data={"customer_uid": "c1", "merchant_uid": "order-form", "amount": "12000", "name": "폼 결제"},
    )

    payment = response.json()["response"]
    assert payment["status"] == "paid" and payment["amount"] == 12000 and payment["name"] == "폼 결제"


def test_again_stores_default_vat_when_tax_free_and_vat_not_sent(sandbox, iamport):
    iamport.issued("c1")
    iamport.paid("c1", "order-vat", 10_000)
    iamport.paid("c1", "order-vat-tf", 10_000, tax_free=1_000)
    iamport.paid("c1", "order-vat-zero", 10_000, vat_amount=0)

    ledger = {p["merchant_uid"]: p["_sandbox"] for p in sandbox.payments()}

    assert (ledger["order-vat"]["tax_free"], ledger["order-vat"]["vat_amount"]) == (0, 909)
    assert (ledger["order-vat-tf"]["tax_free"], ledger["order-vat-tf"]["vat_amount"]) == (1_000, 818)
    assert ledger["order-vat-zero"]["vat_amount"] == 0


def test_card_behaviour_control_changes_next_charge_when_set_on_issued_key(sandbox, iamport):
    iamport.issued("c1")
    sandbox.set_card_behaviour("c1", "limit_exceeded")

    payment = iamport.again("c1", "order-behaviour").json()["response"]

    assert payment["status"] == "failed" and payment["fail_reason"].startswith("[한도초과]")


def test_onetime_charges_raw_card_without_saving_key_when_customer_uid_absent(iamport):
    response = iamport.post(
        "/subscribe/payments/onetime",
        json={"merchant_uid": "one-1", "amount": 5000, "card_number": GOOD_CARD, "expiry": FAR_EXPIRY, "name": "단건"},
    )

    payment = response.json()["response"]
    assert payment["status"] == "paid" and payment["customer_uid"] is None
    assert payment["customer_uid_usage"] == "payment"


def test_onetime_saves_key_and_charges_when_customer_uid_given(iamport):
    response = iamport.post(
        "/subscribe/payments/onetime",
        json={
            "merchant_uid": "one-2",
            "amount": 5000,
            "card_number": GOOD_CARD,
            "expiry": FAR_EXPIRY,
            "customer_uid": "c_one",
            "buyer_name": "홍길동",
        },
    )

    payment = response.json()["response"]
    assert payment["status"] == "paid" and payment["customer_uid"] == "c_one"
    key = iamport.get("/subscribe/customers/c_one").json()["response"]
    assert key["customer_name"] == "홍길동"
    assert iamport.paid("c_one", "one-2-next")["status"] == "paid"


def test_onetime_saves_key_but_returns_failed_payment_when_card_declines(iamport):
    body = {
        "merchant_uid": "one-3",
        "amount": 5000,
        "card_number": LOST_CARD,
        "expiry": FAR_EXPIRY,
        "customer_uid": "c3",
    }

    payment = iamport.post("/subscribe/payments/onetime", json=body).json()["response"]

    assert payment["status"] == "failed" and payment["fail_reason"].startswith("[분실/도난 카드]")
    assert iamport.get("/subscribe/customers/c3").status_code == 200


@pytest.mark.parametrize(
    ("card", "message"),
    [
        (REFUSED_CARD, "카드정보 인증에 실패하였습니다."),
        ("1234-5678-9012-3456", "유효하지않은 카드번호를 입력하셨습니다."),
    ],
)
def test_onetime_returns_code_minus_1_when_card_is_refused(iamport, card, message):
    body = {"merchant_uid": "one-4", "amount": 5000, "card_number": card, "expiry": FAR_EXPIRY}

    response = iamport.post("/subscribe/payments/onetime", json=body)

    assert response.json() == {"code": -1, "message": message, "response": None}


def test_onetime_returns_code_minus_1_when_card_expired(iamport):
    body = {"merchant_uid": "one-5", "amount": 5000, "card_number": EXPIRED_CARD, "expiry": FAR_EXPIRY}

    assert iamport.post("/subscribe/payments/onetime", json=body).json()["code"] == -1


def test_onetime_refuses_when_merchant_uid_already_paid(iamport):
    iamport.issued("c1")
    iamport.paid("c1", "one-dup")
    body = {"merchant_uid": "one-dup", "amount": 5000, "card_number": GOOD_CARD, "expiry": FAR_EXPIRY}

    assert iamport.post("/subscribe/payments/onetime", json=body).json()["code"] == 1


def test_request_log_records_charge_exactly_once_when_sent_once(sandbox, iamport):
    iamport.issued("c1")
    iamport.paid("c1", "order-logged")

    charges = [r for r in sandbox.requests_log() if r["endpoint"] == "again"]

    assert len(charges) == 1
    assert charges[0]["merchant_uid"] == "order-logged" and charges[0]["status"] == 200
    assert charges[0]["method"] == "POST" and charges[0]["path"] == "/subscribe/payments/again"
