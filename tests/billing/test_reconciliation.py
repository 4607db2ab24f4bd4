"""Daily reconciliation (billing/services/reconciliation.py) against the real sandbox: every difference class made
through the sandbox's controls, paging, the KST day boundary, resuming after Iamport failed part way, reruns."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from billing.errors import ApplicationError
from billing.models import AuditLog, PaymentAttempt, ReconciliationRow, ReconciliationRun, Refund
from billing.services.payments import payment_charge
from billing.services.reconciliation import (
    ReconciliationDayNotOverError,
    reconcile_every_day,
    reconciliation_row_mark_investigated,
    reconciliation_row_refund_orphan,
    reconciliation_run,
    reconciliations_run_due,
)
from billing.services.refunds import refund_create
from tests.billing.test_payments import open_invoice
from tests.factories import make_customer, register_card

pytestmark = pytest.mark.django_db

KST = zoneinfo.ZoneInfo("Asia/Seoul")
Kind = ReconciliationRow.Kind


def a_day_ahead(sandbox) -> dt.date:
    """A KST business day a little ahead of the sandbox's clock (which only moves forward), frozen at 10:00."""
    today = dt.datetime.fromtimestamp(sandbox.now(), KST).date()
    chosen = today + dt.timedelta(days=2)
    sandbox.freeze()
    sandbox.set_now(int(at(chosen, 10).timestamp()))
    return chosen


@pytest.fixture
def day(sandbox):
    return a_day_ahead(sandbox)


def at(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=KST)


def after(day: dt.date) -> dt.datetime:
    """00:30 KST the next morning, when the beat reconciles `day`."""
    return at(day + dt.timedelta(days=1), 0, 30)


def charge(gateway, sandbox, moment: dt.datetime, amount: int = 9_900) -> PaymentAttempt:
    sandbox.set_now(int(moment.timestamp()))
    customer = make_customer()
    register_card(customer, gateway, now=moment)
    attempt = payment_charge(invoice_id=open_invoice(customer, moment, amount=amount).pk, now=moment, gateway=gateway)
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    return attempt


def kinds(run: ReconciliationRun) -> list[tuple[str, str]]:
    return sorted((r.kind, r.resolution) for r in run.rows.all())


def test_run_is_clean_when_books_and_iamport_agree_including_our_own_partial_refund(sandbox, gateway, day):
    first = charge(gateway, sandbox, at(day, 10))
    charge(gateway, sandbox, at(day, 11), amount=19_800)
    refund_create(attempt_id=first.pk, amount=1_000, reason="partial", now=at(day, 12), gateway=gateway)

    run = reconciliation_run(day=day, now=after(day), gateway=gateway)

    assert run.status == "complete" and run.is_clean
    assert run.counts["matched"] == 2
    assert run.totals["iamport"]["paid"] == {"count": 2, "amount": 29_700, "cancel_amount": 1_000}
    assert run.totals["ours"]["paid"] == {"count": 2, "amount": 29_700}
    assert run.totals["ours"]["refunded"] == {"count": 1, "amount": 1_000}


def test_console_partial_refund_without_webhook_is_recorded_and_audited_as_reconciliation(sandbox, gateway, day):
    attempt = charge(gateway, sandbox, at(day, 10))
    sandbox.console_refund(attempt.imp_uid, amount=3_000)

    run = reconciliation_run(day=day, now=after(day), gateway=gateway)

    assert kinds(run) == [(Kind.REFUND_DIFFERS, "auto")]
    assert run.is_clean
    refund = Refund.objects.get(attempt=attempt)
    assert (refund.amount, refund.status) == (3_000, "succeeded")
    assert AuditLog.objects.filter(action="refund.synced", object_id=str(refund.pk), actor_label="reconciliation")


def test_console_full_refund_is_status_differs_and_settled_even_though_iamport_files_it_under_the_refund_day(
    sandbox, gateway, day
):
    attempt = charge(gateway, sandbox, at(day, 10))
    sandbox.set_now(int(at(day + dt.timedelta(days=1), 9).timestamp()))
    sandbox.console_refund(attempt.imp_uid)  # cancelled the next day: listed under that day, not ours

    run = reconciliation_run(day=day, now=at(day + dt.timedelta(days=2), 0, 30), gateway=gateway)

    assert kinds(run) == [(Kind.STATUS_DIFFERS, "auto")]
    assert Refund.objects.get(attempt=attempt).amount == attempt.amount


