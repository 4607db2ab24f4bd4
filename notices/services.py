"""The notice engine: create a notice once, send it through the merchant's channels in order, record every step.

A notice is written with its facts and the exact text of each channel (rendered from
`notices/<type>/<channel>_<language>.txt`, or a template the caller names), in the caller's transaction. After
commit, `notice_send` tries the channels in order (settings.NOTICE_CHANNELS, 알림톡 → SMS/LMS → email): a
channel with no verified number or email, or one the subscriber turned off (unless the notice is required by
law), is SKIPPED; otherwise a QUEUED row is written, the provider is called outside any transaction, and the
answer is a SENT row (with the provider's message id) or a FAILED row, after which the next channel is tried.
SENT 알림톡/SMS rows are settled by `notice_reports_poll` (the provider's delivery report): DELIVERED, or FAILED
and on to the next channel. A provider that cannot be asked (5xx, 429, connect error) leaves a QUEUED row with
its code, and the sweep (`notices_send_due`) tries that channel again, at most NOTICE_CHANNEL_TRIES times.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import translation

from billing.models import Customer
from notices.channels.base import ChannelError, NoticeChannel, OutgoingMessage
from notices.errors import PhoneInvalidError, VerificationCodeInvalidError, VerificationExpiredError
from notices.models import Channel, Contact, Notice, NoticeDelivery, NoticeType, PhoneVerification
from notices.selectors import channel_states, notice_outcome

logger = logging.getLogger(__name__)
D = NoticeDelivery.Status
PHONE_CHANNELS = (Channel.ALIMTALK, Channel.SMS)
MOBILE_RE = re.compile(r"^010\d{8}$")
LOST_AFTER = dt.timedelta(minutes=10)  # a QUEUED row without an answer this old: the worker died mid-call


def get_channel(name: str) -> NoticeChannel:
    if name == Channel.EMAIL:
        from notices.channels.email import EmailChannel

        return EmailChannel()
    from notices.channels.solapi import SolapiChannel

    return SolapiChannel(
        api_key=settings.SOLAPI_API_KEY,
        api_secret=settings.SOLAPI_API_SECRET,
        base_url=settings.SOLAPI_BASE_URL,
        sender=settings.SOLAPI_SENDER,
        pf_id=settings.SOLAPI_PF_ID,
    )


# --- creating ----------------------------------------------------------------------------------------


def _render(template: str, context: dict) -> str | None:
    try:
        return render_to_string(template, context).strip()
    except TemplateDoesNotExist:
        return None


def notice_texts(*, type: str, language: str, context: dict, templates: dict[str, str] | None = None) -> dict:
    """The exact text of each channel that has a template, in `language` (ko, or en)."""
    templates = templates or {}
    texts: dict[str, dict] = {}
    with translation.override(language):
        for channel in Channel.values:
            base = templates.get(channel, f"notices/{type}/{channel}")
            body = _render(f"{base}_{language}.txt", context)
            if body is None:
                continue
            subject = _render(f"{base}_{language}.subject.txt", context) or ""
            texts[channel] = {"subject": subject, "text": body}
    return texts


def notice_create(
    *,
    type: str,
    customer: Customer,
    key: str,
    now: dt.datetime,
    context: dict,
    facts: dict | None = None,
    required: bool = False,
    subscription_id: int | None = None,
    templates: dict[str, str] | None = None,
    send_on_commit: bool = True,
) -> Notice:
    """The notice `key` (created once, whoever asks), its texts rendered now, sent after commit."""
    existing = Notice.objects.filter(key=key).first()
    if existing is not None:
        return existing
    language = "en" if customer.preferred_language.startswith("en") else "ko"
    texts = notice_texts(type=type, language=language, context=context, templates=templates)
    order = [c for c in settings.NOTICE_CHANNELS if c in texts]
    notice = Notice.objects.create(
        type=type,
        customer=customer,
        subscription_id=subscription_id,
        key=key,
        required=required,
        language=language,
        facts=facts or {},
        texts=texts,
        channels=order,
        created_at=now,
    )
    if send_on_commit:
        notice_id = notice.pk
        transaction.on_commit(lambda: notice_send(notice_id=notice_id, now=now))
    return notice


# --- sending -----------------------------------------------------------------------------------------


def _address(notice: Notice, channel: str, contact: Contact | None) -> tuple[str, str]:
    """(address, why not) for a channel: an address to send to, or the reason it is skipped."""
    if channel in PHONE_CHANNELS:
        if notice.facts.get("to_phone"):
            return notice.facts["to_phone"], ""
        if contact is None or not contact.phone or contact.phone_verified_at is None:
            return "", "no_verified_phone"
    elif not notice.customer.email:
        return "", "no_email"
    if contact is not None and contact.opted_out(channel) and not notice.required:
        return "", "opted_out"
    return (contact.phone if channel in PHONE_CHANNELS else notice.customer.email), ""


def _row(notice: Notice, channel: str, status: str, now: dt.datetime, **fields) -> NoticeDelivery:
    return NoticeDelivery.objects.create(notice=notice, channel=channel, status=status, at=now, **fields)


def _claim(notice_id: int, now: dt.datetime) -> tuple[Notice, str, OutgoingMessage] | None:
    """Under the notice's lock: skip what cannot be used, and write the QUEUED row of the channel to try next."""
    with transaction.atomic():
        notice = Notice.objects.select_for_update().select_related("customer").get(pk=notice_id)
        states = channel_states(notice)
        if notice_outcome(notice, states).settled:
            return None
        contact = Contact.objects.filter(customer=notice.customer).first()
        for channel in notice.channels:
            latest = states.get(channel)
            if latest is not None:
                if latest.status in (D.FAILED, D.SKIPPED):
                    continue
                if latest.status == D.QUEUED and (latest.code or now - latest.at >= LOST_AFTER):
                    tries = notice.deliveries.filter(channel=channel, status=D.QUEUED).count()
                    if tries >= settings.NOTICE_CHANNEL_TRIES:
                        _row(notice, channel, D.FAILED, now, to=latest.to, code=latest.code or "lost", detail="gave up")
                        continue
                    break  # tried again below
                return None  # queued (in flight) or sent (waiting for the report): nothing to do now
            address, why_not = _address(notice, channel, contact)
            if not address:
                _row(notice, channel, D.SKIPPED, now, code=why_not)
                continue
            break
        else:
            return None
        address, _ = _address(notice, channel, contact)
        text = notice.texts[channel]
        template = settings.NOTICE_ALIMTALK_TEMPLATES.get(notice.type, "") if channel == Channel.ALIMTALK else ""
        _row(notice, channel, D.QUEUED, now, to=address, subject=text["subject"], text=text["text"])
    message = OutgoingMessage(
        channel=channel,
        to=address,
        text=text["text"],
        subject=text["subject"],
        template_code=template,
        reference=f"notice-{notice.pk}-{channel}",
    )
    return notice, channel, message


