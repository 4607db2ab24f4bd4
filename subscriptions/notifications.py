"""Emails to subscribers, in their language (Korean first, English second). Sent after commit."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import translation

from billing.models import Customer, Invoice, PaymentAttempt
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


def send_payments_failed(*, failures: list[tuple[Invoice, PaymentAttempt, Plan]]) -> None:
    """One email per failed charge: (invoice with its customer, attempt, plan) as dunning committed them, so a
    batch of failures costs no query here."""
    update_card_url = _url("subscriptions:card", "/account/card/")
    for invoice, attempt, plan in failures:
        _send(
            invoice.customer,
            "payment_failed",
            {
                "invoice": invoice,
                "plan": plan,  # its name in the email's language (the invoice has only ko)
                "attempt": attempt,
                "update_card_url": update_card_url,
                "next_attempt_at": invoice.next_attempt_at,
            },
        )


def send_trial_ending(*, subscription_id: int) -> None:
    subscription = Subscription.objects.select_related("customer", "plan").get(pk=subscription_id)
    _send(
        subscription.customer,
        "trial_ending",
        {"subscription": subscription, "account_url": _url("subscriptions:account", "/account/")},
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
