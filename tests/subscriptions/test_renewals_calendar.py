"""Renewals on the anchored calendar, and the renewal batch (subscriptions/services/renewals.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.subscriptions.lifecycle_helpers import KST, S, paid_invoices

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("strategy", "_after_commit_runs")]


def test_renewals_follow_the_anchor_through_month_ends_and_charge_once_per_period(
    subscribe, run, sandbox, gateway, plan
):
    sub = subscribe(gateway, plan)  # anchored Jan 31, 10:00 KST

    for moment in [
        dt.datetime(2027, 2, 28, 10, 0, tzinfo=KST),
        dt.datetime(2027, 3, 31, 10, 0, tzinfo=KST),
        dt.datetime(2027, 4, 30, 10, 0, tzinfo=KST),
    ]:
        run(gateway, moment)
        run(gateway, moment)  # the sweep fired twice: nothing more happens

    starts = [inv.period_start.astimezone(KST).date().isoformat() for inv in paid_invoices(sub)]
    assert starts == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"]
    assert len([p for p in sandbox.payments() if p["status"] == "paid"]) == 4
    sub.refresh_from_db()
    assert sub.status == S.ACTIVE
