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
    # The plan's price version this subscriber pays (null: the plan's own amount). Set only at a renewal, by
    # subscriptions/services/consent.py, after consent for an increase (or at once for a decrease).
    price_version = models.ForeignKey(
        "PlanPriceVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
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


class PolicyDocument(models.Model):
    """One version of a policy the merchant writes in the admin: 이용약관, 개인정보처리방침 or 환불정책.

    Versions are never edited once in effect (the admin makes them read-only): a change is a new version with
    its own effective date. The current version of a kind is the newest one in effect; past versions stay
    readable, because a subscriber agreed to the one in effect when they subscribed.
    """

    class Kind(models.TextChoices):
        TERMS = "terms", _("Terms of service")
        PRIVACY = "privacy", _("Privacy policy")
        REFUND = "refund", _("Refund policy")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    version = models.CharField(max_length=32, help_text=_("e.g. 2026-01 or v2; unique per kind"))
    body_ko = models.TextField(help_text=_("Korean text, shown first"))
    body_en = models.TextField(blank=True, help_text=_("English text; the Korean text is shown when empty"))
    effective_at = models.DateTimeField(help_text=_("When this version takes effect"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("policy document")
        verbose_name_plural = _("policy documents")
        ordering = ["kind", "-effective_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["kind", "version"], name="policy_document_kind_version")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.version}"

    @property
    def body(self) -> str:
        english = (get_language() or "ko").startswith("en")
        return self.body_en if english and self.body_en else self.body_ko

    @property
    def body_language(self) -> str:
        english = (get_language() or "ko").startswith("en")
        return "en" if english and self.body_en else "ko"


class SubscriptionAgreement(models.Model):
    """What a subscriber agreed to when subscribing (전자상거래법 §13, 약관법): append-only, written in the same
    transaction as the subscription. The documents are the versions shown on the checkout page (or current
    when the API was called); `auto_renewal` is the explicit consent to automatic renewal."""

    class Channel(models.TextChoices):
        WEB = "web", _("web checkout")
        API = "api", _("API")

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="agreements")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    terms = models.ForeignKey(PolicyDocument, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    refund_policy = models.ForeignKey(PolicyDocument, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    privacy_policy = models.ForeignKey(
        PolicyDocument, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    auto_renewal = models.BooleanField()
    channel = models.CharField(max_length=8, choices=Channel.choices)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    agreed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("subscription agreement")
        verbose_name_plural = _("subscription agreements")
        ordering = ["-agreed_at", "-id"]
        constraints = [
            # Only an explicit yes to automatic renewal is a record worth keeping.
            models.CheckConstraint(condition=Q(auto_renewal=True), name="agreement_auto_renewal_given"),
        ]

    def __str__(self) -> str:
        return f"agreement {self.pk} (subscription {self.subscription_id}, {self.agreed_at:%Y-%m-%d})"


class PlanPriceVersion(models.Model):
    """A new price of a plan for its existing subscribers, from `effective_at`. The plan's own row never
    changes: each subscriber moves to this version at their first renewal on or after that date, and for an
    increase only with their consent (전자상거래법 §13 ⑥; subscriptions/services/consent.py)."""

    class NonConsentAction(models.TextChoices):
        CANCEL_AT_PERIOD_END = "cancel_at_period_end", _("end the subscription at the renewal")
        KEEP_OLD_PRICE = "keep_old_price", _("keep the old price")

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="price_versions")
    amount = models.PositiveBigIntegerField(help_text=_("KRW, VAT included"))
    tax_free_amount = models.PositiveBigIntegerField(default=0, help_text=_("tax-free (면세) part of the amount"))
    effective_at = models.DateTimeField(help_text=_("Subscribers move at their first renewal on or after this"))
    non_consent_action = models.CharField(
        max_length=24, choices=NonConsentAction.choices, default=NonConsentAction.CANCEL_AT_PERIOD_END
    )
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("price change")
        verbose_name_plural = _("price changes")
        ordering = ["-effective_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="price_version_amount_positive"),
            models.CheckConstraint(
                condition=Q(tax_free_amount__lte=models.F("amount")), name="price_version_tax_free_le_amount"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan.code} → {self.amount:,}원 ({self.effective_at:%Y-%m-%d})"


class ConsentRequest(models.Model):
    """A question put to one subscriber before a trial turns paid or a price goes up, with the exact terms.

    Written once and never edited but for the reminder cadence (`next_ask_at`, `asks_sent`); the answer is
    the newest `ConsentDecision`, and no decision means no consent."""

    class Kind(models.TextChoices):
        TRIAL_CONVERSION = "trial_conversion", _("free trial turns paid")
        PRICE_INCREASE = "price_increase", _("price increase")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="consent_requests")
    price_version = models.ForeignKey(
        PlanPriceVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="consent_requests"
    )
    # The terms as they were put: when the change happens, the price before and after (VAT included), the card.
    change_at = models.DateTimeField()
    opens_at = models.DateTimeField()
    amount_before = models.PositiveBigIntegerField()
    amount_after = models.PositiveBigIntegerField()
    card_label = models.CharField(max_length=80, blank=True)
    non_consent_action = models.CharField(max_length=24, blank=True)
    terms_ko = models.TextField()
    terms_en = models.TextField()
    next_ask_at = models.DateTimeField(null=True, blank=True)
    asks_sent = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("consent request")
        verbose_name_plural = _("consent requests")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription"], condition=Q(kind="trial_conversion"), name="consent_one_per_trial"
            ),
            models.UniqueConstraint(
                fields=["subscription", "price_version"],
                condition=Q(kind="price_increase"),
                name="consent_one_per_price_version",
            ),
            models.CheckConstraint(condition=Q(opens_at__lt=models.F("change_at")), name="consent_opens_before"),
        ]
        indexes = [
            models.Index(fields=["next_ask_at"], condition=Q(next_ask_at__isnull=False), name="consent_ask_due_idx")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · subscription {self.subscription_id} · {self.change_at:%Y-%m-%d}"

    def terms(self, language: str | None = None) -> str:
        english = (language or get_language() or "ko").startswith("en")
        return self.terms_en if english else self.terms_ko


class ConsentDecision(models.Model):
    """One answer to a consent request: append-only proof of who said what, when, from where, to which text.
    The newest row is the answer; `expired` is written by the system when the change came with no answer."""

    class Outcome(models.TextChoices):
        GRANTED = "granted", _("granted")
        REFUSED = "refused", _("refused")
        EXPIRED = "expired", _("expired (no answer)")

    class Channel(models.TextChoices):
        WEB = "web", _("account page")
        API = "api", _("API")
        EMAIL = "email", _("email link")
        SYSTEM = "system", _("system")

    request = models.ForeignKey(ConsentRequest, on_delete=models.PROTECT, related_name="decisions")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    actor = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=150)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    text_shown = models.TextField()
    # The email a link came in: each email's yes/no pair can be used once.
    token_nonce = models.CharField(max_length=32, null=True, blank=True, unique=True)
    decided_at = models.DateTimeField()

    class Meta:
        verbose_name = _("consent decision")
        verbose_name_plural = _("consent decisions")
        ordering = ["-decided_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} · {self.decided_at:%Y-%m-%d %H:%M}"
