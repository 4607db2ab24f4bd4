"""Notices to subscribers, in their language (Korean first, English second), sent after commit: charge
failures through the notice engine (notices/services.py), receipts by email."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import translation

from billing.models import Customer, Invoice, PaymentAttempt
from notices.models import NoticeType
from notices.services import notice_create
from subscriptions.merchant import merchant_profile
from subscriptions.models import Plan, Subscription

logger = logging.getLogger(__name__)


def _url(name: str, fallback: str) -> str:
    try:
        path = reverse(name)
    except NoReverseMatch:
        path = fallback
    return settings.SITE_URL.rstrip("/") + path


def _send(customer: Customer, template: str, context: dict) -> None:
    if not customer.email:
        logger.info("customer %s has no email; %s not sent", customer.pk, template)
        return
    language = "en" if customer.preferred_language.startswith("en") else "ko"
    context = {**context, "MERCHANT": merchant_profile()}
    with translation.override(language):
        subject = render_to_string(f"subscriptions/email/{template}_{language}.subject.txt", context).strip()
        body = render_to_string(f"subscriptions/email/{template}_{language}.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [customer.email])


def send_payments_failed(*, failures: list[tuple[Invoice, PaymentAttempt, Plan, int]], now=None) -> None:
    """One `payment_failed` notice per failed charge, through the notice engine (알림톡 → SMS → email,
    notices/services.py): (invoice with its customer, attempt, plan, subscription id) as dunning committed them."""
    update_card_url = _url("subscriptions:card", "/account/card/")
    for invoice, attempt, plan, subscription_id in failures:
        english = invoice.customer.preferred_language.startswith("en")
        notice_create(
            type=NoticeType.PAYMENT_FAILED,
            customer=invoice.customer,
            key=f"payment_failed:{attempt.pk}",
            now=now or attempt.created_at,
            subscription_id=subscription_id,
            templates={"email": "subscriptions/email/payment_failed"},
            facts={
                "invoice": invoice.number,
                "amount": invoice.total,
                "reason": attempt.failure_reason,
                "next_attempt_at": invoice.next_attempt_at.isoformat() if invoice.next_attempt_at else None,
                "update_card_url": update_card_url,
            },
            context={
                "invoice": invoice,
                "plan": plan,  # its name in the notice's language (the invoice has only ko)
                "attempt": attempt,
                "update_card_url": update_card_url,
                "next_attempt_at": invoice.next_attempt_at,
                "plan_name": (plan.name_en if english else plan.name_ko) if plan else invoice.description,
                "amount": invoice.total,
                "reason": attempt.failure_reason,
                "merchant_name": settings.MERCHANT_NAME,
                "MERCHANT": merchant_profile(),
            },
        )


def send_receipts(*, receipts: list[tuple[Invoice, PaymentAttempt, Subscription]]) -> None:
    """A receipt for each paid subscription invoice, (invoice, the attempt that paid it, its subscription) as
    the settlement committed them, with the terms the subscriber agreed to at checkout: the amount and its VAT
    and tax-free parts, the period, the card, that it renews automatically until cancelled and when next, how
    to cancel in one step, and the refund policy."""
    account_url = _url("subscriptions:account", "/account/")
    refund_policy_url = settings.SITE_URL.rstrip("/") + reverse("subscriptions:policy", args=["refund"])
    for invoice, attempt, subscription in receipts:
        live = subscription.status in (Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)
        _send(
            invoice.customer,
            "receipt",
            {
                "invoice": invoice,
                "attempt": attempt,
                "plan": subscription.plan,
                "subscription": subscription,
                "next_charge_at": subscription.current_period_end if live else None,
                "account_url": account_url,
                "refund_policy_url": refund_policy_url,
                "receipt_url": settings.SITE_URL.rstrip("/") + reverse("subscriptions:receipt", args=[invoice.pk]),
            },
        )


def send_consent_request(
    *,
    customer_id: int,
    kind: str,
    plan_name_ko: str,
    plan_name_en: str,
    change_at,
    terms_ko: str,
    terms_en: str,
    yes_token: str,
    no_token: str,
    reminder: bool,
) -> None:
    """The consent question (a trial turning paid, or a price increase) with its exact terms and two equal
    single-use links; each link opens a confirmation page and changes nothing until it is confirmed."""
    _send(
        Customer.objects.get(pk=customer_id),
        "consent_request",
        {
            "kind": kind,
            "plan_name_ko": plan_name_ko,
            "plan_name_en": plan_name_en,
            "change_at": change_at,
            "terms_ko": terms_ko,
            "terms_en": terms_en,
            "yes_url": _url("subscriptions:consent-link", "/consent/") + f"?t={yes_token}",
            "no_url": _url("subscriptions:consent-link", "/consent/") + f"?t={no_token}",
            "account_url": _url("subscriptions:account", "/account/"),
            "reminder": reminder,
        },
    )


def send_trial_ended_without_consent(
    *, customer_id: int, plan_name_ko: str, plan_name_en: str, ended_at, refused: bool
) -> None:
    """The trial ended without a "yes": nothing was charged."""
    _send(
        Customer.objects.get(pk=customer_id),
        "trial_ended_uncharged",
        {
            "plan_name_ko": plan_name_ko,
            "plan_name_en": plan_name_en,
            "ended_at": ended_at,
            "refused": refused,
            "pricing_url": _url("subscriptions:pricing", "/"),
        },
    )


def send_price_increase_ended(*, customer_id: int, plan_name_ko: str, plan_name_en: str, ended_at) -> None:
    """The subscription ended at the renewal because the higher price was not agreed to: nothing was charged."""
    _send(
        Customer.objects.get(pk=customer_id),
        "price_increase_ended",
        {
            "plan_name_ko": plan_name_ko,
            "plan_name_en": plan_name_en,
            "ended_at": ended_at,
            "pricing_url": _url("subscriptions:pricing", "/"),
        },
    )