def notice_send(*, notice_id: int, now: dt.datetime, reveal: Callable[[str], str] | None = None) -> str:
    """Try the next channel(s) until one is accepted, one is waiting, or none is left. Returns the outcome
    (selectors.notice_outcome). `reveal` puts a secret (a verification code) into the text sent, which the log
    keeps masked. Safe to call twice at once: the claim is taken under the notice's row lock."""
    for _ in range(len(Channel.values) * (settings.NOTICE_CHANNEL_TRIES + 1)):
        claimed = _claim(notice_id, now)
        if claimed is None:
            break
        notice, channel, message = claimed
        if reveal is not None:
            message = OutgoingMessage(**{**message.__dict__, "text": reveal(message.text)})
        try:
            result = get_channel(channel).send(message)
        except ChannelError as exc:
            logger.warning("notice %s: %s could not be asked (%s)", notice.pk, channel, exc.code)
            _row(notice, channel, D.QUEUED, now, to=message.to, code=exc.code or "unavailable", detail=str(exc)[:255])
            break
        if result.accepted:
            status = D.DELIVERED if result.delivered else D.SENT
            _row(notice, channel, status, now, to=message.to, provider_message_id=result.provider_message_id)
            break
        _row(notice, channel, D.FAILED, now, to=message.to, code=result.code, detail=result.message[:255])
    notice = Notice.objects.get(pk=notice_id)
    return notice_outcome(notice, channel_states(notice)).state


def notice_reports_poll(*, now: dt.datetime, notice_ids: list[int] | None = None) -> dict[str, int]:
    """Ask the provider about every 알림톡/SMS still SENT; a delivered one is DELIVERED, a failed one FAILED and
    its notice moves on to the next channel. Returns a count per result."""
    counts = {"delivered": 0, "failed": 0, "pending": 0}
    waiting = []
    notices = Notice.objects.filter(pk__in=notice_ids) if notice_ids is not None else _open_notices(now)
    for notice in notices:
        for channel, latest in channel_states(notice).items():
            if latest is not None and latest.status == D.SENT and channel in PHONE_CHANNELS:
                waiting.append((notice, latest))
    if not waiting:
        return counts
    try:
        reports = {
            r.provider_message_id: r
            for r in get_channel(Channel.SMS).reports([d.provider_message_id for _, d in waiting])
        }
    except ChannelError as exc:
        logger.warning("delivery reports unavailable (%s)", exc.code)
        return counts
    for notice, sent in waiting:
        report = reports.get(sent.provider_message_id)
        if report is None or report.state == "pending":
            counts["pending"] += 1
            continue
        with transaction.atomic():
            Notice.objects.select_for_update().get(pk=notice.pk)
            if notice.deliveries.filter(channel=sent.channel).last().pk != sent.pk:
                continue  # someone recorded it first
            status = D.DELIVERED if report.state == "delivered" else D.FAILED
            _row(
                notice,
                sent.channel,
                status,
                now,
                to=sent.to,
                provider_message_id=sent.provider_message_id,
                code=report.code,
            )
        counts[report.state] += 1
        if status == D.FAILED:
            notice_send(notice_id=notice.pk, now=now)
    return counts


