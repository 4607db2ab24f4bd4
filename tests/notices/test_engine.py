"""The notice engine (notices/services.py) against the notification sandbox over HTTP: numbers, channels in
order, opt-outs, provider faults, and the delivery log."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import requests
from django.db import transaction

from notices.channels.base import ChannelError, OutgoingMessage
from notices.channels.solapi import SolapiChannel
from notices.errors import PhoneInvalidError, VerificationCodeInvalidError
from notices.models import Contact, NoticeDelivery, PhoneVerification
from notices.services import (
    contact_preferences_set,
    notice_create,
    notice_send,
    notices_send_due,
    phone_verification_confirm,
    phone_verification_start,
)
from tests.factories import make_customer

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2027, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Seoul"))
PHONE = "01098765432"


def _verified_customer():
    customer = make_customer()
    Contact.objects.create(customer=customer, phone=PHONE, phone_verified_at=T0)
    return customer


def _notice(customer, *, required=False, key="n1"):
    notice = notice_create(
        type="trial_ending",
        customer=customer,
        key=key,
        now=T0,
        required=required,
        send_on_commit=False,
        context={
            "plan_name": "베이직",
            "charge_at": T0,
            "amount": 9_900,
            "vat": 900,
            "card": "국민 1234",
            "cancel_url": "/account/",
            "merchant_name": "데모",
        },
    )
    return notice


def _log(notice):
    return [(d.channel, d.status, d.code) for d in notice.deliveries.order_by("at", "id")]


def test_a_number_that_is_not_korean_mobile_is_refused_and_nothing_is_sent(notify):
    customer = make_customer()
    for bad in ("02-123-4567", "011-1234-5678", "010-123-456", "+1 415 555 0100", ""):
        with pytest.raises(PhoneInvalidError):
            phone_verification_start(customer=customer, phone=bad, now=T0)
    assert PhoneVerification.objects.count() == 0 and notify.messages() == []


def test_a_number_is_the_subscribers_only_after_the_code_texted_to_it_comes_back(notify):
    customer = make_customer()
    phone_verification_start(customer=customer, phone="010-9876-5432", now=T0)
    [sms] = notify.messages(to=PHONE)
    code = re.search(r"\[(\d{6})\]", sms["text"]).group(1)
    logged = NoticeDelivery.objects.get(notice__customer=customer, status="queued")
    assert code not in logged.text and "••••••" in logged.text  # the log never keeps the code

    with pytest.raises(VerificationCodeInvalidError):
        phone_verification_confirm(customer=customer, code="000000" if code != "000000" else "111111", now=T0)
    assert not Contact.objects.filter(customer=customer, phone_verified_at__isnull=False).exists()
    assert PhoneVerification.objects.get(customer=customer).attempts == 1

    contact = phone_verification_confirm(customer=customer, code=code, now=T0 + dt.timedelta(minutes=4))
    assert contact.phone == PHONE and contact.phone_verified_at is not None


def test_alimtalk_goes_first_and_a_provider_refusal_falls_back_to_sms(notify):
    customer = _verified_customer()
    notify.fault("reject", type="ATA")  # registered as failed (failedMessageList)
    notice = _notice(customer)

    assert notice_send(notice_id=notice.pk, now=T0) == "pending"
    assert _log(notice) == [
        ("alimtalk", "queued", ""),
        ("alimtalk", "failed", "1062"),
        ("sms", "queued", ""),
        ("sms", "sent", ""),
    ]
    assert notices_send_due(now=T0 + dt.timedelta(minutes=1))["delivered"] == 1
    assert _log(notice)[-1] == ("sms", "delivered", "4000")


def test_a_rate_limited_provider_leaves_the_channel_queued_and_the_sweep_sends_it(notify):
    customer = _verified_customer()
    notify.fault("throttle")
    notice = _notice(customer)

    assert notice_send(notice_id=notice.pk, now=T0) == "pending"
    assert _log(notice) == [("alimtalk", "queued", ""), ("alimtalk", "queued", "TooManyRequests")]
    assert notify.messages() == []

    notices_send_due(now=T0 + dt.timedelta(minutes=1))
    assert [m["type"] for m in notify.messages(to=PHONE)] == ["ATA"]
    assert _log(notice)[-1][:2] == ("alimtalk", "sent")


def test_opt_outs_hold_for_optional_notices_and_not_for_legally_required_ones(notify):
    customer = _verified_customer()
    contact_preferences_set(customer=customer, alimtalk=False, sms=False, email=True)

    optional = _notice(customer, key="optional")
    notice_send(notice_id=optional.pk, now=T0)
    required = _notice(customer, key="required", required=True)
    notice_send(notice_id=required.pk, now=T0)

    assert [s for c, s, _ in _log(optional) if c != "email"] == ["skipped", "skipped"]
    assert _log(required)[:2] == [("alimtalk", "queued", ""), ("alimtalk", "sent", "")]


def test_a_notice_is_created_once_whoever_asks(notify):
    customer = _verified_customer()
    with transaction.atomic():
        first = _notice(customer, key="same")
        second = _notice(customer, key="same")
    assert first.pk == second.pk


def test_a_request_with_a_bad_signature_is_refused_and_nothing_is_recorded(notify, notify_server):
    channel = SolapiChannel(
        api_key="NCSSANDBOXKEY0001", api_secret="wrong", base_url=notify_server.url, sender="0200000000", pf_id="PF"
    )
    with pytest.raises(ChannelError) as refused:
        channel.send(OutgoingMessage(channel="sms", to=PHONE, text="안녕하세요"))
    assert refused.value.code == "SignatureDoesNotMatch"
    assert notify.messages() == []


def test_the_sandbox_refuses_a_reused_salt(notify_server):
    import hashlib
    import hmac

    date = dt.datetime.now(dt.UTC).isoformat()
    signature = hmac.new(b"SANDBOXSECRETSANDBOXSECRETSANDBOX", (date + "salt1").encode(), hashlib.sha256).hexdigest()
    header = f"HMAC-SHA256 ApiKey=NCSSANDBOXKEY0001, Date={date}, salt=salt1, signature={signature}"
    url = f"{notify_server.url}/messages/v4/list-old?messageId=x"
    assert requests.get(url, headers={"Authorization": header}, timeout=5).status_code == 200
    replay = requests.get(url, headers={"Authorization": header}, timeout=5)
    assert replay.status_code == 401 and replay.json()["errorCode"] == "DuplicatedSignature"


def test_the_phone_page_shows_what_the_phone_received(notify, notify_server):
    customer = _verified_customer()
    notice = _notice(customer)
    notice_send(notice_id=notice.pk, now=T0)
    page = requests.get(f"{notify_server.url}/__sandbox__/phone?to={PHONE}", timeout=5).text
    assert "알림톡" in page and "9,900원" in page and PHONE in page
