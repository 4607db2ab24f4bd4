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


def send_payments_failed(*, failures: list[tuple[int, int]]) -> None:
    """One email per failed charge, (invoice id, attempt id) each; the rows are read in three queries."""
    invoice_ids = [invoice_id for invoice_id, _ in failures]
    invoices = Invoice.objects.select_related("customer").in_bulk(invoice_ids)
    attempts = PaymentAttempt.objects.in_bulk([attempt_id for _, attempt_id in failures])
    plans = {  # each invoice's plan: its name in the email's language (the invoice has only ko)
        link.invoice_id: link.plan
        for link in SubscriptionInvoice.objects.select_related("plan").filter(invoice_id__in=invoice_ids)
    }
    update_card_url = _url("subscriptions:card", "/account/card/")
    for invoice_id, attempt_id in failures:
        invoice = invoices[invoice_id]
        _send(
            invoice.customer,
            "payment_failed",
            {
                "invoice": invoice,
                "plan": plans.get(invoice_id),
                "attempt": attempts[attempt_id],
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
