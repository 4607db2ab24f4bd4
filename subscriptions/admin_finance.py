"""Finance reports in the admin (/admin/finance/?period=2027-01): 부가세 figures, revenue by plan, MRR movements
with a server-rendered SVG waterfall, deferred revenue of annual plans; CSV and XLSX exports. Thin: parse the
period, call `finance_report`, render."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from billing import clock
from billing.errors import ApplicationError
from billing.services.reports import period_of, period_parse
from subscriptions.finance_exports import report_csv, report_xlsx
from subscriptions.services.reports import finance_report

PERMISSION = "billing.view_invoice"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Step:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float
    css_class: str


@dataclass(frozen=True)
class Waterfall:
    width: int
    height: int
    baseline: float
    steps: list[Step]


def waterfall(mrr: dict, *, width: int = 720, height: int = 240) -> Waterfall:
    """Geometry only (pixels; never money): start, each movement floating from the running total, end."""
    order = [
        ("start_mrr", _("start"), "total"),
        ("new", _("new"), "up"),
        ("expansion", _("expansion"), "up"),
        ("reactivation", _("reactivation"), "up"),
        ("contraction", _("contraction"), "down"),
        ("churn", _("churn"), "down"),
        ("end_mrr", _("end"), "total"),
    ]
    top, bottom, left, right = 10.0, height - 30.0, 10.0, width - 10.0
    running, levels = 0, []
    for key, _label, kind in order:
        value = mrr[key]
        if kind == "total":
            low, high, running = 0, value, value
        else:
            low, high = sorted((running, running + value))
            running += value
        levels.append((low, high))
    peak = max([high for _low, high in levels] + [1])
    scale = (bottom - top) / peak
    slot = (right - left) / len(order)
    steps = []
    for index, ((key, label, kind), (low, high)) in enumerate(zip(order, levels, strict=True)):
        h = max((high - low) * scale, 1.0 if high != low else 0.0)
        steps.append(
            Step(
                label=str(label),
                value=mrr[key],
                x=round(left + slot * index + slot * 0.15, 1),
                y=round(bottom - high * scale, 1),
                width=round(slot * 0.7, 1),
                height=round(h, 1),
                css_class={"total": "total", "up": "up", "down": "down"}[kind],
            )
        )
    return Waterfall(width=width, height=height, baseline=bottom, steps=steps)


def finance_view(request, *, site, export: str | None = None):
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    raw = request.GET.get("period") or period_of(clock.now()).label
    try:
        period = period_parse(raw)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        period = period_of(clock.now())
    report = finance_report(period=period)
    if export == "csv":
        response = HttpResponse(report_csv(report), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="kbilling-finance-{period.label}.csv"'
        return response
    if export == "xlsx":
        response = HttpResponse(report_xlsx(report), content_type=XLSX)
        response["Content-Disposition"] = f'attachment; filename="kbilling-finance-{period.label}.xlsx"'
        return response
    context = {
        **site.each_context(request),
        "title": _("Finance reports %(period)s") % {"period": period.label},
        "period": period,
        "report": report,
        "chart": waterfall(report["mrr"]),
    }
    return TemplateResponse(request, "admin/kbilling/finance.html", context)


def add_finance_urls(site: admin.AdminSite) -> None:
    """Serve /admin/finance/ (`admin:finance_reports`) and its exports on the admin site, as the dashboard is."""
    site_urls = site.get_urls

    def get_urls():
        wrap = site.admin_view
        return [
            path("finance/", wrap(finance_view), {"site": site}, name="finance_reports"),
            path("finance/export.csv", wrap(finance_view), {"site": site, "export": "csv"}, name="finance_csv"),
            path("finance/export.xlsx", wrap(finance_view), {"site": site, "export": "xlsx"}, name="finance_xlsx"),
            *site_urls(),
        ]

    site.get_urls = get_urls
