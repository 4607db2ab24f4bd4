"""GET /api/finance/reports: the finance report for staff (the merchant's finance tools), refused to others, with
the stable error shape for a bad period. The numbers themselves are checked in tests/subscriptions."""

from __future__ import annotations

import pytest

from tests.api.conftest import error_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_finance_report_answers_staff_with_the_month_parts(client_for, subscriber, staff_user):
    subscriber()

    response = client_for(staff_user()).get("/api/finance/reports")

    body = response.json()
    assert response.status_code == 200
    assert body["charged"]["amount"] == 9_900 and body["charged"]["vat_amount"] == 900
    assert body["net"]["amount"] == 9_900 and [r["plan_code"] for r in body["by_plan"]] == ["basic"]


def test_finance_report_refuses_a_subscriber_and_anonymous(client_for, anon):
    assert client_for(UserFactory()).get("/api/finance/reports").status_code == 403
    assert anon.get("/api/finance/reports").status_code == 401


def test_finance_report_rejects_a_malformed_period_with_a_stable_code(client_for, staff_user):
    response = client_for(staff_user()).get("/api/finance/reports", {"period": "2027-13"})

    assert response.status_code == 400 and error_of(response)["code"] == "invalid_period"
