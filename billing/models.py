"""Billing's records: customers, billing keys, invoices, payment attempts, refunds, webhook events, audit log.

Money is an `int` of won in a positive big-integer column guarded by a CheckConstraint. The database itself
enforces the promises the services make: one paid attempt per invoice, one unsettled attempt per invoice,
unique merchant_uid / imp_uid / customer_uid, one default card per customer.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.crypto import KeyGenerator
from rest_framework_api_key.models import AbstractAPIKey, APIKeyManager


class Customer(models.Model):
    """The paying party. One per user."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="customer")
    email = models.EmailField(blank=True)
    name = models.CharField(max_length=100, blank=True)
    # Credit carried from an interval change whose unused time exceeded the new price; spent on the next invoices.
    credit_balance = models.PositiveBigIntegerField(default=0)
    preferred_language = models.CharField(max_length=8, default="ko")
    # The merchant's own id for this user (its database key), set when its backend creates the customer.
    external_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")

    def __str__(self) -> str:
        return self.email or f"customer {self.pk}"


class CardRegistration(models.Model):
    """A customer_uid the server issued to one customer, waiting for the browser SDK to bind a card to it.

    The browser's word is never enough: the registration is confirmed only after Iamport itself reports a
    billing key under this customer_uid. A customer_uid that is not here for this customer is refused.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        CONFIRMED = "confirmed", _("confirmed")
        FAILED = "failed", _("failed")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="card_registrations")
    customer_uid = models.CharField(max_length=80, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    failure_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("card registration")
        verbose_name_plural = _("card registrations")

    def __str__(self) -> str:
        return f"{self.customer_uid} ({self.status})"


class BillingKey(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        DELETED = "deleted", _("deleted")

    class Gateway(models.TextChoices):
        IAMPORT_V1 = "iamport_v1", _("Iamport (PortOne V1)")
        PORTONE_V2 = "portone_v2", _("PortOne V2")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="billing_keys")
    customer_uid = models.CharField(max_length=80, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # The gateway that issued the card; it is charged there for as long as it lives (billing/gateway/routing.py).
    gateway = models.CharField(max_length=16, choices=Gateway.choices, default=Gateway.IAMPORT_V1)
    is_default = models.BooleanField(default=False)
    card_name = models.CharField(max_length=64, blank=True)
    card_number_masked = models.CharField(max_length=32, blank=True)
    card_code = models.CharField(max_length=16, blank=True)
    card_type = models.SmallIntegerField(null=True, blank=True)
    pg_provider = models.CharField(max_length=32, blank=True)
    pg_id = models.CharField(max_length=80, blank=True)
    sandbox = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("billing key")
        verbose_name_plural = _("billing keys")
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(is_default=True, status="active"),
                name="billing_key_one_default_per_customer",
            )
        ]

    def __str__(self) -> str:
        return f"{self.card_name} {self.card_number_masked}".strip() or self.customer_uid


class InvoiceNumberSequence(models.Model):
    """Gapless invoice numbers per year: the row is locked while a number is taken inside the finalizing
    transaction, so a rolled-back finalization never burns a number."""

    year = models.PositiveIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


class Invoice(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        OPEN = "open", _("open")
        PAID = "paid", _("paid")
        VOID = "void", _("void")
        UNCOLLECTIBLE = "uncollectible", _("uncollectible")

    class Kind(models.TextChoices):
        SUBSCRIPTION_CREATE = "subscription_create", _("new subscription")
        RENEWAL = "renewal", _("renewal")
        PLAN_CHANGE = "plan_change", _("plan change")

    class DeclineClass(models.TextChoices):
        SOFT = "soft", _("soft decline")
        HARD = "hard", _("hard decline")
        GATEWAY = "gateway", _("gateway error")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    number = models.CharField(max_length=32, unique=True, null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    currency = models.CharField(max_length=3, default="KRW")
    description = models.CharField(max_length=40)  # sent to Iamport as `name` (≤40 chars)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    # Fixed at finalization: what the customer owes, VAT included, and its parts (supply + vat + tax_free == total).
    total = models.PositiveBigIntegerField(default=0)
    supply_amount = models.PositiveBigIntegerField(default=0)
    vat_amount = models.PositiveBigIntegerField(default=0)
    tax_free_amount = models.PositiveBigIntegerField(default=0)
    credit_applied = models.PositiveBigIntegerField(default=0)
    # Dunning state, owned by subscriptions.dunning: attempts so far and when the next one is due.
    attempt_count = models.PositiveIntegerField(default=0)
    first_failed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_decline_class = models.CharField(max_length=16, choices=DeclineClass.choices, blank=True)
    last_failure_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(total=models.F("supply_amount") + models.F("vat_amount") + models.F("tax_free_amount")),
                name="invoice_parts_sum_to_total",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["open", "paid", "uncollectible"]) | Q(number__isnull=False),
                name="invoice_finalized_has_number",
            ),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="open"), name="invoice_open_next_attempt_idx")
        ]

    def __str__(self) -> str:
        return self.number or f"draft #{self.pk}"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    description = models.CharField(max_length=255)
    amount = models.BigIntegerField()  # a credit line is negative
    tax_free_amount = models.BigIntegerField(default=0)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    # The machine-readable explanation (e.g. proration days, rates, rounding) rendered by templates.
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"


class PaymentAttempt(models.Model):
    """One request to charge an invoice, recorded BEFORE the gateway is called.

    PENDING -> SUCCEEDED | FAILED | UNKNOWN; UNKNOWN -> SUCCEEDED | FAILED, moved only by reconciliation
    (janitor or a verified webhook). A retry is a new attempt with a new merchant_uid.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")
        UNKNOWN = "unknown", _("unknown")

    class Via(models.TextChoices):
        AGAIN = "again", _("charge now")
        SCHEDULE = "schedule", _("scheduled charge")

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="attempts")
    merchant_uid = models.CharField(max_length=40, unique=True)
    customer_uid = models.CharField(max_length=80)
    via = models.CharField(max_length=16, choices=Via.choices, default=Via.AGAIN)
    amount = models.PositiveBigIntegerField()
    tax_free_amount = models.PositiveBigIntegerField(default=0)
    vat_amount = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Iamport's imp_uid; on PortOne V2 the paymentId (= merchant_uid, up to 40 characters).
    imp_uid = models.CharField(max_length=40, unique=True, null=True, blank=True)
    decline_class = models.CharField(max_length=16, choices=Invoice.DeclineClass.choices, blank=True)
    failure_code = models.CharField(max_length=32, blank=True)
    failure_reason = models.CharField(max_length=255, blank=True)
    card_name = models.CharField(max_length=64, blank=True)
    card_number_masked = models.CharField(max_length=32, blank=True)
    receipt_url = models.URLField(max_length=500, blank=True)
    pg_tid = models.CharField(max_length=64, blank=True)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    # Set when the gateway reported a different amount than we asked for: never booked as paid.
    flagged_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("payment attempt")
        verbose_name_plural = _("payment attempts")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice"], condition=Q(status="succeeded"), name="attempt_one_success_per_invoice"
            ),
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(status__in=["pending", "unknown"]),
                name="attempt_one_unsettled_per_invoice",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="attempt_amount_positive"),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(status__in=["pending", "unknown"]),
                name="attempt_unsettled_idx",
            )
        ]

    def __str__(self) -> str:
        return self.merchant_uid

    @property
    def is_unsettled(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.UNKNOWN)