def _open_notices(now: dt.datetime):
    return (
        Notice.objects.filter(created_at__gte=now - dt.timedelta(days=30))
        .exclude(type=NoticeType.PHONE_VERIFICATION)
        .filter(deliveries__status__in=[D.QUEUED, D.SENT])
        .distinct()
    )


def notices_send_due(*, now: dt.datetime) -> dict[str, int]:
    """The sweep: delivery reports first, then every notice with a channel left to try (retries after a
    provider error, a worker lost mid-call, a notice whose after-commit send never ran)."""
    polled = notice_reports_poll(now=now)
    resent = 0
    unsent = Notice.objects.filter(created_at__gte=now - dt.timedelta(days=30), deliveries__isnull=True).exclude(
        type=NoticeType.PHONE_VERIFICATION
    )
    for notice in list(_open_notices(now)) + list(unsent):
        if not notice_outcome(notice, channel_states(notice)).settled:
            notice_send(notice_id=notice.pk, now=now)
            resent += 1
    return {**polled, "resent": resent}


# --- the subscriber's number -------------------------------------------------------------------------


def phone_normalise(raw: str) -> str:
    digits = re.sub(r"[\s\-().]", "", raw or "")
    if digits.startswith("+82"):
        digits = "0" + digits[3:]
    if not MOBILE_RE.match(digits):
        raise PhoneInvalidError()
    return digits


def _code_hash(verification_customer_id: int, phone: str, code: str) -> str:
    return hashlib.sha256(f"{settings.SECRET_KEY}:{verification_customer_id}:{phone}:{code}".encode()).hexdigest()


def phone_verification_start(*, customer: Customer, phone: str, now: dt.datetime) -> PhoneVerification:
    """Send a 6-digit code by SMS to a Korean mobile number (010-…). Refused, with nothing written, otherwise."""
    number = phone_normalise(phone)
    code = f"{secrets.randbelow(10**6):06d}"
    with transaction.atomic():
        verification = PhoneVerification.objects.create(
            customer=customer,
            phone=number,
            code_hash=_code_hash(customer.pk, number, code),
            created_at=now,
            expires_at=now + dt.timedelta(minutes=5),
        )
        notice = notice_create(
            type=NoticeType.PHONE_VERIFICATION,
            customer=customer,
            key=f"phone_verification:{verification.pk}",
            now=now,
            context={"code": "••••••"},
            facts={"to_phone": number},
            required=True,
            send_on_commit=False,
        )
        Notice.objects.filter(pk=notice.pk).update(channels=[Channel.SMS])
    notice_send(notice_id=notice.pk, now=now, reveal=lambda text: text.replace("••••••", code))
    return verification


def phone_verification_confirm(*, customer: Customer, code: str, now: dt.datetime) -> Contact:
    """The number becomes the subscriber's once the code sent to it comes back (5 tries, 5 minutes)."""
    with transaction.atomic():
        verification = (
            PhoneVerification.objects.select_for_update()
            .filter(customer=customer, verified_at__isnull=True)
            .order_by("-created_at", "-id")
            .first()
        )
        if verification is None or now > verification.expires_at or verification.attempts >= 5:
            raise VerificationExpiredError()
        matches = _code_hash(customer.pk, verification.phone, (code or "").strip()) == verification.code_hash
        if not matches:
            PhoneVerification.objects.filter(pk=verification.pk).update(attempts=verification.attempts + 1)
        else:
            verification.verified_at = now
            verification.save(update_fields=["verified_at"])
            contact, _ = Contact.objects.get_or_create(customer=customer)
            contact.phone, contact.phone_verified_at = verification.phone, now
            contact.save(update_fields=["phone", "phone_verified_at"])
    if not matches:  # the failed try is counted (committed) before the error is raised
        raise VerificationCodeInvalidError()
    return contact


def contact_preferences_set(*, customer: Customer, alimtalk: bool, sms: bool, email: bool) -> Contact:
    """The optional channels a subscriber keeps (legally required notices are sent regardless)."""
    contact, _ = Contact.objects.get_or_create(customer=customer)
    contact.alimtalk_opt_out, contact.sms_opt_out, contact.email_opt_out = not alimtalk, not sms, not email
    contact.save(update_fields=["alimtalk_opt_out", "sms_opt_out", "email_opt_out"])
    return contact
