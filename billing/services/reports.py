"""Finance figures of billing's own records, per KST month or quarter: what was charged, refunded and kept,
and its supply amount, VAT and tax-free parts (부가세 신고). Charges count on the day Iamport approved them
(`paid_at`), refunds on the day they succeeded (`settled_at`), both in Asia/Seoul. Every figure is a sum of
rows (attempts, refunds), so the report adds up to the invoices exactly; nothing is stored twice."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

from django.db.models import Count, Sum
from django.utils.translation import gettext_lazy as _

from billing.errors import ApplicationError
from billing.models import PaymentAttempt, Refund

KST = zoneinfo.ZoneInfo("Asia/Seoul")


class ReportPeriodError(ApplicationError):
    code = "invalid_period"
    status_code = 400
    default_message = _("Give the period as a month (2027-01) or a quarter (2027-Q1).")


@dataclass(frozen=True)
class Period:
    """A KST calendar month or quarter: [first, end) in days."""

    label: str
    first: dt.date
    end: dt.date

    @property
    def window(self) -> tuple[dt.datetime, dt.datetime]:
        return (
            dt.datetime.combine(self.first, dt.time.min, tzinfo=KST),
            dt.datetime.combine(self.end, dt.time.min, tzinfo=KST),
        )

    @property
    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range((self.end - self.first).days)]


def _month_start(year: int, month: int) -> dt.date:
    return dt.date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def period_parse(value: str) -> Period:
    """`2027-01` (a month) or `2027-Q1` (a quarter), in KST. Raises ReportPeriodError."""
    text = (value or "").strip().upper()
    match = re.fullmatch(r"(\d{4})-(\d{2})", text) or re.fullmatch(r"(\d{4})-Q([1-4])", text)
    if not match:
        raise ReportPeriodError(field="period")
    year, number = int(match.group(1)), int(match.group(2))
    if not 2000 <= year <= 2100:
        raise ReportPeriodError(field="period")
    if "Q" in text:
        first = _month_start(year, 3 * number - 2)
        return Period(f"{year}-Q{number}", first, _month_start(year, 3 * number + 1))
    if not 1 <= number <= 12:
        raise ReportPeriodError(field="period")
    return Period(f"{year}-{number:02d}", _month_start(year, number), _month_start(year, number + 1))


def period_of(moment: dt.datetime) -> Period:
    day = moment.astimezone(KST).date()
    return period_parse(f"{day.year}-{day.month:02d}")


def _parts(sums: dict) -> dict[str, int]:
    amount, vat, tax_free = sums["amount"] or 0, sums["vat"] or 0, sums["tax_free"] or 0
    return {
        "count": sums["count"],
        "amount": amount,
        "supply_amount": amount - vat - tax_free,
        "vat_amount": vat,
        "tax_free_amount": tax_free,
    }


def charges_in(period: Period):
    start, end = period.window
    return PaymentAttempt.objects.filter(status=PaymentAttempt.Status.SUCCEEDED, paid_at__gte=start, paid_at__lt=end)


def refunds_in(period: Period):
    start, end = period.window
    return Refund.objects.filter(status=Refund.Status.SUCCEEDED, settled_at__gte=start, settled_at__lt=end)


_SUMS = {"count": Count("id"), "amount": Sum("amount"), "vat": Sum("vat_amount"), "tax_free": Sum("tax_free_amount")}


def tax_report(*, period: Period) -> dict:
    """Gross charged, refunds and net, each as amount = supply + VAT + tax-free, for `period`."""
    charged = _parts(charges_in(period).aggregate(**_SUMS))
    refunded = _parts(refunds_in(period).aggregate(**_SUMS))
    net = {key: charged[key] - refunded[key] for key in charged if key != "count"}
    return {"period": period.label, "charged": charged, "refunded": refunded, "net": net}
