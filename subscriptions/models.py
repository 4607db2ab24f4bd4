"""Plans, subscriptions, and which invoice pays for which period of which subscription."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from billing.models import BillingKey, Customer, Invoice


class Interval(models.TextChoices):
    DAY = "day", _("day")
    WEEK = "week", _("week")
    MONTH = "month", _("month")
    YEAR = "year", _("year")


class Plan(models.Model):
    """A price. Immutable once anyone subscribed: a price change is a new plan (existing subscribers keep theirs)."""

    PRICE_FIELDS = ("amount", "tax_free_amount", "interval", "interval_count", "currency")

    code = models.SlugField(max_length=64, unique=True)
    name_ko = models.CharField(max_length=40)
    name_en = models.CharField(max_length=40)
    description_ko = models.CharField(max_length=255, blank=True)
    description_en = models.CharField(max_length=255, blank=True)
    amount = models.PositiveBigIntegerField(help_text=_("KRW, VAT included"))
    tax_free_amount = models.PositiveBigIntegerField(default=0, help_text=_("tax-free (면세) part of the amount"))
    currency = models.CharField(max_length=3, default="KRW")
    interval = models.CharField(max_length=8, choices=Interval.choices, default=Interval.MONTH)
    interval_count = models.PositiveSmallIntegerField(default=1)
    trial_days = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["sort_order", "amount", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="plan_amount_positive"),
            models.CheckConstraint(
                condition=Q(tax_free_amount__lte=models.F("amount")), name="plan_tax_free_le_amount"
            ),
            models.CheckConstraint(condition=Q(interval_count__gte=1), name="plan_interval_count_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.amount:,}원)"

    @property
    def name(self) -> str:
        return self.name_en if (get_language() or "ko").startswith("en") else self.name_ko

    @property
    def description(self) -> str:
        return self.description_en if (get_language() or "ko").startswith("en") else self.description_ko


class Subscription(models.Model):
    class Status(models.TextChoices):
        INCOMPLETE = "incomplete", _("incomplete")
        TRIALING = "trialing", _("trialing")
        ACTIVE = "active", _("active")
        PAST_DUE = "past_due", _("past due")
        PAUSED = "paused", _("paused")
        CANCELED = "canceled", _("canceled")
        UNPAID = "unpaid", _("unpaid")

    LIVE_STATUSES = ("incomplete", "trialing", "active", "past_due", "paused", "unpaid")
    # Statuses in which the subscriber has access to the service.
    ACCESS_STATUSES = ("trialing", "active", "past_due")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    billing_key = models.ForeignKey(BillingKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INCOMPLETE)
    # Periods are computed from this anchor (subscriptions.periods), never from the previous period's end.
    billing_anchor = models.DateTimeField()
    current_period_index = models.IntegerField(default=0)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    trial_end = models.DateTimeField(null=True, blank=True)
    trial_notice_sent_at = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=64, blank=True)
    # A downgrade waits for the period end.
    pending_plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Pause from the next period: for pause_periods periods, or until resumed when pause_periods is null.
    pause_requested = models.BooleanField(default=False)
    pause_periods = models.PositiveSmallIntegerField(null=True, blank=True)
    resume_at = models.DateTimeField(null=True, blank=True)
    incomplete_expires_at = models.DateTimeField(null=True, blank=True)
    # When the renewal sweep must next look at this subscription (period end, trial end, resume, expiry).
    next_event_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-created_at", "-id"]
        constraints = [
            # One live subscription per customer: a double-clicked "subscribe" or a card update never
            # creates a second one.
            models.UniqueConstraint(
                fields=["customer"],
                condition=~Q(status="canceled"),
                name="subscription_one_live_per_customer",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_event_at"],
                condition=Q(status__in=["incomplete", "trialing", "active", "past_due", "paused"]),
                name="subscription_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"subscription {self.pk} ({self.plan.code}, {self.status})"

    @property
    def has_access(self) -> bool:
        return self.status in self.ACCESS_STATUSES


class SubscriptionInvoice(models.Model):
    """Which invoice bills which period of which subscription. Unique per (subscription, period start) for
    period invoices, which is what makes a renewal idempotent however often the sweep runs."""

    class Kind(models.TextChoices):
        FIRST = "first", _("first period")
        RENEWAL = "renewal", _("renewal")
        UPGRADE = "upgrade", _("upgrade proration")
        INTERVAL_CHANGE = "interval_change", _("interval change")

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="subscription_invoices")
    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="subscription_link")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    # For plan changes: the plan the subscription moves to once (and only once) this invoice is paid.
    target_plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    period_index = models.IntegerField()
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    # A pre-registered renewal (schedule strategy) that was revoked and replaced (plan, card or pause changed).
    superseded = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=Q(kind__in=["first", "renewal"], superseded=False),
                name="subscription_invoice_one_per_period",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.period_start:%Y-%m-%d} -> invoice {self.invoice_id}"
