"""Entry points of the reconciliation: `manage.py reconcile`, the beat entry, and the admin (list, detail, run on
demand, refund an orphan, mark investigated), against the real sandbox."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from billing.models import AuditLog, ReconciliationRow, ReconciliationRun
from tests.admin.conftest import staff_user
from tests.billing.test_reconciliation import a_day_ahead, after, at, charge

pytestmark = pytest.mark.django_db


@pytest.fixture
def day(sandbox):
    return a_day_ahead(sandbox)


@pytest.fixture
def clock_after(day, settings):
    """The app's test clock at 00:30 KST after `day`."""
    from billing import clock

    settings.BILLING_TEST_CLOCK = True
    clock.set_offset(int((after(day) - dt.datetime.now(dt.UTC)).total_seconds()) + 1)
    return after(day)


def test_reconcile_command_reports_a_clean_day(sandbox, gateway, day, clock_after):
    charge(gateway, sandbox, at(day, 10))
    out = io.StringIO()

    call_command("reconcile", "--date", day.isoformat(), stdout=out)

    assert "complete" in out.getvalue() and "clean" in out.getvalue()
    assert ReconciliationRun.objects.get().trigger == "command"


def test_reconcile_command_refuses_a_malformed_date_and_a_day_not_over(sandbox, gateway, day, clock_after):
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("reconcile", "--date", "31/01/2027")
    with pytest.raises(CommandError, match="day_not_over"):
        call_command("reconcile", "--date", (day + dt.timedelta(days=5)).isoformat())
    assert not ReconciliationRun.objects.exists()


def test_reconcile_command_fails_and_says_resume_when_iamport_is_down(sandbox, gateway, day, clock_after, settings):
    settings.IAMPORT_READ_TIMEOUT = 0.5
    sandbox.add_fault("payments", "http_503", times=10)

    with pytest.raises(CommandError, match="resume"):
        call_command("reconcile", "--date", day.isoformat(), stdout=io.StringIO())
    assert ReconciliationRun.objects.get().status == "incomplete"


def test_beat_runs_the_reconciliation_sweep_hourly_at_half_past_in_kst():
    task = PeriodicTask.objects.get(task="billing.tasks.reconciliations_run_due_task")

    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("30", "*", "Asia/Seoul")


def test_admin_lists_runs_shows_rows_and_runs_a_day_on_demand(client, sandbox, gateway, day, clock_after, settings):
    sandbox.direct_payment(f"{settings.BILLING_UID_PREFIX}990_1_abcdef", 4_000)
    client.force_login(staff_user("billing.change_reconciliationrun", "billing.view_reconciliationrun"))

    response = client.post(reverse("admin:billing_reconciliationrun_run"), {"day": day.isoformat()}, follow=True)

    run = ReconciliationRun.objects.get()
    assert response.status_code == 200 and run.unresolved_count == 1
    page = response.content.decode()
    row = run.rows.get()
    assert "990_1_abcdef" in page
    assert reverse("admin:billing_reconciliationrow_action", args=[row.pk, "refund"]) in page
    listing = client.get(reverse("admin:billing_reconciliationrun_changelist"))
    assert listing.status_code == 200 and day.strftime("%Y") in listing.content.decode()


def test_admin_refunds_an_orphan_and_marks_another_row_investigated(client, sandbox, gateway, day, settings):
    orphan = sandbox.direct_payment(f"{settings.BILLING_UID_PREFIX}991_1_abcdef", 4_000)
    attempt = charge(gateway, sandbox, at(day, 11))
    sandbox.set_payment_amount(attempt.imp_uid, 5_000)
    from billing.services.reconciliation import reconciliation_run

    run = reconciliation_run(day=day, now=after(day), gateway=gateway)
    orphan_row = run.rows.get(kind=ReconciliationRow.Kind.MISSING_HERE)
    amount_row = run.rows.get(kind=ReconciliationRow.Kind.AMOUNT_DIFFERS)
    user = staff_user("billing.change_reconciliationrun", "billing.view_reconciliationrun")
    client.force_login(user)

    confirm = client.get(reverse("admin:billing_reconciliationrow_action", args=[orphan_row.pk, "refund"]))
    refund = client.post(reverse("admin:billing_reconciliationrow_action", args=[orphan_row.pk, "refund"]))
    empty = client.post(reverse("admin:billing_reconciliationrow_action", args=[amount_row.pk, "investigated"]), {})
    noted = client.post(
        reverse("admin:billing_reconciliationrow_action", args=[amount_row.pk, "investigated"]), {"note": "PG 확인"}
    )

    assert confirm.status_code == 200 and refund.status_code == 302 and noted.status_code == 302
    assert empty.status_code == 200  # the form again, with its error: nothing changed
    assert gateway.get_payment(imp_uid=orphan["imp_uid"]).status == "cancelled"
    amount_row.refresh_from_db()
    assert (amount_row.resolution, amount_row.note, amount_row.resolved_by) == ("investigated", "PG 확인", user)
    run.refresh_from_db()
    assert run.unresolved_count == 0
    assert AuditLog.objects.filter(action="reconciliation.orphan_refunded", actor=user).exists()


def test_admin_actions_need_the_change_permission(client, sandbox, gateway, day, settings):
    sandbox.direct_payment(f"{settings.BILLING_UID_PREFIX}992_1_abcdef", 4_000)
    from billing.services.reconciliation import reconciliation_run

    row = reconciliation_run(day=day, now=after(day), gateway=gateway).rows.get()
    client.force_login(staff_user("billing.view_reconciliationrun"))

    response = client.post(reverse("admin:billing_reconciliationrow_action", args=[row.pk, "refund"]))

    assert response.status_code == 403
    assert gateway.get_payment(imp_uid=row.imp_uid).status == "paid"


def test_reconcile_command_refuses_with_a_stable_code_and_stores_no_run_when_portone_v2_is_the_gateway(
    sandbox, sandbox_server, day, clock_after, settings
):
    from billing.services.gateway import reset_gateway
    from tests.conftest import use_portone_v2

    use_portone_v2(settings, sandbox_server)
    reset_gateway()

    with pytest.raises(CommandError, match="reconciliation_not_supported"):
        call_command("reconcile", "--date", day.isoformat(), stdout=io.StringIO())
    assert not ReconciliationRun.objects.exists()
    assert [r for r in sandbox.requests_log() if r.get("endpoint") == "payments"] == []  # nothing was paged
    reset_gateway()
