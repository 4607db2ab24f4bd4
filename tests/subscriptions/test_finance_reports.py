"""Finance reports (billing/services/reports.py, subscriptions/services/reports.py) over a fixture month made
through the real services and sandbox: totals checked against a hand computation with partial refunds and
tax-free lines, the month boundary in KST, exports with Korean headers, the admin page and the API."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from billing.errors import ApplicationError
from billing.models import PaymentAttempt
from billing.services.payments import payment_charge
from billing.services.refunds import refund_create
from billing.services.reports import period_parse
from subscriptions.finance_exports import report_csv, report_xlsx
from subscriptions.services.lifecycle import subscription_create
from subscriptions.services.reports import finance_report
from tests.admin.conftest import staff_user
from tests.billing.test_payments import open_invoice
from tests.factories import PlanFactory, UserFactory, make_customer, register_card

pytestmark = pytest.mark.django_db
KST = zoneinfo.ZoneInfo("Asia/Seoul")


def kst(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=KST)


def _at(sandbox, moment):
    sandbox.set_now(int(moment.timestamp()))
    return moment


def _subscribe(sandbox, gateway, customer, plan, moment) -> PaymentAttempt:
    subscription = subscription_create(customer=customer, plan=plan, now=_at(sandbox, moment), gateway=gateway)
    return PaymentAttempt.objects.get(invoice__subscription_link__subscription=subscription)


@pytest.fixture
def february_2031(sandbox, gateway):
    """The fixture month (KST), by hand:

    charges   basic 11,000 (VAT 1,000) · edu 15,500 with 5,500 tax-free (VAT 909) · annual 132,000 (VAT 12,000)
    refunds   basic 5,500 (VAT 500) · edu 7,750 (tax-free 2,750, VAT 455) · edu 1,550 (tax-free 550, VAT 90)
    outside   an invoice paid 2031-01-31 23:59:59 KST and one paid 2031-03-01 00:00:00 KST
    """
    sandbox.freeze()
    start = kst(2026, 12, 1)
    customers = [make_customer() for _ in range(5)]
    for customer in customers:
        register_card(customer, gateway, now=start)  # issued before the clock jumps past the cards' expiry
    basic = PlanFactory(code="basic", name_ko="베이직", amount=11_000)
    edu = PlanFactory(code="edu", name_ko="교육", amount=15_500, tax_free_amount=5_500)
    annual = PlanFactory(code="annual", name_ko="연간", amount=132_000, interval="year")
    before = kst(2031, 1, 31, 23, 59, 59)
    payment_charge(invoice_id=open_invoice(customers[3], before).pk, now=_at(sandbox, before), gateway=gateway)
    a = _subscribe(sandbox, gateway, customers[0], basic, kst(2031, 2, 3, 10))
    b = _subscribe(sandbox, gateway, customers[1], edu, kst(2031, 2, 5, 10))
    _subscribe(sandbox, gateway, customers[2], annual, kst(2031, 2, 10, 10))
    for attempt, amount, moment in (
        (a, 5_500, kst(2031, 2, 12, 9)),
        (b, 7_750, kst(2031, 2, 15, 9)),
        (b, 1_550, kst(2031, 2, 28, 23, 59, 59)),
    ):
        refund = refund_create(
            attempt_id=attempt.pk, amount=amount, reason="부분 환불", now=_at(sandbox, moment), gateway=gateway
        )
        assert refund.status == "succeeded"
    after = kst(2031, 3, 1, 0, 0, 0)
    payment_charge(invoice_id=open_invoice(customers[4], after).pk, now=_at(sandbox, after), gateway=gateway)
    return period_parse("2031-02")


def test_month_totals_match_the_hand_computation(february_2031):
    report = finance_report(period=february_2031)

    assert report["charged"] == {
        "count": 3,
        "amount": 158_500,
        "supply_amount": 139_091,
        "vat_amount": 13_909,
        "tax_free_amount": 5_500,
    }
    assert report["refunded"] == {
        "count": 3,
        "amount": 14_800,
        "supply_amount": 10_455,
        "vat_amount": 1_045,
        "tax_free_amount": 3_300,
    }
    assert report["net"] == {
        "amount": 143_700,
        "supply_amount": 128_636,
        "vat_amount": 12_864,
        "tax_free_amount": 2_200,
    }


def test_revenue_by_plan_adds_up_to_the_month(february_2031):
    rows = {r["plan_code"]: r for r in finance_report(period=february_2031)["by_plan"]}

    assert {code: (r["charged"], r["refunded"], r["net"]) for code, r in rows.items()} == {
        "basic": (11_000, 5_500, 5_500),
        "edu": (15_500, 9_300, 6_200),
        "annual": (132_000, 0, 132_000),
    }
    assert rows["edu"]["net_tax_free_amount"] == 2_200 and rows["edu"]["net_vat_amount"] == 909 - 455 - 90


def test_mrr_movements_and_deferred_annual_revenue_by_hand(february_2031):
    report = finance_report(period=february_2031)

    assert report["mrr"]["start_mrr"] == 0 and report["mrr"]["end_mrr"] == 11_000 + 15_500 + 11_000
    assert report["mrr"]["new"] == 37_500 and report["mrr"]["customers"]["new"] == 3
    # 120,000 won excluding VAT over 365 days from 2031-02-10: 19 days fall in February.
    assert report["deferred"]["recognised"] == 120_000 * 19 // 365 == 6_246
    assert report["deferred"]["deferred_at_end"] == 113_754
    days = {d["day"]: d["recognised"] for d in report["deferred"]["daily"]}
    assert days["2031-02-09"] == 0 and days["2031-02-10"] == 120_000 * 1 // 365


def test_quarter_includes_the_next_month_and_the_month_before_is_separate(february_2031):
    q1 = finance_report(period=period_parse("2031-Q1"))
    january = finance_report(period=period_parse("2031-01"))

    assert q1["charged"]["count"] == 5 and q1["charged"]["amount"] == 158_500 + 9_900 + 9_900
    assert january["charged"]["amount"] == 9_900 and january["refunded"]["count"] == 0


def test_period_must_be_a_month_or_a_quarter():
    for bad in ("2031-13", "2031-Q5", "31-02", "", "2031/02"):
        with pytest.raises(ApplicationError) as caught:
            period_parse(bad)
        assert caught.value.code == "invalid_period"


def test_csv_and_xlsx_carry_the_same_numbers_under_korean_headers(february_2031):
    report = finance_report(period=february_2031)

    rows = list(csv.reader(io.StringIO(report_csv(report).decode("utf-8-sig"))))
    sheet = load_workbook(io.BytesIO(report_xlsx(report)))["부가세"]

    assert ["구분", "건수", "공급가액", "부가세", "면세금액", "합계"] in rows
    assert ["순매출", "", "128636", "12864", "2200", "143700"] in rows
    assert [c.value for c in sheet[2]] == ["구분", "건수", "공급가액", "부가세", "면세금액", "합계"]
    assert [c.value for c in sheet[5]] == ["순매출", None, 128_636, 12_864, 2_200, 143_700]


def test_admin_page_and_exports_for_staff_with_invoice_view_permission(client, february_2031):
    client.force_login(staff_user("billing.view_invoice"))

    page = client.get(reverse("admin:finance_reports"), {"period": "2031-02"})
    xlsx = client.get(reverse("admin:finance_xlsx"), {"period": "2031-02"})
    csv_response = client.get(reverse("admin:finance_csv"), {"period": "2031-02"})

    assert page.status_code == 200 and "143,700" in page.content.decode() and "<svg" in page.content.decode()
    assert xlsx.status_code == 200 and xlsx["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "2031-02" in csv_response["Content-Disposition"]


def test_admin_page_refuses_staff_without_the_permission(client):
    client.force_login(staff_user())

    assert client.get(reverse("admin:finance_reports")).status_code == 403


def test_api_gives_the_same_numbers_to_staff_and_refuses_others(client, february_2031):
    client.force_login(UserFactory())
    refused = client.get("/api/finance/reports", {"period": "2031-02"})
    client.force_login(UserFactory(is_staff=True))
    answer = client.get("/api/finance/reports", {"period": "2031-02"})
    bad = client.get("/api/finance/reports", {"period": "2031-2"})

    assert refused.status_code == 403
    assert answer.status_code == 200 and answer.json()["net"]["amount"] == 143_700
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_period"
