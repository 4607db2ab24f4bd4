"""Admin of the daily reconciliation (대사): runs (list, detail with their differences), run a day on demand,
and the safe one-step actions on a difference (refund an orphan payment with checksum, mark as investigated
with a note). An entry point: every change goes through billing.services.reconciliation."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing import clock
from billing.errors import ApplicationError
from billing.models import ReconciliationRow, ReconciliationRun
from billing.services.reconciliation import (
    kst_day,
    reconciliation_row_mark_investigated,
    reconciliation_row_refund_orphan,
    reconciliation_run,
)

PERMISSION = "billing.change_reconciliationrun"


class RunDayForm(forms.Form):
    day = forms.DateField(
        label=_("Business day (KST)"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("A day that is over. A day already reconciled is run again and shows what changed."),
    )


class InvestigatedForm(forms.Form):
    note = forms.CharField(
        label=_("What did you find?"),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=2000,
        help_text=_("Kept with the difference and in the audit log; later runs of the day keep it."),
    )


class ReconciliationRowInline(admin.TabularInline):
    model = ReconciliationRow
    extra = 0
    can_delete = False
    fields = (
        "kind",
        "merchant_uid",
        "imp_uid",
        "iamport_side",
        "our_side",
        "detail",
        "is_new",
        "resolution_and_action",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # A run's differences are part of the run: whoever may see the run sees them.
        return request.user.has_perm("billing.view_reconciliationrun")

    @admin.display(description=_("Iamport"))
    def iamport_side(self, row):
        if not row.iamport_status:
            return "-"
        return _("%(status)s, %(amount)s won, refunded %(cancelled)s won") % {
            "status": row.iamport_status,
            "amount": f"{row.iamport_amount or 0:,}",
            "cancelled": f"{row.iamport_cancel_amount or 0:,}",
        }

    @admin.display(description=_("our books"))
    def our_side(self, row):
        if not row.our_status:
            return "-"
        return _("%(status)s, %(amount)s won, refunded %(cancelled)s won") % {
            "status": row.our_status,
            "amount": f"{row.our_amount or 0:,}",
            "cancelled": f"{row.our_refunded or 0:,}",
        }

    @admin.display(description=_("resolution"))
    def resolution_and_action(self, row):
        if row.resolution != ReconciliationRow.Resolution.OPEN:
            return format_html("{}<br><small>{}</small>", row.get_resolution_display(), row.note)
        links = []
        if row.kind == ReconciliationRow.Kind.MISSING_HERE:
            url = reverse("admin:billing_reconciliationrow_action", args=[row.pk, "refund"])
            links.append(format_html('<a class="button" href="{}">{}</a>', url, _("Refund at Iamport")))
        url = reverse("admin:billing_reconciliationrow_action", args=[row.pk, "investigated"])
        links.append(format_html('<a class="button" href="{}">{}</a>', url, _("Mark investigated")))
        return format_html("{} {}", row.get_resolution_display(), format_html(" ".join(["{}"] * len(links)), *links))


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(admin.ModelAdmin):
    list_display = ("day", "status", "clean", "matched", "unresolved_count", "new_count", "iamport_total", "duration")
    list_filter = ("status",)
    date_hierarchy = "day"
    ordering = ("-day", "-id")
    inlines = [ReconciliationRowInline]
    readonly_fields = (
        "day",
        "status",
        "clean",
        "trigger",
        "started_at",
        "finished_at",
        "duration",
        "pages_fetched",
        "iamport_total",
        "error",
        "counts_table",
        "totals_table",
        "unresolved_count",
        "new_count",
        "notified_at",
    )
    fields = readonly_fields
    change_list_template = "admin/billing/reconciliationrun/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("run/", wrap(self.run_view), name="billing_reconciliationrun_run"),
            path(
                "row/<int:row_id>/<str:action>/",
                wrap(self.row_action_view),
                name="billing_reconciliationrow_action",
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("clean"), boolean=True)
    def clean(self, run):
        return run.is_clean

    @admin.display(description=_("matched"))
    def matched(self, run):
        return run.counts.get("matched", 0) if run.counts else "-"

    @admin.display(description=_("duration"), ordering="duration_ms")
    def duration(self, run):
        return _("%(seconds)s s") % {"seconds": f"{run.duration_ms / 1000:.1f}"}

    @admin.display(description=_("differences by class"))
    def counts_table(self, run):
        labels = dict(ReconciliationRow.Kind.choices)
        labels.update({"matched": _("matched"), "not_ours": _("not ours (another app's merchant_uid)")})
        items = [(str(labels.get(k, k)), n) for k, n in sorted((run.counts or {}).items())]
        return format_html(
            "<table>{}</table>",
            format_html("".join(["<tr><th>{}</th><td>{}</td></tr>"] * len(items)), *[x for i in items for x in i])
            if items
            else "",
        )

    @admin.display(description=_("totals (Iamport vs ours)"))
    def totals_table(self, run):
        rows = []
        for status, t in sorted((run.totals or {}).get("iamport", {}).items()):
            rows.append((f"Iamport {status}", t["count"], f"{t['amount']:,}", f"{t.get('cancel_amount', 0):,}"))
        for name, t in sorted((run.totals or {}).get("ours", {}).items()):
            rows.append((_("ours %(what)s") % {"what": name}, t["count"], f"{t['amount']:,}", ""))
        head = format_html(
            "<tr><th></th><th>{}</th><th>{}</th><th>{}</th></tr>", _("count"), _("amount (won)"), _("refunded (won)")
        )
        body = format_html(
            "".join(["<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>"] * len(rows)),
            *[x for r in rows for x in r],
        )
        return format_html("<table>{}{}</table>", head, body)

    def run_view(self, request):
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        now = clock.now()
        form = RunDayForm(request.POST or None, initial={"day": kst_day(now) - dt.timedelta(days=1)})
        if request.method == "POST" and form.is_valid():
            try:
                run = reconciliation_run(day=form.cleaned_data["day"], now=now, trigger=f"admin:{request.user}")
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                if run.status != ReconciliationRun.Status.COMPLETE:
                    text, level = (
                        _("Iamport could not be read to the end (%(error)s). Run it again to resume."),
                        messages.WARNING,
                    )
                elif run.unresolved_count:
                    text, level = _("%(count)s difference(s) need a person."), messages.WARNING
                else:
                    text, level = _("The day is clean: Iamport and our books agree."), messages.SUCCESS
                self.message_user(request, text % {"error": run.error, "count": run.unresolved_count}, level)
                return redirect(reverse("admin:billing_reconciliationrun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Reconcile a day with Iamport"),
            "opts": ReconciliationRun._meta,
            "form": form,
        }
        return TemplateResponse(request, "admin/billing/reconciliationrun/run.html", context)

    def row_action_view(self, request, row_id: int, action: str):
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        row = get_object_or_404(ReconciliationRow.objects.select_related("run"), pk=row_id)
        back = reverse("admin:billing_reconciliationrun_change", args=[row.run_id])
        if action not in ("refund", "investigated"):
            raise PermissionDenied
        form = InvestigatedForm(request.POST or None) if action == "investigated" else None
        if request.method == "POST" and (form is None or form.is_valid()):
            try:
                if action == "refund":
                    reconciliation_row_refund_orphan(row_id=row.pk, now=clock.now(), actor=request.user)
                    done = _("Refunded at Iamport.")
                else:
                    reconciliation_row_mark_investigated(
                        row_id=row.pk, note=form.cleaned_data["note"], now=clock.now(), actor=request.user
                    )
                    done = _("Marked as investigated.")
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, done, messages.SUCCESS)
            return redirect(back)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Refund this payment at Iamport") if action == "refund" else _("Mark as investigated"),
            "opts": ReconciliationRun._meta,
            "row": row,
            "form": form,
            "action": action,
            "back": back,
        }
        return TemplateResponse(request, "admin/billing/reconciliationrun/row_action.html", context)
