"""The admin of billing's records. An entry point: it lists and shows rows, and every change of money or
status goes through a service (refunds, reconciliation, webhook reprocessing), reported with message_user.

Rows the services own (attempts, refunds, webhook events, the audit log, invoices, billing keys, card
registrations) are view-only here: no add, change or delete. Their actions are gated on the model's
`change` permission in auth, which an operator can be granted without the admin ever editing a field.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing import (
    admin_integration,  # noqa: F401 (server keys, event endpoints and deliveries)
    clock,
)
from billing.admin_views import refund_view
from billing.gateway.errors import GatewayError
from billing.models import (
    AuditLog,
    BillingKey,
    CardRegistration,
    Customer,
    Invoice,
    InvoiceLine,
    PaymentAttempt,
    Refund,
    WebhookEvent,
)
from billing.services.payments import payment_reconcile
from billing.services.refunds import refund_reconcile, refund_totals
from billing.services.webhooks import webhook_process


def won(amount: int | None) -> str:
    return "-" if amount is None else _("%(amount)s won") % {"amount": f"{amount:,}"}


def won_column(field: str, description):
    """A changelist column showing an int-of-won field as `12,900원`, sortable by the field."""

    @admin.display(description=description, ordering=field)
    def column(obj):
        return won(getattr(obj, field))

    column.__name__ = f"{field}_won"
    return column


class ViewOnlyMixin:
    """Rows written only by services: the admin shows them and never adds, edits or deletes them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ViewOnlyInline(ViewOnlyMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True


# --- customers and cards ------------------------------------------------------------------------------


class BillingKeyInline(ViewOnlyInline):
    model = BillingKey
    fields = ("customer_uid", "card_name", "card_number_masked", "status", "is_default", "created_at")
    readonly_fields = fields


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "email",
        "name",
        "user",
        won_column("credit_balance", _("credit balance")),
        "preferred_language",
        "created_at",
    )
    list_select_related = ("user",)
    search_fields = ("email", "name", "user__username", "billing_keys__customer_uid")
    list_filter = ("preferred_language",)
    date_hierarchy = "created_at"
    # Contact details are editable; the credit balance is money and moves only through invoices.
    fields = ("user", "email", "name", "preferred_language", "credit_balance", "created_at")
    readonly_fields = ("user", "credit_balance", "created_at")
    inlines = [BillingKeyInline]

    def has_add_permission(self, request):
        return False  # customers are created with their user account

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BillingKey)
class BillingKeyAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = (
        "customer_uid",
        "customer",
        "card_name",
        "card_number_masked",
        "status",
        "is_default",
        "pg_provider",
        "sandbox",
        "created_at",
    )
    list_select_related = ("customer",)
    list_filter = ("status", "is_default", "sandbox", "pg_provider")
    search_fields = ("customer_uid", "customer__email", "card_number_masked")
    date_hierarchy = "created_at"


@admin.register(CardRegistration)
class CardRegistrationAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ("customer_uid", "customer", "status", "failure_reason", "created_at", "confirmed_at")
    list_select_related = ("customer",)
    list_filter = ("status",)
    search_fields = ("customer_uid", "customer__email")
    date_hierarchy = "created_at"


# --- invoices -----------------------------------------------------------------------------------------


class InvoiceLineInline(ViewOnlyInline):
    model = InvoiceLine
    fields = ("description", "amount", "tax_free_amount", "period_start", "period_end", "details")
    readonly_fields = fields
    show_change_link = False


class PaymentAttemptInline(ViewOnlyInline):
    model = PaymentAttempt
    fields = ("merchant_uid", "imp_uid", "amount", "status", "decline_class", "failure_reason", "created_at")
    readonly_fields = fields
    ordering = ("created_at", "id")


@admin.register(Invoice)
class InvoiceAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = (
        "number",
        "customer",
        "kind",
        "status",
        won_column("total", _("total")),
        "attempt_count",
        "last_decline_class",
        "next_attempt_at",
        "created_at",
        "paid_at",
    )
    list_select_related = ("customer",)
    list_filter = ("status", "kind", "last_decline_class")
    search_fields = ("number", "customer__email", "attempts__merchant_uid", "attempts__imp_uid")
    date_hierarchy = "created_at"
    inlines = [InvoiceLineInline, PaymentAttemptInline]


