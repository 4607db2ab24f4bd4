"""Consent before a free trial turns paid and before a price goes up (전자상거래법 §13 ⑥; the merchant's
account of it: README.md#korean-law-consent-before-a-trial-turns-paid-or-a-price-goes-up).

What this module owns:

- the consent requests: one per trial (`trial_conversion`) and one per subscriber per price version
  (`price_increase`), each with the exact terms in Korean and English, opening no earlier than
  BILLING_CONSENT_WINDOW_DAYS (30) before the change;
- the answers (`consent_decide`): append-only `ConsentDecision` rows, the newest one being the answer, taken
  from the account page, the API or a signed single-use email link, each with who, when, IP, user agent,
  channel and the text that was shown, and an audit row in the same transaction;
- the reminders (`consents_ask_due`): an email when the window opens and every BILLING_CONSENT_REMINDER_DAYS
  while unanswered; nobody who said no is asked again (the account page shows the question again only after
  BILLING_CONSENT_QUIET_DAYS);
- the rule at the change itself, which the renewal calls (`trial_conversion_at_end`, `price_at_renewal`): no
  consent, no higher charge. Silence is never consent.

Lock order is always the subscription, then its consent request, so an answer and the renewal that reads it
never deadlock and whichever comes first decides.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import translation

from billing.selectors import billing_key_default
from billing.services.audit import audit_record
from subscriptions import notifications
from subscriptions.errors import (
    ConsentClosedError,
    ConsentNotOpenError,
    ConsentTokenInvalidError,
    ConsentTokenOtherSubscriberError,
    ConsentTokenUsedError,
)
from subscriptions.models import ConsentDecision, ConsentRequest, Plan, PlanPriceVersion, Subscription
from subscriptions.periods import bounds
from subscriptions.selectors import subscription_locked
from subscriptions.services.status import subscription_end

logger = logging.getLogger(__name__)
Kind = ConsentRequest.Kind
Outcome = ConsentDecision.Outcome
SIGNING_SALT = "subscriptions.consent"
PENDING = "pending"


# --- prices -----------------------------------------------------------------------------------------------


def period_price(subscription: Subscription, plan: Plan) -> tuple[int, int]:
    """(amount, tax-free part) a period of `plan` costs this subscriber: their price version when it is a
    version of that plan, otherwise the plan's own price."""
    version = subscription.price_version if subscription.price_version_id else None
    if version is not None and version.plan_id == plan.pk:
        return version.amount, version.tax_free_amount
    return plan.amount, plan.tax_free_amount


# --- requests -----------------------------------------------------------------------------------------------


def _window(change_at: dt.datetime) -> dt.timedelta:
    return dt.timedelta(days=settings.BILLING_CONSENT_WINDOW_DAYS)


def _card_label(subscription: Subscription) -> str:
    key = subscription.billing_key or billing_key_default(customer_id=subscription.customer_id)
    return f"{key.card_name} {key.card_number_masked}".strip() if key is not None else ""


def _terms(request: ConsentRequest, plan: Plan, language: str) -> str:
    context = {
        "kind": request.kind,
        "plan": plan,
        "change_at": request.change_at,
        "amount_before": request.amount_before,
        "amount_after": request.amount_after,
        "card": request.card_label or ("등록된 카드" if language == "ko" else "your registered card"),
        "non_consent_action": request.non_consent_action,
    }
    with translation.override(language):
        return render_to_string(f"subscriptions/consent/terms_{language}.txt", context).strip()


def _request_create(
    *,
    subscription: Subscription,
    kind: str,
    change_at: dt.datetime,
    amount_before: int,
    amount_after: int,
    now: dt.datetime,
    version: PlanPriceVersion | None = None,
) -> ConsentRequest:
    opens_at = max(change_at - _window(change_at), min(now, change_at - dt.timedelta(seconds=1)))
    request = ConsentRequest(
        kind=kind,
        subscription=subscription,
        price_version=version,
        change_at=change_at,
        opens_at=opens_at,
        amount_before=amount_before,
        amount_after=amount_after,
        card_label=_card_label(subscription)[:80],
        non_consent_action=version.non_consent_action if version else "",
        next_ask_at=opens_at,
        created_at=now,
    )
    request.terms_ko = _terms(request, subscription.plan, "ko")
    request.terms_en = _terms(request, subscription.plan, "en")
    request.save(force_insert=True)
    audit_record(
        at=now,
        action="consent.requested",
        obj=request,
        customer_id=subscription.customer_id,
        amount=amount_after,
        data={"kind": kind, "subscription": subscription.pk, "change_at": change_at.isoformat()},
    )
    return request


