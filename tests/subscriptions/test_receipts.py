"""The receipt email (subscriptions/notifications.py send_receipts): after every charge that moved money, the
subscriber gets the terms agreed at checkout: the amount with its VAT and tax-free parts, the period, automatic
renewal and its next date, how to cancel in one step, the refund policy, and the merchant's identity."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core import mail

from subscriptions.services.lifecycle import subscription_create
from subscriptions.services.renewals import subscription_renew
from tests.factories import INSUFFICIENT_FUNDS_CARD, PlanFactory, make_customer, register_card

pytestmark = pytest.mark.django_db
KST = ZoneInfo("Asia/Seoul")
T0 = dt.datetime(2027, 1, 31, 10, 0, tzinfo=KST)


@pytest.fixture
def books(db):
    return PlanFactory(
        code="books", name_ko="도서 월간", name_en="Books monthly", amount=22_000, tax_free_amount=12_000
    )


def subscribe(gateway, plan, django_capture_on_commit_callbacks, *, card=None, language="ko"):
    customer = make_customer(email="reader@example.com")
    customer.preferred_language = language
    customer.save(update_fields=["preferred_language"])
    with django_capture_on_commit_callbacks(execute=True):
        register_card(customer, gateway, now=T0, **({"card": card} if card else {}))
        return subscription_create(customer=customer, plan=plan, now=T0, gateway=gateway)


def receipts():
    return [m for m in mail.outbox if "영수증" in m.subject or "Receipt" in m.subject]


def test_the_first_charge_sends_a_receipt_with_the_terms_of_the_purchase_in_korean(
    sandbox, gateway, books, settings, django_capture_on_commit_callbacks
):
    sub = subscribe(gateway, books, django_capture_on_commit_callbacks)

    [receipt] = receipts()
    body = receipt.body
    assert receipt.to == ["reader@example.com"]
    assert "도서 월간" in receipt.subject and "22,000원" in receipt.subject
    assert "22,000원 (공급가액 9,091원, 부가세 909원, 면세 12,000원)" in body
    assert "2027년 1월 31일 ~ 2027년 2월 28일" in body
    assert "해지하실 때까지 매월 자동으로 결제됩니다" in body
    assert "다음 결제 예정일은 2027년 2월 28일, 금액은 22,000원(부가세 포함)" in body
    assert "'구독 해지'를 누르면 한 번에 해지됩니다" in body
    assert "/policies/refund/" in body and f"/account/invoices/{sub.subscription_invoices.get().invoice_id}/" in body
    assert settings.MERCHANT_NAME in body and settings.MERCHANT_BUSINESS_NUMBER in body
    assert "&#x27;" not in body and "&amp;" not in body  # plain text, not HTML-escaped


def test_the_receipt_is_in_english_for_an_english_subscriber_and_renewals_send_one_each(
    sandbox, gateway, books, django_capture_on_commit_callbacks
):
    sub = subscribe(gateway, books, django_capture_on_commit_callbacks, language="en")
    with django_capture_on_commit_callbacks(execute=True):
        assert subscription_renew(subscription_id=sub.pk, now=sub.current_period_end, gateway=gateway) == (
            "renewed:succeeded"
        )

    first, renewal = receipts()
    assert "Receipt for Books monthly" in first.subject and "도서" not in first.body
    assert "you are charged every month until you cancel" in renewal.body
    assert "February 28, 2027 to March 31, 2027" in renewal.body


def test_a_declined_charge_sends_no_receipt(sandbox, gateway, books, django_capture_on_commit_callbacks):
    subscribe(gateway, books, django_capture_on_commit_callbacks, card=INSUFFICIENT_FUNDS_CARD)

    assert receipts() == []