def test_payment_under_our_merchant_uid_pattern_we_never_made_is_missing_here_and_refunded_with_checksum(
    sandbox, gateway, day, settings
):
    orphan = sandbox.direct_payment(f"{settings.BILLING_UID_PREFIX}999_1_abcdef", 15_000)
    sandbox.direct_payment("other-shop-order-1", 5_000)  # another app on the account: not ours to judge

    run = reconciliation_run(day=day, now=after(day), gateway=gateway)

    assert kinds(run) == [(Kind.MISSING_HERE, "open")]
    assert not run.is_clean and run.unresolved_count == 1 and run.counts["not_ours"] == 1
    row = run.rows.get()
    assert (row.imp_uid, row.iamport_amount) == (orphan["imp_uid"], 15_000)

    reconciliation_row_refund_orphan(row_id=row.pk, now=after(day), gateway=gateway)

    remote = gateway.get_payment(imp_uid=orphan["imp_uid"])
    assert (remote.status, remote.cancel_amount) == ("cancelled", 15_000)
    run.refresh_from_db()
    assert run.unresolved_count == 0
    assert any(r["path"] == "/payments/cancel" for r in sandbox.requests_log())


def test_refunding_an_orphan_twice_is_refused_with_a_stable_code(sandbox, gateway, day, settings):
    sandbox.direct_payment(f"{settings.BILLING_UID_PREFIX}998_1_abcdef", 15_000)
    row = reconciliation_run(day=day, now=after(day), gateway=gateway).rows.get()
    reconciliation_row_refund_orphan(row_id=row.pk, now=after(day), gateway=gateway)

    with pytest.raises(ApplicationError) as caught:
        reconciliation_row_refund_orphan(row_id=row.pk, now=after(day), gateway=gateway)

    assert caught.value.code == "reconciliation_action_not_allowed"
    assert gateway.get_payment(imp_uid=row.imp_uid).cancel_amount == 15_000


def test_amount_changed_at_iamport_is_amount_differs_and_left_for_a_person(sandbox, gateway, day):
    attempt = charge(gateway, sandbox, at(day, 10))
    sandbox.set_payment_amount(attempt.imp_uid, 19_800)

    run = reconciliation_run(day=day, now=after(day), gateway=gateway)

    assert kinds(run) == [(Kind.AMOUNT_DIFFERS, "open")]
    row = run.rows.get()
    assert (row.iamport_amount, row.our_amount) == (19_800, 9_900)


def test_paid_here_but_unknown_to_iamport_is_missing_there(sandbox, gateway, day):
    attempt = charge(gateway, sandbox, at(day, 10))
    sandbox.reset()  # Iamport's ledger no longer has it
    sandbox.freeze()
    sandbox.set_now(int(after(day).timestamp()))

    run = reconciliation_run(day=day, now=after(day), gateway=gateway)

    assert kinds(run) == [(Kind.MISSING_THERE, "open")]
    assert run.rows.get().attempt_id == attempt.pk


def test_late_paid_status_settles_an_unknown_attempt_through_the_payment_service(sandbox, gateway, day):
    sandbox.add_fault("again", "timeout_after_commit", hold_ms=100)
    customer = make_customer()
    register_card(customer, gateway, now=at(day, 10))
    attempt = payment_charge(invoice_id=open_invoice(customer, at(day, 10)).pk, now=at(day, 10), gateway=gateway)
    assert attempt.status == PaymentAttempt.Status.UNKNOWN

    run = reconciliation_run(day=day, now=after(day), gateway=gateway)

    attempt.refresh_from_db()
    assert attempt.status == PaymentAttempt.Status.SUCCEEDED
    assert (Kind.STATUS_DIFFERS, "auto") in kinds(run)
    assert AuditLog.objects.filter(action="payment.succeeded", actor_label="reconciliation").exists()


def test_listing_is_read_across_pages(sandbox, gateway, day, settings):
    settings.BILLING_RECONCILE_PAGE_SIZE = 2
    for hour in (10, 11, 12, 13, 14):
        charge(gateway, sandbox, at(day, hour))
    sandbox.direct_payment(f"{settings.BILLING_UID_PREFIX}997_1_abcdef", 1_000, paid_at=int(at(day, 15).timestamp()))

    run = reconciliation_run(day=day, now=after(day), gateway=gateway)

    assert run.pages_fetched == 3 and run.iamport_total == 6
    assert run.counts["matched"] == 5 and kinds(run) == [(Kind.MISSING_HERE, "open")]
    pages = [r for r in sandbox.requests_log() if r["path"].startswith("/payments/status/all")]
    assert len(pages) == 3


def test_day_boundary_puts_23_59_59_in_the_day_and_00_00_00_in_the_next(sandbox, gateway, day):
    late = charge(gateway, sandbox, at(day, 23, 59, 59))
    early = charge(gateway, sandbox, at(day + dt.timedelta(days=1), 0, 0, 0))

    first = reconciliation_run(day=day, now=after(day + dt.timedelta(days=1)), gateway=gateway)
    second = reconciliation_run(day=day + dt.timedelta(days=1), now=after(day + dt.timedelta(days=1)), gateway=gateway)

    assert list(first.ledger_entries.values_list("imp_uid", flat=True)) == [late.imp_uid]
    assert list(second.ledger_entries.values_list("imp_uid", flat=True)) == [early.imp_uid]
    assert first.is_clean and second.is_clean
    assert first.totals["ours"]["paid"]["count"] == 1 and second.totals["ours"]["paid"]["count"] == 1