def trial_consent_request_create(*, subscription: Subscription, now: dt.datetime) -> ConsentRequest:
    """The question a trialing subscriber must answer yes to before the first charge. The window is the 30
    days before the trial ends, or the whole trial when it is shorter; it is asked separately from sign-up."""
    amount, _tax_free = period_price(subscription, subscription.plan)
    return _request_create(
        subscription=subscription,
        kind=Kind.TRIAL_CONVERSION,
        change_at=subscription.trial_end,
        amount_before=0,
        amount_after=amount,
        now=now,
    )


def plan_price_change_schedule(
    *,
    plan: Plan,
    amount: int,
    tax_free_amount: int = 0,
    effective_at: dt.datetime,
    non_consent_action: str = PlanPriceVersion.NonConsentAction.CANCEL_AT_PERIOD_END,
    now: dt.datetime,
    actor=None,
) -> PlanPriceVersion:
    """A new price version of `plan` from `effective_at`, and a consent request for each subscriber whose
    price goes up. The plan row is not touched: what existing records say they were billed stays true."""
    with transaction.atomic():
        version = PlanPriceVersion.objects.create(
            plan=plan,
            amount=amount,
            tax_free_amount=tax_free_amount,
            effective_at=effective_at,
            non_consent_action=non_consent_action,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            created_at=now,
        )
        audit_record(
            at=now,
            action="plan.price_change_scheduled",
            obj=version,
            actor=actor,
            amount=amount,
            data={"plan": plan.code, "from": plan.amount, "effective_at": effective_at.isoformat()},
        )
        price_change_requests_create(version=version, now=now)
    return version


def _renewal_for(sub: Subscription, version: PlanPriceVersion, now: dt.datetime) -> dt.datetime:
    """The renewal at which `sub` moves to `version`: its first renewal on or after the effective date, or the
    one after when it could be asked only less than the minimum notice before it."""
    index = sub.current_period_index + 1
    while bounds(anchor=sub.billing_anchor, plan=sub.plan, index=index)[0] < version.effective_at:
        index += 1
    start = bounds(anchor=sub.billing_anchor, plan=sub.plan, index=index)[0]
    asked_at = max(now, start - _window(start))
    if start - asked_at < dt.timedelta(days=settings.BILLING_PRICE_CHANGE_MIN_NOTICE_DAYS):
        start = bounds(anchor=sub.billing_anchor, plan=sub.plan, index=index + 1)[0]
    return start


def price_change_requests_create(*, version: PlanPriceVersion, now: dt.datetime) -> int:
    """A consent request for each live subscriber of the version's plan who pays less than the new price and
    has none yet. Safe to run again (the daily sweep does, for subscribers who joined since)."""
    asked = ConsentRequest.objects.filter(price_version=version).values("subscription_id")
    subs = (
        Subscription.objects.select_related("plan", "price_version", "billing_key")
        .filter(plan=version.plan, status__in=["active", "past_due", "paused"], cancel_at_period_end=False)
        .exclude(pk__in=asked)
    )
    created = 0
    for sub in subs:
        before, _tax_free = period_price(sub, sub.plan)
        if version.amount <= before or (sub.price_version_id and sub.price_version.effective_at > version.effective_at):
            continue  # a decrease needs no consent; a newer version already applies
        with transaction.atomic():
            try:
                _request_create(
                    subscription=sub,
                    kind=Kind.PRICE_INCREASE,
                    change_at=_renewal_for(sub, version, now),
                    amount_before=before,
                    amount_after=version.amount,
                    now=now,
                    version=version,
                )
            except IntegrityError:  # another sweep asked them first
                continue
        created += 1
    return created


# --- answers ------------------------------------------------------------------------------------------------


def consent_outcome(request: ConsentRequest) -> str:
    """The answer: the newest decision's outcome, or "pending". Silence is never consent."""
    latest = request.decisions.order_by("-decided_at", "-id").first()
    return latest.outcome if latest is not None else PENDING


@dataclass(frozen=True)
class Answerer:
    """Who answers and from where: what the decision row keeps as proof."""

    channel: str
    actor: object = None
    ip_address: str | None = None
    user_agent: str = ""
    language: str = "ko"


