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
from subscriptions.models import Subscription, SubscriptionInvoice

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


def send_payment_failed(*, invoice_id: int, attempt_id: int) -> None:
    invoice = Invoice.objects.select_related("customer").get(pk=invoice_id)
    attempt = PaymentAttempt.objects.get(pk=attempt_id)
    link = SubscriptionInvoice.objects.select_related("plan").filter(invoice=invoice).first()
    _send(
        invoice.customer,
        "payment_failed",
        {
            "invoice": invoice,
            "plan": link.plan if link else None,  # its name in the email's language (the invoice has only ko)
            "attempt": attempt,
            "update_card_url": _url("subscriptions:card", "/account/card/"),
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