def test_run_stopped_by_iamport_resumes_at_the_page_where_it_stopped_and_is_never_clean_meanwhile(
    sandbox, gateway, day, settings
):
    settings.BILLING_RECONCILE_PAGE_SIZE = 2
    for hour in (10, 11, 12, 13, 14):
        charge(gateway, sandbox, at(day, hour))
    gateway.read_retries = 0
    sandbox.clear_requests_log()
    sandbox.add_fault("payments", "delay", delay_ms=0, times=1)  # page 1 served
    sandbox.add_fault("payments", "http_503", times=1)  # page 2: Iamport down

    stopped = reconciliation_run(day=day, now=after(day), gateway=gateway)

    assert stopped.status == "incomplete" and not stopped.is_clean and stopped.pages_fetched == 1
    assert "GatewayUnavailable" in stopped.error

    sandbox.add_fault("payments", "throttle", retry_after=0, times=1)  # a 429 on the resumed page
    throttled = reconciliation_run(day=day, now=after(day), gateway=gateway)
    assert throttled.pk == stopped.pk and throttled.status == "incomplete" and "Throttled" in throttled.error

    resumed = reconciliation_run(day=day, now=after(day), gateway=gateway)

    assert resumed.pk == stopped.pk and resumed.status == "complete" and resumed.is_clean
    assert resumed.counts["matched"] == 5
    pages = [r["path"] for r in sandbox.requests_log() if r["path"].startswith("/payments/status/all")]
    assert len(pages) == 5  # 1 ok, 1 down, 1 throttled, then 2 and 3: page 1 was never asked again


def test_rerun_of_a_day_finds_nothing_new_and_keeps_an_investigation(sandbox, gateway, day):
    attempt = charge(gateway, sandbox, at(day, 10))
    sandbox.set_payment_amount(attempt.imp_uid, 12_000)
    sandbox.console_refund(charge(gateway, sandbox, at(day, 11)).imp_uid, amount=500)
    first = reconciliation_run(day=day, now=after(day), gateway=gateway)
    row = first.rows.get(kind=Kind.AMOUNT_DIFFERS)
    reconciliation_row_mark_investigated(row_id=row.pk, note="PG 정정 확인", now=after(day))

    again = reconciliation_run(day=day, now=after(day), gateway=gateway)

    assert again.pk != first.pk
    assert kinds(again) == [(Kind.AMOUNT_DIFFERS, "investigated")]  # the console refund is settled for good
    assert again.new_count == 0 and again.unresolved_count == 0
    assert again.rows.get().note == "PG 정정 확인"


def test_mark_investigated_needs_a_note(sandbox, gateway, day):
    attempt = charge(gateway, sandbox, at(day, 10))
    sandbox.set_payment_amount(attempt.imp_uid, 12_000)
    row = reconciliation_run(day=day, now=after(day), gateway=gateway).rows.get()

    with pytest.raises(ApplicationError) as caught:
        reconciliation_row_mark_investigated(row_id=row.pk, note="  ", now=after(day))

    assert caught.value.code == "note_required"
    row.refresh_from_db()
    assert row.resolution == "open"


def test_a_day_that_is_not_over_is_refused(sandbox, gateway, day):
    with pytest.raises(ReconciliationDayNotOverError):
        reconciliation_run(day=day, now=at(day, 23, 59, 59), gateway=gateway)
    assert not ReconciliationRun.objects.exists()


def test_operators_are_emailed_once_when_a_run_leaves_differences(sandbox, gateway, day, settings, mailoutbox):
    settings.BILLING_OPERATOR_EMAILS = ["ops@example.com"]
    sandbox.direct_payment(f"{settings.BILLING_UID_PREFIX}996_1_abcdef", 2_000)

    reconciliation_run(day=day, now=after(day), gateway=gateway)
    reconciliation_run(day=day, now=after(day), gateway=gateway)  # a new run: it is told again

    assert len(mailoutbox) == 2
    assert mailoutbox[0].to == ["ops@example.com"] and "대사" in mailoutbox[0].subject


def test_clean_run_sends_no_email(sandbox, gateway, day, settings, mailoutbox):
    settings.BILLING_OPERATOR_EMAILS = ["ops@example.com"]
    charge(gateway, sandbox, at(day, 10))

    run = reconciliation_run(day=day, now=after(day), gateway=gateway)

    assert run.is_clean and mailoutbox == []


def test_sweep_runs_yesterday_once_and_every_day_helper_adds_up(sandbox, gateway, day):
    charge(gateway, sandbox, at(day, 10))

    first = reconciliations_run_due(now=after(day), gateway=gateway)
    second = reconciliations_run_due(now=after(day), gateway=gateway)
    totals = reconcile_every_day(day - dt.timedelta(days=1), day, now=after(day), gateway=gateway)

    assert first == {"complete": 1, "incomplete": 0, "unresolved": 0, "busy": 0}
    assert second["complete"] == 0
    assert totals["complete"] == 2 and totals["unresolved"] == 0 and totals["matched"] == 1