def consent_decide(
    *,
    request_id: int,
    outcome: str,
    answerer: Answerer,
    now: dt.datetime,
    customer_id: int | None = None,
    token_nonce: str | None = None,
) -> ConsentDecision:
    """Record a subscriber's yes or no. Refused before the window opens, once the change happened, for
    another customer's request, or for an email link already used; the same answer twice is one decision.
    The subscription row, then the request row, are locked, so two clicks at once give one outcome."""
    if outcome not in (Outcome.GRANTED, Outcome.REFUSED):
        raise ValueError(outcome)
    with transaction.atomic():
        sub_id = ConsentRequest.objects.filter(pk=request_id).values_list("subscription_id", flat=True).first()
        if sub_id is None:
            raise ConsentTokenInvalidError()
        sub = subscription_locked(sub_id)
        request = ConsentRequest.objects.select_for_update().get(pk=request_id)
        if customer_id is not None and sub.customer_id != customer_id:
            raise ConsentTokenOtherSubscriberError()
        if token_nonce is not None and ConsentDecision.objects.filter(token_nonce=token_nonce).exists():
            raise ConsentTokenUsedError()
        current = consent_outcome(request)
        if now < request.opens_at:
            raise ConsentNotOpenError()
        if now >= request.change_at or current == Outcome.EXPIRED or sub.status == Subscription.Status.CANCELED:
            raise ConsentClosedError()
        if current == outcome and token_nonce is None:
            return request.decisions.order_by("-decided_at", "-id").first()
        decision = ConsentDecision.objects.create(
            request=request,
            outcome=outcome,
            channel=answerer.channel,
            actor=answerer.actor if getattr(answerer.actor, "is_authenticated", False) else None,
            actor_label=_actor_label(answerer, sub),
            ip_address=answerer.ip_address or None,
            user_agent=(answerer.user_agent or "")[:400],
            text_shown=request.terms(answerer.language),
            token_nonce=token_nonce,
            decided_at=now,
        )
        if outcome == Outcome.REFUSED:
            request.next_ask_at = None  # a "no" is never followed by a reminder
            request.save(update_fields=["next_ask_at"])
        audit_record(
            at=now,
            action=f"consent.{outcome}",
            obj=request,
            actor=answerer.actor,
            actor_label=decision.actor_label,
            customer_id=sub.customer_id,
            amount=request.amount_after,
            from_status=current,
            to_status=outcome,
            data={"kind": request.kind, "channel": answerer.channel, "decision": decision.pk},
        )
    return decision


def _actor_label(answerer: Answerer, sub: Subscription) -> str:
    if getattr(answerer.actor, "is_authenticated", False):
        return f"user:{answerer.actor.get_username()}"
    return f"customer:{sub.customer_id}"


def consents_open_for(*, subscription: Subscription, now: dt.datetime) -> list[tuple[ConsentRequest, str]]:
    """The questions the account page shows now, with their answers: open ones not yet answered yes, except a
    "no" within the quiet period (the law forbids asking again within 7 days after a refusal)."""
    shown = []
    quiet = dt.timedelta(days=settings.BILLING_CONSENT_QUIET_DAYS)
    if subscription.status == Subscription.Status.CANCELED or subscription.cancel_at_period_end:
        return shown
    for request in subscription.consent_requests.filter(opens_at__lte=now, change_at__gt=now).order_by("change_at"):
        latest = request.decisions.order_by("-decided_at", "-id").first()
        if latest is None or (latest.outcome == Outcome.REFUSED and now - latest.decided_at >= quiet):
            shown.append((request, latest.outcome if latest else PENDING))
    return shown


# --- email links ------------------------------------------------------------------------------------------


def consent_token_make(*, request: ConsentRequest, outcome: str, nonce: str) -> str:
    payload = {"r": request.pk, "c": request.subscription.customer_id, "o": outcome, "n": nonce}
    return signing.dumps(payload, salt=SIGNING_SALT, compress=True)


@dataclass(frozen=True)
class ConsentLink:
    request: ConsentRequest
    outcome: str
    customer_id: int
    nonce: str


