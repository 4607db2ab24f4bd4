"""Billing's signals, each a one-line call into subscriptions/services/settlement.py. Connected in
SubscriptionsConfig.ready(). They run inside the transaction that settled the payments, so "invoice paid" and
"subscription active" (or "plan changed") commit together, whichever path settled it: a charge, the janitor,
or a webhook."""

from __future__ import annotations

from django.dispatch import receiver

from billing import signals
from subscriptions.services import settlement


@receiver(signals.invoices_paid)
def on_invoices_paid(sender, *, payments, now, **kwargs) -> None:
    settlement.subscriptions_on_invoices_paid(payments=payments, now=now)


@receiver(signals.invoices_payment_failed)
def on_invoices_payment_failed(sender, *, failures, now, **kwargs) -> None:
    settlement.subscriptions_on_payments_failed(failures=failures, now=now)


@receiver(signals.default_billing_key_changed)
def on_default_billing_key_changed(sender, *, customer, billing_key, now, **kwargs) -> None:
    settlement.subscription_on_default_card_changed(customer=customer, billing_key=billing_key, now=now)
