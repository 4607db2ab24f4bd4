"""The 7-day rule on the clock (subscriptions/services/notices.py): the trial's notice goes out 7 days before it
ends, through the notice engine and the notification sandbox, and the first charge waits for its delivery."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from billing.models import AuditLog
from notices.models import Contact, Notice, NoticeDelivery
from subscriptions.services.notices import trial_notice_key
from tests.factories import PlanFactory
from tests.subscriptions.lifecycle_helpers import T0, S, grant_consent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("strategy", "_after_commit_runs")]
PHONE = "01012345678"


def _with_phone(sub) -> None:
    Contact.objects.create(customer=sub.customer, phone=PHONE, phone_verified_at=T0)


def _log(sub) -> list[tuple[str, str]]:
    notice = Notice.objects.get(key=trial_notice_key(sub.pk))
    return [(d.channel, d.status) for d in notice.deliveries.order_by("at", "id")]


def test_a_14_day_trial_notice_goes_out_on_day_7_by_alimtalk_and_the_charge_waits_for_it(
    subscribe, run, sandbox, gateway, notify
):
    trial = PlanFactory(code="trial", amount=29_900, trial_days=14)
    sub = subscribe(gateway, trial)
    grant_consent(sub, T0 + dt.timedelta(days=1))  # the conversion is agreed to: these tests are about the notice
    _with_phone(sub)

    run(gateway, T0 + dt.timedelta(days=6, hours=23, minutes=59))
    assert notify.messages(to=PHONE) == []

    run(gateway, T0 + dt.timedelta(days=7))
    [message] = notify.messages(to=PHONE)
    assert message["type"] == "ATA" and message["kakaoOptions"]["templateId"] == "KBTRIAL7D"
    assert "29,900원" in message["text"] and "부가세 2,718원" in message["text"] and "해지하기" in message["text"]
    assert sandbox.payments() == []

    run(gateway, T0 + dt.timedelta(days=7, minutes=1))  # the sweep reads the delivery report
    assert _log(sub) == [("alimtalk", "queued"), ("alimtalk", "sent"), ("alimtalk", "delivered")]
    delivery = NoticeDelivery.objects.get(notice__key=trial_notice_key(sub.pk), status="queued")
    assert delivery.text == message["text"] and delivery.to == PHONE

    run(gateway, T0 + dt.timedelta(days=14, minutes=1))
    sub.refresh_from_db()
    assert sub.status == S.ACTIVE
    assert [(p["status"], p["amount"]) for p in sandbox.payments()] == [("paid", 29_900)]


def test_a_failed_alimtalk_falls_back_to_sms_and_the_trial_converts_on_time(subscribe, run, sandbox, gateway, notify):
    trial = PlanFactory(code="trial", amount=29_900, trial_days=14)
    sub = subscribe(gateway, trial)
    grant_consent(sub, T0 + dt.timedelta(days=1))  # the conversion is agreed to: these tests are about the notice
    _with_phone(sub)
    notify.fault("undeliverable", type="ATA")  # not a KakaoTalk user

    run(gateway, T0 + dt.timedelta(days=7))
    run(gateway, T0 + dt.timedelta(days=7, minutes=1))  # 알림톡 reported failed: SMS/LMS is sent
    run(gateway, T0 + dt.timedelta(days=7, minutes=2))  # and reported delivered

    assert _log(sub) == [
        ("alimtalk", "queued"),
        ("alimtalk", "sent"),
        ("alimtalk", "failed"),
        ("sms", "queued"),
        ("sms", "sent"),
        ("sms", "delivered"),
    ]
    assert [m["type"] for m in notify.messages(to=PHONE)] == ["ATA", "LMS"]
    run(gateway, T0 + dt.timedelta(days=14, minutes=3))
    sub.refresh_from_db()
    assert sub.status == S.ACTIVE and len(sandbox.payments()) == 1


def test_a_late_notice_moves_the_conversion_to_7_days_after_delivery(subscribe, run, sandbox, gateway, notify):
    trial = PlanFactory(code="trial", amount=29_900, trial_days=14)
    sub = subscribe(gateway, trial)
    grant_consent(sub, T0 + dt.timedelta(days=1))  # the conversion is agreed to: these tests are about the notice
    _with_phone(sub)
    notify.fault("pending", type="ATA", times=2)  # the carrier reports nothing for two polls

    run(gateway, T0 + dt.timedelta(days=7))
    run(gateway, T0 + dt.timedelta(days=8))  # pending
    run(gateway, T0 + dt.timedelta(days=9))  # pending
    delivered_at = T0 + dt.timedelta(days=10)
    run(gateway, delivered_at)  # delivered now, 3 days late

    run(gateway, T0 + dt.timedelta(days=14, minutes=1))
    sub.refresh_from_db()
    assert sub.status == S.TRIALING and sandbox.payments() == []
    assert sub.trial_end == delivered_at + dt.timedelta(days=7) == sub.billing_anchor
    assert AuditLog.objects.filter(action="subscription.conversion_moved", object_id=str(sub.pk)).exists()

    run(gateway, delivered_at + dt.timedelta(days=7, minutes=1))
    sub.refresh_from_db()
    assert sub.status == S.ACTIVE and len(sandbox.payments()) == 1


def test_an_email_only_subscriber_is_charged_under_the_email_rule_and_the_fallback_is_logged(
    subscribe, run, sandbox, gateway
):
    trial = PlanFactory(code="trial", amount=29_900, trial_days=14)
    sub = subscribe(gateway, trial)  # no phone number
    grant_consent(sub, T0 + dt.timedelta(days=1))  # the conversion is agreed to: these tests are about the notice

    run(gateway, T0 + dt.timedelta(days=7))
    assert [m.to for m in mail.outbox if "체험" in m.subject] == [[sub.customer.email]]
    run(gateway, T0 + dt.timedelta(days=14, minutes=1))

    sub.refresh_from_db()
    assert sub.status == S.ACTIVE
    assert _log(sub) == [
        ("alimtalk", "skipped"),
        ("sms", "skipped"),
        ("email", "queued"),
        ("email", "sent"),
        ("email", "fallback"),
    ]
    assert AuditLog.objects.filter(action="notice.fallback_applied", object_id=str(sub.pk)).exists()


def test_no_delivered_notice_under_the_cancel_rule_ends_the_trial_without_a_charge(
    subscribe, run, sandbox, gateway, notify, settings
):
    settings.NOTICE_REQUIRED_FALLBACK = "cancel"
    trial = PlanFactory(code="trial", amount=29_900, trial_days=14)
    sub = subscribe(gateway, trial)
    grant_consent(sub, T0 + dt.timedelta(days=1))  # the conversion is agreed to: these tests are about the notice
    _with_phone(sub)
    notify.fault("undeliverable", to=PHONE, times=2)  # neither 알림톡 nor SMS reaches the phone

    for minutes in (0, 1, 2, 3):
        run(gateway, T0 + dt.timedelta(days=7, minutes=minutes))
    run(gateway, T0 + dt.timedelta(days=14, minutes=1))

    sub.refresh_from_db()
    assert sub.status == S.CANCELED and sub.end_reason == "required_notice_undelivered"
    assert sandbox.payments() == []
    assert ("email", "fallback") in _log(sub) and ("sms", "failed") in _log(sub)
