"""The 7-day rule: a trial turns paid only after its notice reached the subscriber 7 days before.

여신전문금융업감독규정 (in force 2021-11-18) asks a card merchant to tell the subscriber, by text message or
similar, at least 7 days before a free or discounted period turns paid: the date, the amount and how to cancel.
So, for a trialing subscription (called from `_advance`, subscriptions/services/renewals.py):

- 7 days before the trial ends, the `trial_ending` notice is created (required: opt-outs do not apply) and sent
  through the notice engine (notices/services.py). It states the charge date: the trial's end, or 7 days from
  now when the notice is late (a short trial, an outage): a late notice moves the conversion, never skips it.
- At the charge date the conversion waits for the delivery log. Delivered (a 알림톡 or SMS delivery report):
  the first paid period starts at the later of the stated date and 7 days after delivery. Still on its way:
  the conversion is looked at again in an hour (the subscriber keeps the trial meanwhile, unpaid).
- No phone channel delivered it (no verified number, every channel failed): the merchant's fallback rule
  (settings.NOTICE_REQUIRED_FALLBACK) decides and is written in the delivery log and the audit log: "email" takes
  an email the mail server accepted as the notice (7 days after it was sent); "cancel" (or no email either) ends
  the subscription at the trial's end without charging.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.urls import reverse

from billing.money import split_vat
from billing.services.audit import audit_record
from notices.models import Channel, Notice, NoticeDelivery, NoticeType
from notices.selectors import notice_outcome
from notices.services import notice_create
from subscriptions.merchant import merchant_profile
from subscriptions.models import Subscription
from subscriptions.services.status import subscription_end

NOTICE_DAYS = 7  # statutory, not a setting
RECHECK = dt.timedelta(hours=1)


def trial_notice_key(subscription_id: int) -> str:
    return f"trial_ending:{subscription_id}"


def trial_notice_due_at(trial_end: dt.datetime, now: dt.datetime) -> dt.datetime:
    """When the trial's notice is sent: 7 days before it ends, or now when that has passed."""
    return max(trial_end - dt.timedelta(days=NOTICE_DAYS), now)


def _site(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _trial_notice_create(sub: Subscription, now: dt.datetime) -> Notice:
    charge_at = max(sub.trial_end, now + dt.timedelta(days=NOTICE_DAYS))
    plan = sub.plan
    split = split_vat(plan.amount, plan.tax_free_amount)
    card = ""
    if sub.billing_key_id:
        key = sub.billing_key
        card = f"{key.card_name} {key.card_number_masked}".strip()
    english = sub.customer.preferred_language.startswith("en")
    facts = {
        "charge_at": charge_at.isoformat(),
        "amount": split.total,
        "vat": split.vat,
        "supply": split.supply,
        "tax_free": split.tax_free,
        "card": card,
        "plan": plan.code,
        "cancel_url": _site(reverse("subscriptions:account")),
    }
    context = {
        **facts,
        "charge_at": charge_at,
        "plan_name": plan.name_en if english else plan.name_ko,
        "card": card or ("registered card" if english else "등록된 카드"),
        "merchant_name": settings.MERCHANT_NAME,
        "MERCHANT": merchant_profile(),
    }
    return notice_create(
        type=NoticeType.TRIAL_ENDING,
        customer=sub.customer,
        key=trial_notice_key(sub.pk),
        now=now,
        context=context,
        facts=facts,
        required=True,
        subscription_id=sub.pk,
    )


def trial_notice_step(sub: Subscription, now: dt.datetime) -> str | None:
    """The notice's part of a due trialing subscription's step (the row is locked by the caller). Returns what
    it did ("not_due", "trial_notice", "notice_pending", "conversion_moved", "ended"), or None when the
    first paid period may start now (or the subscriber cancelled, and no conversion is coming)."""
    if sub.cancel_at_period_end:
        return None
    notice = Notice.objects.filter(key=trial_notice_key(sub.pk)).first()
    if notice is None:
        due_at = sub.trial_end - dt.timedelta(days=NOTICE_DAYS)
        if now < due_at:
            sub.next_event_at = due_at
            sub.save()
            return "not_due"
        notice = _trial_notice_create(sub, now)
        sub.trial_notice_sent_at = now
        sub.next_event_at = dt.datetime.fromisoformat(notice.facts["charge_at"])
        sub.save()
        return "trial_notice"
    stated = dt.datetime.fromisoformat(notice.facts["charge_at"])
    outcome = notice_outcome(notice)
    if outcome.state == "pending":
        sub.next_event_at = max(now + RECHECK, stated)
        sub.save()
        return "notice_pending"
    if outcome.state == "email_sent" or outcome.state == "exhausted":
        rule = settings.NOTICE_REQUIRED_FALLBACK
        usable = outcome.state == "email_sent" and rule == "email"
        _fallback_logged(notice, sub, now, rule=rule, outcome=outcome.state, charged=usable)
        if not usable:
            subscription_end(sub, now, at=min(now, sub.trial_end), reason="required_notice_undelivered")
            return "ended"
    conversion_at = max(stated, outcome.at + dt.timedelta(days=NOTICE_DAYS))
    if now < conversion_at:
        if sub.trial_end != conversion_at:
            audit_record(
                at=now,
                action="subscription.conversion_moved",
                obj=sub,
                customer=sub.customer,
                reason="trial notice delivered late",
                data={
                    "from": sub.trial_end.isoformat(),
                    "to": conversion_at.isoformat(),
                    "delivered_at": outcome.at.isoformat(),
                },
            )
            sub.trial_end = sub.billing_anchor = sub.current_period_end = conversion_at
        sub.next_event_at = conversion_at
        sub.save()
        return "conversion_moved"
    return None


def _fallback_logged(notice: Notice, sub: Subscription, now: dt.datetime, *, rule: str, outcome: str, charged: bool):
    """Once per notice: the merchant's fallback rule, in the delivery log and the audit log."""
    if notice.deliveries.filter(status=NoticeDelivery.Status.FALLBACK).exists():
        return
    detail = f"rule={rule}; no phone delivery ({outcome}); " + ("email taken as notice" if charged else "not charged")
    NoticeDelivery.objects.create(
        notice=notice, channel=Channel.EMAIL, status=NoticeDelivery.Status.FALLBACK, code=rule, detail=detail, at=now
    )
    audit_record(
        at=now,
        action="notice.fallback_applied",
        obj=sub,
        customer=sub.customer,
        reason=detail,
        data={"notice": notice.pk, "rule": rule, "outcome": outcome},
    )
