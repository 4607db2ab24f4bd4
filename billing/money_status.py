"""What happened to the money of an invoice or a payment, as a subscriber reads it.

One derivation for every surface (invoice list, receipt, account page, emails, API), computed from the
invoice's own state and the total of its succeeded refund rows; nothing is stored twice
(docs/architecture.md#gateway-sandbox-and-payment-states).

- paid: paid, nothing refunded            - partially_refunded: paid, 0 < refunded < total
- refunded: paid and refunded in full     - failed: a charge was declined (open, uncollectible or void)
- unpaid: not paid and no charge declined yet (just opened, or a charge still being confirmed)
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from billing.models import Invoice, PaymentAttempt


class MoneyStatus(models.TextChoices):
    PAID = "paid", _("Paid")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded in full")
    FAILED = "failed", _("Payment failed")
    UNPAID = "unpaid", _("Unpaid")


def _by_refunds(total: int, refunded: int) -> MoneyStatus:
    if refunded <= 0:
        return MoneyStatus.PAID
    return MoneyStatus.REFUNDED if refunded >= total else MoneyStatus.PARTIALLY_REFUNDED


def invoice_money_status(invoice: Invoice, *, refunded: int) -> MoneyStatus:
    """`refunded`: the invoice's succeeded refunds, in won (selectors annotate it)."""
    if invoice.status == Invoice.Status.PAID:
        return _by_refunds(invoice.total, refunded)
    if invoice.first_failed_at is not None or invoice.status in (Invoice.Status.UNCOLLECTIBLE, Invoice.Status.VOID):
        return MoneyStatus.FAILED
    return MoneyStatus.UNPAID


def attempt_money_status(attempt: PaymentAttempt, *, refunded: int) -> MoneyStatus:
    if attempt.status == PaymentAttempt.Status.SUCCEEDED:
        return _by_refunds(attempt.amount, refunded)
    if attempt.status == PaymentAttempt.Status.FAILED:
        return MoneyStatus.FAILED
    return MoneyStatus.UNPAID