class Refund(models.Model):
    """A ledger row per refund request. Refundable balance = attempt amount - succeeded and in-flight refunds."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")
        UNKNOWN = "unknown", _("unknown")

    attempt = models.ForeignKey(PaymentAttempt, on_delete=models.PROTECT, related_name="refunds")
    amount = models.PositiveBigIntegerField()
    tax_free_amount = models.PositiveBigIntegerField(default=0)
    vat_amount = models.PositiveBigIntegerField(default=0)
    reason = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    cancellation_id = models.CharField(max_length=64, blank=True)
    failure_reason = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            # One ledger row per Iamport cancellation, however many times its webhook arrives.
            models.UniqueConstraint(
                fields=["attempt", "cancellation_id"],
                condition=~Q(cancellation_id=""),
                name="refund_one_row_per_cancellation",
            ),
        ]

    def __str__(self) -> str:
        return f"refund {self.pk} of {self.amount} ({self.status})"


class WebhookEvent(models.Model):
    class State(models.TextChoices):
        RECEIVED = "received", _("received")
        PROCESSED = "processed", _("processed")
        IGNORED = "ignored", _("ignored")
        FLAGGED = "flagged", _("flagged for an operator")
        FAILED = "failed", _("failed, will retry")

    received_at = models.DateTimeField()
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    headers = models.JSONField(default=dict)
    raw_body = models.TextField()
    imp_uid = models.CharField(max_length=40, blank=True, db_index=True)
    merchant_uid = models.CharField(max_length=40, blank=True, db_index=True)
    status = models.CharField(max_length=16, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVED)
    result = models.CharField(max_length=255, blank=True)
    process_count = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"webhook {self.pk} {self.imp_uid} {self.status} ({self.state})"


class AuditLog(models.Model):
    """Every change of money or status, with who did it and why. Append-only."""

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=64)  # "system", "janitor", "webhook", "admin:alice", ...
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    amount = models.BigIntegerField(null=True, blank=True)
    from_status = models.CharField(max_length=32, blank=True)
    to_status = models.CharField(max_length=32, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type}#{self.object_id}"


class ClockOffset(models.Model):
    """The test clock (dev and test only): how far the app's clock runs ahead of real time. One row."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    offset_seconds = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"+{self.offset_seconds}s"