# --- payments and refunds -----------------------------------------------------------------------------


class RefundInline(ViewOnlyInline):
    model = Refund
    fields = ("amount", "status", "reason", "actor", "cancellation_id", "failure_reason", "created_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class FlaggedFilter(admin.SimpleListFilter):
    title = _("flagged for an operator")
    parameter_name = "flagged"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(flagged_reason="")
        if self.value() == "no":
            return queryset.filter(flagged_reason="")
        return queryset


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = (
        "merchant_uid",
        "imp_uid",
        "invoice",
        "customer_email",
        won_column("amount", _("amount")),
        "status",
        "decline_class",
        "refunded",
        "created_at",
        "paid_at",
    )
    list_select_related = ("invoice", "invoice__customer")
    list_filter = ("status", "via", "decline_class", FlaggedFilter)
    search_fields = ("merchant_uid", "imp_uid", "customer_uid", "invoice__number", "invoice__customer__email")
    date_hierarchy = "created_at"
    inlines = [RefundInline]
    readonly_fields = ("refund_balance",)
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "invoice",
                    ("merchant_uid", "imp_uid"),
                    "customer_uid",
                    ("status", "via"),
                    ("amount", "tax_free_amount", "vat_amount"),
                    "refund_balance",
                ]
            },
        ),
        (
            _("Outcome"),
            {
                "fields": [
                    ("decline_class", "failure_code"),
                    "failure_reason",
                    "flagged_reason",
                    ("card_name", "card_number_masked"),
                    ("pg_tid", "receipt_url"),
                ]
            },
        ),
        (_("Times"), {"fields": [("created_at", "scheduled_for"), ("paid_at", "settled_at")]}),
    ]
    actions = ["reconcile_now"]

    def get_urls(self):
        view = self.admin_site.admin_view(refund_view)
        return [
            path("<int:attempt_id>/refund/", view, {"model_admin": self}, name="billing_paymentattempt_refund"),
            *super().get_urls(),
        ]

    def get_queryset(self, request):
        # The refunded total per row in one query, not one per row.
        refunded = (
            Refund.objects.filter(attempt=OuterRef("pk"), status=Refund.Status.SUCCEEDED)
            .order_by()
            .values("attempt")
            .annotate(total=Sum("amount"))
            .values("total")
        )
        return super().get_queryset(request).annotate(refunded_total=Coalesce(Subquery(refunded), 0))

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if request.user.has_perm("billing.add_refund"):
            columns.append("refund_button")
        return columns

    def has_reconcile_permission(self, request):
        return request.user.has_perm("billing.change_paymentattempt")

    @admin.display(description=_("customer"), ordering="invoice__customer__email")
    def customer_email(self, obj):
        return obj.invoice.customer

    @admin.display(description=_("refunded"), ordering="refunded_total")
    def refunded(self, obj):
        return won(obj.refunded_total) if obj.refunded_total else "-"

    @admin.display(description=_("refund"))
    def refund_button(self, obj):
        if obj.status != PaymentAttempt.Status.SUCCEEDED or obj.refunded_total >= obj.amount:
            return ""
        url = reverse("admin:billing_paymentattempt_refund", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Refund"))

    @admin.display(description=_("refund balance"))
    def refund_balance(self, obj):
        if obj.status != PaymentAttempt.Status.SUCCEEDED:
            return "-"
        totals = refund_totals(obj)
        return _("paid %(paid)s, refunded %(refunded)s, in progress %(in_flight)s, refundable %(refundable)s") % {
            "paid": won(obj.amount),
            "refunded": won(totals["refunded"]),
            "in_flight": won(totals["in_flight"]),
            "refundable": won(totals["refundable"]),
        }

    @admin.action(description=_("Reconcile with Iamport now"), permissions=["reconcile"])
    def reconcile_now(self, request, queryset):
        now = clock.now()
        for attempt in queryset.order_by("id"):
            if not attempt.is_unsettled:
                self.message_user(
                    request,
                    _("%(merchant_uid)s is already settled (%(status)s).")
                    % {"merchant_uid": attempt.merchant_uid, "status": attempt.get_status_display()},
                    messages.WARNING,
                )
                continue
            result = payment_reconcile(attempt_id=attempt.pk, now=now)
            if result.flagged_reason:
                text, level = _("%(merchant_uid)s is flagged for an operator: %(reason)s"), messages.ERROR
            elif result.is_unsettled:
                text, level = (
                    _("%(merchant_uid)s: Iamport has no final outcome yet; it stays %(status)s."),
                    messages.WARNING,
                )
            else:
                text, level = _("%(merchant_uid)s is now %(status)s."), messages.SUCCESS
            self.message_user(
                request,
                text
                % {
                    "merchant_uid": result.merchant_uid,
                    "status": result.get_status_display(),
                    "reason": result.flagged_reason,
                },
                level,
            )


@admin.register(Refund)
class RefundAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "attempt",
        won_column("amount", _("amount")),
        "status",
        "reason",
        "actor",
        "created_at",
        "settled_at",
    )
    list_select_related = ("attempt", "actor")
    list_filter = ("status",)
    search_fields = (
        "attempt__merchant_uid",
        "attempt__imp_uid",
        "cancellation_id",
        "attempt__invoice__number",
        "attempt__invoice__customer__email",
    )
    date_hierarchy = "created_at"
    actions = ["settle_now"]

    def has_settle_permission(self, request):
        return request.user.has_perm("billing.add_refund")

    @admin.action(description=_("Settle with Iamport now"), permissions=["settle"])
    def settle_now(self, request, queryset):
        """A refund stuck PENDING or UNKNOWN, settled from Iamport's record now (billing/services/refunds.py)."""
        now = clock.now()
        for refund in queryset.order_by("id"):
            if refund.status not in (Refund.Status.PENDING, Refund.Status.UNKNOWN):
                self.message_user(
                    request,
                    _("Refund #%(id)s is already settled (%(status)s).")
                    % {"id": refund.pk, "status": refund.get_status_display()},
                    messages.WARNING,
                )
                continue
            result = refund_reconcile(
                refund_id=refund.pk, now=now, label=f"admin:{request.user.get_username()}", not_found_after=0
            )
            if result.status in (Refund.Status.PENDING, Refund.Status.UNKNOWN):
                text, level = _("Refund #%(id)s: Iamport could not tell yet; it stays %(status)s."), messages.WARNING
            else:
                text, level = _("Refund #%(id)s is now %(status)s."), messages.SUCCESS
            self.message_user(request, text % {"id": result.pk, "status": result.get_status_display()}, level)


