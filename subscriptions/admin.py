"""The admin of plans and subscriptions, dunning's "retry now" on invoices, and the operator dashboard.

Plans are edited through `plan_update`, which freezes the price fields once a plan has subscribers; the form
shows them read-only in that case and says why. Subscriptions change only through lifecycle services, so
they are view-only here.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from billing import clock
from billing.admin import InvoiceAdmin, ViewOnlyInline, ViewOnlyMixin, won, won_column
from billing.errors import ApplicationError
from billing.models import Invoice, PaymentAttempt
from notices.selectors import notices_for_subscription
from subscriptions.admin_views import DashboardView
from subscriptions.errors import PlanImmutableError
from subscriptions.models import (
    ConsentDecision,
    ConsentRequest,
    Plan,
    PlanPriceVersion,
    PolicyDocument,
    Subscription,
    SubscriptionAgreement,
    SubscriptionInvoice,
)
from subscriptions.selectors import price_change_campaign
from subscriptions.services.consent import plan_price_change_schedule
from subscriptions.services.dunning import invoice_retry
from subscriptions.services.plans import plan_update

PRICE_LOCKED_HELP = _(
    "These fields are read-only because this plan has subscribers: changing them would change what existing "
    "subscribers pay. Create a new plan with the new price and move subscribers to it."
)
PRICE_OPEN_HELP = _("The price fields freeze as soon as anyone subscribes to this plan.")


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "name_ko",
        "name_en",
        won_column("amount", _("amount")),
        won_column("tax_free_amount", _("tax-free amount")),
        "interval",
        "interval_count",
        "trial_days",
        "active",
        "sort_order",
        "subscriber_count",
    )
    list_filter = ("active", "interval")
    search_fields = ("code", "name_ko", "name_en")
    readonly_fields = ("created_at",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(subscriber_count=Count("subscriptions"))

    @admin.display(description=_("subscriptions"), ordering="subscriber_count")
    def subscriber_count(self, obj):
        return obj.subscriber_count

    def price_locked(self, obj) -> bool:
        return obj is not None and obj.pk is not None and obj.subscriptions.exists()

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if self.price_locked(obj):
            fields += Plan.PRICE_FIELDS
        return fields

    def get_fieldsets(self, request, obj=None):
        return [
            (
                None,
                {
                    "fields": [
                        "code",
                        ("name_ko", "name_en"),
                        ("description_ko", "description_en"),
                        "trial_days",
                        "active",
                        "sort_order",
                        "created_at",
                    ]
                },
            ),
            (
                _("Price"),
                {
                    "fields": list(Plan.PRICE_FIELDS),
                    "description": PRICE_LOCKED_HELP if self.price_locked(obj) else PRICE_OPEN_HELP,
                },
            ),
        ]

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        # The form already wrote its values onto `obj`; the service must compare against the stored plan.
        stored = Plan.objects.get(pk=obj.pk)
        plan_update(plan=stored, **{name: form.cleaned_data[name] for name in form.changed_data})

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except PlanImmutableError as exc:
            # Someone subscribed between showing the form and saving it: the transaction rolled back.
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class SubscriptionInvoiceInline(ViewOnlyInline):
    model = SubscriptionInvoice
    fields = ("kind", "invoice", "invoice_status", "invoice_total", "plan", "period_start", "period_end")
    readonly_fields = fields
    ordering = ("-period_start", "-id")
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice", "plan")

    @admin.display(description=_("invoice status"))
    def invoice_status(self, obj):
        return obj.invoice.get_status_display()

    @admin.display(description=_("total"))
    def invoice_total(self, obj):
        return won(obj.invoice.total)


@admin.register(Subscription)
class SubscriptionAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "customer",
        "plan",
        "status",
        "current_period_end",
        "cancel_at_period_end",
        "pending_plan",
        "created_at",
        "ended_at",
    )
    list_select_related = ("customer", "plan", "pending_plan")
    list_filter = ("status", "plan", "cancel_at_period_end")
    search_fields = ("=id", "customer__email", "customer__user__username", "billing_key__customer_uid")
    date_hierarchy = "created_at"
    inlines = [SubscriptionInvoiceInline]
    readonly_fields = ("notice_log",)

    @admin.display(description=_("Notices and their delivery log"))
    def notice_log(self, obj):
        """The merchant's proof: every notice about this subscription, each channel's steps with the exact text."""
        rows = [
            (
                notice.get_type_display(),
                d.at,
                d.get_channel_display(),
                d.get_status_display(),
                d.to,
                d.provider_message_id,
                d.code,
                d.text,
            )
            for notice in notices_for_subscription(obj.pk)
            for d in notice.deliveries.all()
        ]
        if not rows:
            return "—"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            '<td><pre style="white-space:pre-wrap;margin:0">{}</pre></td></tr>',
            rows,
        )
        return format_html('<table class="notice-log">{}</table>', body)


# Invoices are billing's records; retrying one is dunning's job, which lives in this layer.
class DunningInvoiceAdmin(InvoiceAdmin):
    actions = ["retry_now"]

    def has_retry_permission(self, request):
        return request.user.has_perm("billing.change_invoice")

    @admin.action(description=_("Retry the payment of the selected open invoices now"), permissions=["retry"])
    def retry_now(self, request, queryset):
        now = clock.now()
        for invoice in queryset.order_by("id"):
            values = {"invoice": invoice, "status": invoice.get_status_display()}
            if invoice.status != Invoice.Status.OPEN:
                self.message_user(request, _("%(invoice)s is not open (%(status)s).") % values, messages.WARNING)
                continue
            try:
                attempt = invoice_retry(invoice_id=invoice.pk, now=now, force=True)
            except ApplicationError as exc:
                self.message_user(request, f"{invoice}: {exc.message}", messages.ERROR)
                continue
            self._report(request, invoice, attempt)

    def _report(self, request, invoice, attempt: PaymentAttempt | None) -> None:
        if attempt is None:
            text = _("%(invoice)s was not charged: a payment is already in progress or its subscription ended.")
            self.message_user(request, text % {"invoice": invoice}, messages.WARNING)
        elif attempt.status == PaymentAttempt.Status.SUCCEEDED:
            text = _("%(invoice)s: %(amount)s paid.")
            self.message_user(request, text % {"invoice": invoice, "amount": won(attempt.amount)}, messages.SUCCESS)
        elif attempt.status == PaymentAttempt.Status.FAILED:
            text = _("%(invoice)s: the charge failed: %(reason)s")
            self.message_user(request, text % {"invoice": invoice, "reason": attempt.failure_reason}, messages.ERROR)
        else:
            text = _("%(invoice)s: the outcome is not known yet; it will be reconciled with Iamport.")
            self.message_user(request, text % {"invoice": invoice}, messages.WARNING)


admin.site.unregister(Invoice)
admin.site.register(Invoice, DunningInvoiceAdmin)


def _add_dashboard_url(site: admin.AdminSite) -> None:
    """Serve the dashboard at /admin/dashboard/ (name `admin:dashboard`) on the default admin site.

    config/urls.py mounts Django's default site; swapping in an AdminSite subclass would need a settings
    change, so the dashboard URL is prepended to that site's own URLs instead.
    """
    site_urls = site.get_urls

    def get_urls():
        view = site.admin_view(DashboardView.as_view(admin_site=site))
        return [path("dashboard/", view, name="dashboard"), *site_urls()]

    site.get_urls = get_urls


_add_dashboard_url(admin.site)


@admin.register(PolicyDocument)
class PolicyDocumentAdmin(admin.ModelAdmin):
    """The merchant writes the policies here. A version in effect is never edited (subscribers agreed to its
    words): publish a new version with a later effective date instead."""

    list_display = ("kind", "version", "effective_at", "created_at")
    list_filter = ("kind",)
    ordering = ("kind", "-effective_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.effective_at <= clock.now():
            return ("kind", "version", "body_ko", "body_en", "effective_at", "created_at")
        return ("created_at",)

    def has_delete_permission(self, request, obj=None):
        return obj is None or obj.effective_at > clock.now()


@admin.register(SubscriptionAgreement)
class SubscriptionAgreementAdmin(admin.ModelAdmin):
    """Append-only proof of consent: read here, never changed."""

    list_display = ("subscription", "plan", "terms", "refund_policy", "channel", "agreed_at")
    list_filter = ("channel",)
    raw_id_fields = ("subscription",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PlanPriceVersionForm(forms.ModelForm):
    class Meta:
        model = PlanPriceVersion
        fields = ("plan", "amount", "tax_free_amount", "effective_at", "non_consent_action")

    def clean(self):
        data = super().clean()
        plan, amount, effective_at = data.get("plan"), data.get("amount"), data.get("effective_at")
        if effective_at is not None and effective_at <= clock.now():
            self.add_error("effective_at", _("Choose a date in the future: subscribers must be told first."))
        if plan is not None and amount is not None and amount == plan.amount and not plan.price_versions.exists():
            self.add_error("amount", _("This is the plan's current price."))
        if amount is not None and (data.get("tax_free_amount") or 0) > amount:
            self.add_error("tax_free_amount", _("The tax-free part cannot exceed the amount."))
        return data


@admin.register(PlanPriceVersion)
class PlanPriceVersionAdmin(admin.ModelAdmin):
    """Price changes for existing subscribers: scheduled here (a new price version; the plan row never
    changes), then read-only, with the campaign's figures: asked, granted, refused, pending, MRR effect."""

    form = PlanPriceVersionForm
    list_display = ("plan", won_column("amount", _("new price")), "effective_at", "non_consent_action", "created_at")
    list_select_related = ("plan",)
    list_filter = ("plan", "non_consent_action")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("plan", "amount", "tax_free_amount", "effective_at", "non_consent_action", "created_by", "campaign")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("plan", "amount", "tax_free_amount", "effective_at", "non_consent_action")
        return self.get_readonly_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        return obj is None  # the list page, yes; an existing version, never

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("campaign"))
    def campaign(self, obj):
        figures = price_change_campaign(version=obj)
        rows = [
            (_("consent requests"), figures.requested),
            (_("asked by email"), figures.asked),
            (_("granted"), figures.granted),
            (_("refused"), figures.refused),
            (_("expired (no answer)"), figures.expired),
            (_("pending"), figures.pending),
            (_("MRR effect"), won(figures.mrr_effect)),
        ]
        return format_html(
            '<table id="campaign">{}</table>',
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", ((str(k), v) for k, v in rows)),
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        version = plan_price_change_schedule(
            plan=data["plan"],
            amount=data["amount"],
            tax_free_amount=data.get("tax_free_amount") or 0,
            effective_at=data["effective_at"],
            non_consent_action=data["non_consent_action"],
            now=clock.now(),
            actor=request.user,
        )
        obj.pk = version.pk
        obj.refresh_from_db()


class ConsentDecisionInline(ViewOnlyInline):
    model = ConsentDecision
    fields = ("outcome", "decided_at", "channel", "actor_label", "ip_address", "user_agent", "text_shown")
    readonly_fields = fields
    ordering = ("decided_at", "id")


@admin.register(ConsentRequest)
class ConsentRequestAdmin(ViewOnlyMixin, admin.ModelAdmin):
    """Append-only proof of consent before a trial turns paid or a price goes up."""

    list_display = ("id", "kind", "subscription", "change_at", "amount_before", "amount_after", "asks_sent")
    list_filter = ("kind",)
    raw_id_fields = ("subscription",)
    search_fields = ("=subscription__id", "subscription__customer__email")
    inlines = [ConsentDecisionInline]


@admin.register(ConsentDecision)
class ConsentDecisionAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ("request", "outcome", "channel", "actor_label", "ip_address", "decided_at")
    list_filter = ("outcome", "channel")


from subscriptions.admin_finance import add_finance_urls  # noqa: E402

add_finance_urls(admin.site)