class ChargeRateLimiter(models.Model):
    """The global charge rate limit (settings.BILLING_CHARGE_RATE_LIMIT), one row: the earliest moment (UNIX
    seconds, database clock) at which the next charge may start. See billing.ratelimit."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    next_slot = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"next charge slot at {self.next_slot:.3f}"


class ReconciliationRun(models.Model):
    """One reconciliation (대사) of a KST business day against Iamport's ledger.

    A run pages through Iamport's list first (each page stored as ReconciliationLedgerEntry rows, so a run that
    stopped part way resumes at the next page), then classifies. Only a COMPLETE run with no open row is clean;
    an INCOMPLETE one is never reported clean. Reruns of a day are new runs: each keeps its own rows, and
    `new_count` says how many of its differences the previous complete run of that day did not have.
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        INCOMPLETE = "incomplete", _("stopped part way, will resume")
        COMPLETE = "complete", _("complete")

    day = models.DateField(db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=32, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(default=0)
    page_size = models.PositiveIntegerField(default=1000)
    pages_fetched = models.PositiveIntegerField(default=0)
    iamport_total = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    # {"matched": n, "missing_here": n, ...} and {"iamport": {"paid": {"count", "amount", "cancel_amount"}, ...},
    # "ours": {"paid": {...}, "refunded": {...}}}: written once, when the run completes.
    counts = models.JSONField(default=dict, blank=True)
    totals = models.JSONField(default=dict, blank=True)
    unresolved_count = models.PositiveIntegerField(default=0)
    new_count = models.PositiveIntegerField(default=0)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")
        ordering = ["-day", "-id"]
        constraints = [
            # At most one unfinished run per day: a second start resumes it instead.
            models.UniqueConstraint(
                fields=["day"], condition=~Q(status="complete"), name="reconciliation_one_unfinished_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"대사 {self.day:%Y-%m-%d} #{self.pk} ({self.status})"

    @property
    def is_clean(self) -> bool:
        return self.status == self.Status.COMPLETE and self.unresolved_count == 0


class ReconciliationLedgerEntry(models.Model):
    """One payment as Iamport listed it for a run's day: the evidence the run classified."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="ledger_entries")
    imp_uid = models.CharField(max_length=32)
    merchant_uid = models.CharField(max_length=40)
    status = models.CharField(max_length=16)
    amount = models.BigIntegerField()
    cancel_amount = models.BigIntegerField(default=0)
    at = models.DateTimeField(null=True, blank=True)  # the time of its status (what the listing filtered on)
    data = models.JSONField(default=dict, blank=True)  # cancel_history and the other fields we re-read

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "imp_uid"], name="reconciliation_entry_once_per_run")]

    def __str__(self) -> str:
        return f"{self.imp_uid} {self.status} {self.amount}"


class ReconciliationRow(models.Model):
    """One difference a run found between Iamport and our books, and what became of it."""

    class Kind(models.TextChoices):
        MISSING_HERE = "missing_here", _("at Iamport, not here")
        MISSING_THERE = "missing_there", _("paid here, not at Iamport")
        AMOUNT_DIFFERS = "amount_differs", _("amount differs")
        STATUS_DIFFERS = "status_differs", _("status differs")
        REFUND_DIFFERS = "refund_differs", _("refunds differ")
        UNKNOWN_OPEN = "unknown_open", _("outcome still unknown")

    class Resolution(models.TextChoices):
        OPEN = "open", _("open")
        AUTO = "auto", _("settled from Iamport")
        REFUNDED = "refunded", _("refunded at Iamport")
        INVESTIGATED = "investigated", _("investigated")

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="rows")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    imp_uid = models.CharField(max_length=32, blank=True)
    merchant_uid = models.CharField(max_length=40, blank=True)
    attempt = models.ForeignKey(PaymentAttempt, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    iamport_status = models.CharField(max_length=16, blank=True)
    iamport_amount = models.BigIntegerField(null=True, blank=True)
    iamport_cancel_amount = models.BigIntegerField(null=True, blank=True)
    our_status = models.CharField(max_length=16, blank=True)
    our_amount = models.BigIntegerField(null=True, blank=True)
    our_refunded = models.BigIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=255, blank=True)
    is_new = models.BooleanField(default=True)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, default=Resolution.OPEN)
    note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        verbose_name = _("reconciliation difference")
        verbose_name_plural = _("reconciliation differences")
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "resolution"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.imp_uid or self.merchant_uid}"

    @property
    def key(self) -> str:
        """What identifies the same difference across reruns of a day."""
        return f"{self.kind}:{self.imp_uid or self.merchant_uid}"


# --- the merchant's integration: server keys, idempotent writes, outgoing events ---------------------------

API_KEY_PREFIX = "sk_"


class _ServerKeyGenerator(KeyGenerator):
    """`sk_<8>.<32>`: the `sk_` start tells a server key from a subscriber token (40 hex characters) in the same
    `Authorization: Bearer` header (billing/api/keys.py)."""

    def get_prefix(self) -> str:
        return API_KEY_PREFIX + super().get_prefix()


class MerchantApiKeyManager(APIKeyManager):
    key_generator = _ServerKeyGenerator()


class MerchantApiKey(AbstractAPIKey):
    """A secret key of the merchant's backend: stored hashed (SHA-512, djangorestframework-api-key), shown once
    when created in the admin, refused at once when revoked or expired."""

    class Scope(models.TextChoices):
        READ = "read", _("read")
        WRITE = "write", _("write (customers, subscriptions, cards)")
        REFUNDS = "refunds", _("refunds")

    objects = MerchantApiKeyManager()
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    scopes = models.JSONField(default=list, help_text=_("read, write, refunds"))
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("server API key")
        verbose_name_plural = _("server API keys")


class IdempotencyRecord(models.Model):
    """The first response to a POST with an Idempotency-Key, per key holder, replayed for 24 hours
    (billing/services/idempotency.py)."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", _("in progress")
        COMPLETED = "completed", _("completed")

    owner = models.CharField(max_length=64)  # "key:<prefix>" or "user:<id>"
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_one_per_owner_and_key")]

    def __str__(self) -> str:
        return f"{self.owner} {self.key} ({self.state})"


class Event(models.Model):
    """The outbox: one append-only row per fact a merchant is told about, written in the transaction of the change
    (billing/services/events.py). `sequence` is given after commit, in the order rows became visible, so the feed
    (`GET /api/events?after=`) never skips a row that committed late."""

    type = models.CharField(max_length=64, db_index=True)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    sequence = models.BigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-id"]
        indexes = [models.Index(fields=["id"], condition=Q(sequence__isnull=True), name="event_unsequenced")]

    def __str__(self) -> str:
        return f"evt_{self.pk} {self.type}"


class EventEndpoint(models.Model):
    """A URL of the merchant that receives events, signed with its own secret (Standard Webhooks)."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=100, editable=False)  # whsec_<base64>
    event_types = models.JSONField(default=list, blank=True, help_text=_("Empty: every event type."))
    enabled = models.BooleanField(default=True)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("event endpoint")
        verbose_name_plural = _("event endpoints")

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class EventDelivery(models.Model):
    """One event to one endpoint: at least once, in sequence order per customer (and so per subscription)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed (gave up)")

    endpoint = models.ForeignKey(EventEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="deliveries")
    sequence = models.BigIntegerField()  # the event's, for ordering without a join
    ordering_key = models.CharField(max_length=32)  # "customer:<id>": later events wait for this one
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("event delivery")
        verbose_name_plural = _("event deliveries")
        ordering = ["sequence"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="delivery_one_per_endpoint_event")]
        indexes = [
            models.Index(
                fields=["endpoint", "sequence"], condition=Q(status="pending"), name="delivery_pending_in_order"
            )
        ]

    def __str__(self) -> str:
        return f"evt_{self.event_id} -> {self.endpoint_id} ({self.status})"