# --- webhooks and the audit log -----------------------------------------------------------------------


@admin.register(WebhookEvent)
class WebhookEventAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "received_at", "imp_uid", "merchant_uid", "status", "state", "result", "process_count")
    list_filter = ("state", "status")
    search_fields = ("imp_uid", "merchant_uid")
    date_hierarchy = "received_at"
    show_full_result_count = False  # a large table: no second COUNT(*) on every filtered page
    actions = ["reprocess"]

    def has_reprocess_permission(self, request):
        return request.user.has_perm("billing.change_webhookevent")

    @admin.action(description=_("Reprocess the selected webhook events"), permissions=["reprocess"])
    def reprocess(self, request, queryset):
        now = clock.now()
        for event_id in queryset.order_by("id").values_list("id", flat=True):
            try:
                event = webhook_process(event_id=event_id, now=now, reprocess=True)
            except GatewayError:
                self.message_user(
                    request,
                    _("Webhook #%(id)s: Iamport could not be reached. Try again in a few minutes.") % {"id": event_id},
                    messages.ERROR,
                )
                continue
            level = {
                WebhookEvent.State.PROCESSED: messages.SUCCESS,
                WebhookEvent.State.FLAGGED: messages.ERROR,
            }.get(event.state, messages.WARNING)
            self.message_user(
                request,
                _("Webhook #%(id)s: %(state)s. %(result)s")
                % {"id": event.pk, "state": event.get_state_display(), "result": event.result},
                level,
            )


@admin.register(AuditLog)
class AuditLogAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = (
        "at",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "customer",
        won_column("amount", _("amount")),
        "from_status",
        "to_status",
        "reason",
    )
    list_select_related = ("customer",)
    list_filter = ("action", "object_type")
    search_fields = (
        "=object_id",
        "action",
        "actor_label",
        "reason",
        "customer__email",
        "data__merchant_uid",
        "data__imp_uid",
    )
    date_hierarchy = "at"
    show_full_result_count = False


from billing import admin_reconciliation  # noqa: E402, F401  (registers the reconciliation admin)
