"""Reads behind the billing API, always scoped to the requesting user.

They belong in billing/selectors.py; they live here while the API is the only reader.
"""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet, Sum

from billing.models import BillingKey, Invoice, PaymentAttempt, Refund


def billing_keys_for_user(*, user) -> QuerySet[BillingKey]:
    return BillingKey.objects.filter(customer__user=user, status=BillingKey.Status.ACTIVE).order_by(
        "-is_default", "-created_at", "-id"
    )


def invoices_for_user(*, user) -> QuerySet[Invoice]:
    """Finalized invoices (drafts are not bills yet), with the refunded total derived from the refund rows."""
    return (
        Invoice.objects.filter(customer__user=user)
        .exclude(status=Invoice.Status.DRAFT)
        .annotate(
            refunded_total=Sum(
                "attempts__refunds__amount",
                filter=Q(attempts__refunds__status=Refund.Status.SUCCEEDED),
                default=0,
            )
        )
        .prefetch_related("lines")
        .order_by("-created_at", "-id")
    )


def payments_all() -> QuerySet[PaymentAttempt]:
    return (
        PaymentAttempt.objects.select_related("invoice")
        .prefetch_related(Prefetch("refunds", queryset=Refund.objects.order_by("created_at", "id")))
        .order_by("-created_at", "-id")
    )


def payments_for_user(*, user) -> QuerySet[PaymentAttempt]:
    return payments_all().filter(invoice__customer__user=user)


def refunds_for_payment(*, attempt: PaymentAttempt) -> QuerySet[Refund]:
    return Refund.objects.filter(attempt=attempt).select_related("actor").order_by("-created_at", "-id")