def consent_token_read(*, token: str, now: dt.datetime, user=None) -> ConsentLink:
    """What an email link asks, checked without changing anything: a forged or expired link, a used one, one
    for another subscriber than the one logged in, or one for a change already past, is refused."""
    max_age = dt.timedelta(days=settings.BILLING_CONSENT_WINDOW_DAYS + 1)
    try:
        payload = signing.loads(token, salt=SIGNING_SALT, max_age=max_age.total_seconds())
        request_id, customer_id, outcome, nonce = payload["r"], payload["c"], payload["o"], payload["n"]
    except (signing.BadSignature, KeyError, TypeError):
        raise ConsentTokenInvalidError() from None
    if outcome not in (Outcome.GRANTED, Outcome.REFUSED) or not isinstance(nonce, str):
        raise ConsentTokenInvalidError()
    request = ConsentRequest.objects.select_related("subscription__plan").filter(pk=request_id).first()
    if request is None or request.subscription.customer_id != customer_id:
        raise ConsentTokenInvalidError()
    if user is not None and getattr(user, "is_authenticated", False):
        own = getattr(getattr(user, "customer", None), "pk", None)
        if own != customer_id:
            raise ConsentTokenOtherSubscriberError()
    if ConsentDecision.objects.filter(token_nonce=nonce).exists():
        raise ConsentTokenUsedError()
    if now >= request.change_at or request.subscription.status == Subscription.Status.CANCELED:
        raise ConsentClosedError()
    return ConsentLink(request=request, outcome=outcome, customer_id=customer_id, nonce=nonce)


def consent_token_use(*, token: str, answerer: Answerer, now: dt.datetime, user=None) -> ConsentDecision:
    """Answer through an email link (a POST from its confirmation page): once per email."""
    link = consent_token_read(token=token, now=now, user=user)
    try:
        return consent_decide(
            request_id=link.request.pk,
            outcome=link.outcome,
            answerer=answerer,
            now=now,
            customer_id=link.customer_id,
            token_nonce=link.nonce,
        )
    except IntegrityError:  # the same link posted twice at the same moment: the other post won
        raise ConsentTokenUsedError() from None


# --- reminders --------------------------------------------------------------------------------------------


def consents_ask_due(*, now: dt.datetime) -> int:
    """Email every open, unanswered question whose next ask is due, and set the next one. Safe to run again:
    each request is claimed (SKIP LOCKED) and re-checked. Trials that began before consent existed get their
    question here. Returns how many emails were queued."""
    for sub in Subscription.objects.filter(status=Subscription.Status.TRIALING, trial_end__gt=now).exclude(
        consent_requests__kind=Kind.TRIAL_CONVERSION
    ):
        with transaction.atomic():
            try:
                trial_consent_request_create(subscription=sub, now=now)
            except IntegrityError:
                pass
    for version in PlanPriceVersion.objects.filter(consent_requests__change_at__gt=now).distinct():
        price_change_requests_create(version=version, now=now)
    sent = 0
    cadence = dt.timedelta(days=settings.BILLING_CONSENT_REMINDER_DAYS)
    with transaction.atomic():
        due = (
            ConsentRequest.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("subscription__customer", "subscription__plan")
            .filter(next_ask_at__lte=now, change_at__gt=now)
        )
        for request in due:
            sub = request.subscription
            if (
                sub.status == Subscription.Status.CANCELED
                or sub.cancel_at_period_end
                or request.decisions.exists()  # answered: a yes needs no reminder, a no gets none
            ):
                request.next_ask_at = None
                request.save(update_fields=["next_ask_at"])
                continue
            following = now + cadence
            request.next_ask_at = following if following < request.change_at else None
            request.asks_sent += 1
            request.save(update_fields=["next_ask_at", "asks_sent"])
            nonce = secrets.token_urlsafe(12)
            facts = {
                "customer_id": sub.customer_id,
                "kind": request.kind,
                "plan_name_ko": sub.plan.name_ko,
                "plan_name_en": sub.plan.name_en,
                "change_at": request.change_at,
                "terms_ko": request.terms_ko,
                "terms_en": request.terms_en,
                "yes_token": consent_token_make(request=request, outcome=Outcome.GRANTED, nonce=nonce),
                "no_token": consent_token_make(request=request, outcome=Outcome.REFUSED, nonce=nonce),
                "reminder": request.asks_sent > 1,
            }
            transaction.on_commit(lambda facts=facts: notifications.send_consent_request(**facts))
            sent += 1
    return sent


# --- at the change ------------------------------------------------------------------------------------------


