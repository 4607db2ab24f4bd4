"""Refunds: POST /payments/cancel (full, partial, checksum, precedence, refusals)."""

import pytest

from tests.sandbox.sandbox_helpers import INSUFFICIENT_CARD


@pytest.fixture
def paid(iamport):
    iamport.issued("c1")
    return iamport.paid("c1", "order-refund", 10_000)


def test_cancel_refunds_everything_when_amount_omitted(sandbox, iamport, paid):
    sandbox.freeze()

    response = iamport.cancel(imp_uid=paid["imp_uid"], reason="고객 요청")

    payment = response.json()["response"]
    assert response.status_code == 200 and response.json()["code"] == 0
    assert payment["status"] == "cancelled" and payment["cancel_amount"] == 10_000
    assert payment["cancelled_at"] == sandbox.now() and payment["cancel_reason"] == "고객 요청"
    (item,) = payment["cancel_history"]
    assert item["amount"] == 10_000 and item["reason"] == "고객 요청"
    assert item["cancellation_id"] and item["pg_tid"] and item["receipt_url"]
    assert item["cancelled_at"] == sandbox.now()


def test_cancel_refunds_everything_when_amount_is_zero(iamport, paid):
    payment = iamport.cancel(imp_uid=paid["imp_uid"], amount=0).json()["response"]

    assert payment["status"] == "cancelled" and payment["cancel_amount"] == 10_000


def test_cancel_keeps_status_paid_when_refund_is_partial(iamport, paid):
    payment = iamport.cancel(imp_uid=paid["imp_uid"], amount=3_000).json()["response"]

    assert payment["status"] == "paid"
    assert payment["cancel_amount"] == 3_000 and payment["cancelled_at"] == 0
    assert len(payment["cancel_history"]) == 1
    assert iamport.payment(paid["imp_uid"])["cancel_amount"] == 3_000


def test_cancel_becomes_cancelled_when_partials_reach_the_amount(iamport, paid):
    iamport.cancel(imp_uid=paid["imp_uid"], amount=3_000)
    iamport.cancel(imp_uid=paid["imp_uid"], amount=7_000)

    payment = iamport.payment(paid["imp_uid"])

    assert payment["status"] == "cancelled" and payment["cancel_amount"] == 10_000
    assert [h["amount"] for h in payment["cancel_history"]] == [3_000, 7_000]
    assert len({h["cancellation_id"] for h in payment["cancel_history"]}) == 2


def test_cancel_succeeds_when_checksum_equals_cancellable_balance(iamport, paid):
    iamport.cancel(imp_uid=paid["imp_uid"], amount=1_000, checksum=10_000)

    response = iamport.cancel(imp_uid=paid["imp_uid"], amount=2_000, checksum=9_000)

    assert response.json()["code"] == 0 and response.json()["response"]["cancel_amount"] == 3_000


def test_cancel_is_refused_with_code_1_when_checksum_differs_from_balance(iamport, paid):
    iamport.cancel(imp_uid=paid["imp_uid"], amount=1_000)

    response = iamport.cancel(imp_uid=paid["imp_uid"], amount=1_000, checksum=10_000)

    assert response.status_code == 200
    assert response.json()["code"] == 1 and response.json()["response"] is None
    assert iamport.payment(paid["imp_uid"])["cancel_amount"] == 1_000


def test_cancel_is_refused_with_code_1_when_amount_exceeds_balance(iamport, paid):
    iamport.cancel(imp_uid=paid["imp_uid"], amount=6_000)

    response = iamport.cancel(imp_uid=paid["imp_uid"], amount=5_000)

    assert response.json()["code"] == 1
    assert iamport.payment(paid["imp_uid"])["cancel_amount"] == 6_000


def test_cancel_returns_iamport_message_when_payment_unknown(iamport):
    response = iamport.cancel(imp_uid="imp_000000000000")

    assert response.status_code == 200
    assert response.json() == {"code": 1, "message": "취소할 결제건이 존재하지 않습니다.", "response": None}


def test_cancel_returns_iamport_message_when_already_fully_cancelled(iamport, paid):
    iamport.cancel(imp_uid=paid["imp_uid"])

    response = iamport.cancel(imp_uid=paid["imp_uid"])

    assert response.json() == {"code": 1, "message": "이미 전액취소된 주문입니다.", "response": None}


def test_cancel_uses_imp_uid_over_merchant_uid_when_both_given(iamport, paid):
    response = iamport.cancel(imp_uid="imp_000000000000", merchant_uid=paid["merchant_uid"])

    assert response.json()["code"] == 1
    assert iamport.payment(paid["imp_uid"])["cancel_amount"] == 0


def test_cancel_finds_paid_attempt_when_only_merchant_uid_given(sandbox, iamport):
    iamport.issued("c2", INSUFFICIENT_CARD)
    iamport.again("c2", "order-mixed")
    sandbox.set_card_behaviour("c2", "paid")
    paid = iamport.paid("c2", "order-mixed")
    sandbox.set_card_behaviour("c2", "insufficient_funds")

    payment = iamport.cancel(merchant_uid="order-mixed").json()["response"]

    assert payment["imp_uid"] == paid["imp_uid"] and payment["status"] == "cancelled"


def test_cancel_is_refused_when_payment_failed(iamport):
    iamport.issued("c3", INSUFFICIENT_CARD)
    failed = iamport.again("c3", "order-failed").json()["response"]

    assert iamport.cancel(imp_uid=failed["imp_uid"]).json()["code"] == 1


def test_cancel_accepts_form_encoded_body_when_sent_as_form(iamport, paid):
    response = iamport.post("/payments/cancel", data={"imp_uid": paid["imp_uid"], "amount": "500", "checksum": "10000"})

    assert response.json()["response"]["cancel_amount"] == 500


def test_cancel_returns_400_when_neither_imp_uid_nor_merchant_uid_given(iamport):
    assert iamport.cancel(amount=100).status_code == 400
