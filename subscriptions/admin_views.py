"""The operator dashboard: one staff page of figures from `subscriptions.selectors.dashboard_metrics`,
with two small server-side SVG charts. Thin: read the clock, call the selector, render."""

from __future__ import annotations

from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views import View

from billing import clock
from billing.admin_charts import Series, bar_chart
from billing.models import PaymentAttempt
from subscriptions.selectors import dashboard_metrics


class DashboardView(View):
    admin_site = None  # set by as_view(admin_site=...)
    template_name = "admin/kbilling/dashboard.html"

    def get(self, request):
        metrics = dashboard_metrics(now=clock.now())
        revenue_chart = bar_chart(
            title=_("Paid per day, last 30 days (won)"),
            labels=[point.day for point in metrics.revenue_by_day],
            series=[Series(name=_("paid"), values=[p.amount for p in metrics.revenue_by_day], css_class="paid")],
        )
        weeks = metrics.subscriptions_by_week
        subscriptions_chart = bar_chart(
            title=_("New and canceled subscriptions per week"),
            labels=[week.week_start for week in weeks],
            series=[
                Series(name=_("new"), values=[w.new for w in weeks], css_class="new"),
                Series(name=_("canceled"), values=[w.canceled for w in weeks], css_class="canceled"),
            ],
        )
        changelist = reverse("admin:billing_paymentattempt_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Operator dashboard"),
            "metrics": metrics,
            "revenue_chart": revenue_chart,
            "subscriptions_chart": subscriptions_chart,
            "unknown_attempts_url": f"{changelist}?status__exact={PaymentAttempt.Status.UNKNOWN}",
            "open_invoices_url": reverse("admin:billing_invoice_changelist") + "?status__exact=open",
        }
        return TemplateResponse(request, self.template_name, context)