def _expire_if_unanswered(request: ConsentRequest, now: dt.datetime) -> str:
    outcome = consent_outcome(request)
    if outcome == PENDING:
        ConsentDecision.objects.create(
            request=request,
            outcome=Outcome.EXPIRED,
            channel=ConsentDecision.Channel.SYSTEM,
            actor_label="system",
            text_shown=request.terms_ko,
            decided_at=now,
        )
        audit_record(
            at=now,
            action="consent.expired",
            obj=request,
            customer_id=request.subscription.customer_id,
            from_status=PENDING,
            to_status=Outcome.EXPIRED,
            data={"kind": request.kind},
        )
        request.next_ask_at = None
        request.save(update_fields=["next_ask_at"])
        return Outcome.EXPIRED
    return outcome


def trial_conversion_at_end(sub: Subscription, now: dt.datetime) -> bool:
    """At the end of a (locked) trial: True when the subscriber said yes, so the first charge may happen.
    Otherwise the subscription ends at the trial end without any charge, with the reason, and the subscriber
    is told."""
    request = ConsentRequest.objects.select_for_update().filter(subscription=sub, kind=Kind.TRIAL_CONVERSION).first()
    outcome = _expire_if_unanswered(request, now) if request is not None else Outcome.EXPIRED
    if outcome == Outcome.GRANTED:
        return True
    reason = "trial_consent_refused" if outcome == Outcome.REFUSED else "trial_consent_missing"
    subscription_end(sub, now, at=sub.trial_end, reason=reason)
    facts = {
        "customer_id": sub.customer_id,
        "plan_name_ko": sub.plan.name_ko,
        "plan_name_en": sub.plan.name_en,
        "ended_at": sub.trial_end,
        "refused": outcome == Outcome.REFUSED,
    }
    transaction.on_commit(lambda: notifications.send_trial_ended_without_consent(**facts))
    return False


def price_versions_by_plan(*, plan_ids) -> dict[int, list[PlanPriceVersion]]:
    """Each plan's price versions, newest first (one query for a renewal batch)."""
    found: dict[int, list[PlanPriceVersion]] = {}
    for version in PlanPriceVersion.objects.filter(plan_id__in=plan_ids).order_by("-effective_at", "-id"):
        found.setdefault(version.plan_id, []).append(version)
    return found


def price_at_renewal(sub: Subscription, now: dt.datetime, versions: list[PlanPriceVersion]) -> bool:
    """Before a (locked) active subscription starts the period beginning at its `current_period_end`: move it
    to the newest price version in effect by then, a decrease at once, an increase only with consent. When an
    increase was not consented to and the version says so, the subscription ends there instead (returns
    False); otherwise True (renew, at whichever price now applies). `versions`: the plan's, newest first."""
    renewal = sub.current_period_end
    version = next((v for v in versions if v.effective_at <= renewal), None)
    if version is None or version.pk == sub.price_version_id:
        return True
    if sub.price_version_id and sub.price_version.effective_at > version.effective_at:
        return True
    before, _tax_free = period_price(sub, sub.plan)
    if version.amount <= before:
        _move(sub, version, now, before=before, consented=False)
        return True
    request = (
        ConsentRequest.objects.select_for_update()
        .filter(subscription=sub, price_version=version, kind=Kind.PRICE_INCREASE)
        .first()
    )
    if request is None or request.change_at > renewal:
        return True  # not asked for this renewal (joined late, or too little notice): the old price, once more
    outcome = _expire_if_unanswered(request, now)
    if outcome == Outcome.GRANTED:
        _move(sub, version, now, before=before, consented=True)
        return True
    if version.non_consent_action == PlanPriceVersion.NonConsentAction.KEEP_OLD_PRICE:
        return True
    subscription_end(sub, now, at=renewal, reason="price_increase_not_consented")
    facts = {
        "customer_id": sub.customer_id,
        "plan_name_ko": sub.plan.name_ko,
        "plan_name_en": sub.plan.name_en,
        "ended_at": renewal,
    }
    transaction.on_commit(lambda: notifications.send_price_increase_ended(**facts))
    return False


def _move(sub: Subscription, version: PlanPriceVersion, now: dt.datetime, *, before: int, consented: bool) -> None:
    audit_record(
        at=now,
        action="subscription.price_changed",
        obj=sub,
        customer_id=sub.customer_id,
        amount=version.amount,
        reason="consented increase" if consented else "decrease",
        data={"from": before, "to": version.amount, "price_version": version.pk},
    )
    sub.price_version = version
    sub.save(update_fields=["price_version", "updated_at"])
