"""Daily reconciliation (대사): one KST business day of our books against Iamport's ledger.

A run (1) pages through ``GET /payments/status/all`` for the day, storing every page before asking for the
next, so a run stopped by Iamport being down or throttling (429) resumes at the page where it stopped and is
INCOMPLETE, never clean, meanwhile; (2) matches each listed payment with our attempts and refunds by
``merchant_uid``/``imp_uid``; (3) looks up by id what we booked that day and did not find in the listing
(Iamport files a payment under the time of its current status, so one paid on the day and fully refunded
later is listed on the later day); (4) settles through the services the webhooks use what a re-fetch settles
safely (a console refund, a late paid or failed status), audited as ``reconciliation``; (5) stores every
difference as a row and emails the operators when any is left for a person.

Differences: ``missing_here`` (Iamport charged under one of our merchant_uids and we have no such charge),
``missing_there`` (we booked a charge Iamport does not have), ``amount_differs``, ``status_differs`` (e.g.
cancelled there, paid here), ``refund_differs`` (cancelled amounts differ), ``unknown_open`` (an attempt whose
outcome is still unknown after the janitor's window).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.utils.translation import override

from billing.errors import (
    GatewayUnavailableError,
    NotFoundError,
    ReconciliationActionError,
    ReconciliationDayNotOverError,
    ReconciliationInProgressError,
    ReconciliationNoteRequiredError,
    ReconciliationNotSupportedError,
)
from billing.gateway.base import GatewayPayment
from billing.gateway.errors import GatewayError, GatewayRejected
from billing.models import (
    PaymentAttempt,
    ReconciliationLedgerEntry,
    ReconciliationRow,
    ReconciliationRun,
    Refund,
)
from billing.services.audit import audit_record
from billing.services.gateway import PORTONE_V2, gateway_name, get_gateway
from billing.services.payments import payment_apply_gateway_payment, payment_reconcile
from billing.services.refunds import refunds_sync_from_gateway

logger = logging.getLogger(__name__)

KST = zoneinfo.ZoneInfo("Asia/Seoul")
LABEL = "reconciliation"
Kind = ReconciliationRow.Kind
Resolution = ReconciliationRow.Resolution
Status = PaymentAttempt.Status
CHUNK = 5000  # ids per IN (...) query
MULTI_GET = 100  # Iamport's multi-get maximum


def day_window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a KST business day as aware datetimes (00:00:00 KST to the next 00:00:00 KST)."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=KST)
    return start, start + dt.timedelta(days=1)


def kst_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(KST).date()


@dataclass
class _Ours:
    """An attempt as our books hold it, with its refund totals."""

    attempt: PaymentAttempt
    refunded: int = 0
    in_flight: int = 0


@dataclass
class _Found:
    kind: str
    ours: _Ours | None
    payment: GatewayPayment | ReconciliationLedgerEntry | None
    detail: str = ""
    resolvable: bool = False
    fields: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- the run


def reconciliation_run(
    *, day: dt.date, now: dt.datetime, gateway=None, trigger: str = "", notify: bool = True
) -> ReconciliationRun:
    """Reconcile `day` (KST). Resumes the day's unfinished run if there is one. Returns the run: COMPLETE, or
    INCOMPLETE with `error` when Iamport could not be read to the end (run again to resume). Safe to re-run."""
    _, end = day_window(day)
    if now < end:
        raise ReconciliationDayNotOverError()
    if gateway_name() == PORTONE_V2:
        # V2's payment listing (GET /payments) is not implemented in the adapter or the sandbox yet (README,
        # "PortOne V2"): refuse before a run is created rather than store an INCOMPLETE one every day.
        raise ReconciliationNotSupportedError()
    gateway = gateway or get_gateway()
    with _day_lock(day):
        run = _run_to_resume(day=day, now=now, trigger=trigger)
        started = time.monotonic()
        try:
            _fetch_pages(run, gateway=gateway)
        except GatewayError as exc:
            run.status = ReconciliationRun.Status.INCOMPLETE
            run.error = f"{type(exc).__name__}: {exc}"[:500]
            run.duration_ms += int((time.monotonic() - started) * 1000)
            run.save(update_fields=["status", "error", "duration_ms"])
            logger.warning("reconciliation of %s stopped after %d pages: %s", day, run.pages_fetched, exc)
            return run
        _classify_and_finish(run, now=now, gateway=gateway, started=started)
    if notify and run.unresolved_count:
        reconciliation_notify(run=run, now=now)
    return run


class _day_lock:
    """A PostgreSQL advisory lock per day, so two starts never page the same day at once."""

    def __init__(self, day: dt.date) -> None:
        self.key = 0x6B62_0000 + day.toordinal()

    def __enter__(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [self.key])
            if not cursor.fetchone()[0]:
                raise ReconciliationInProgressError()
        return self

    def __exit__(self, *exc):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [self.key])
        return False


def _run_to_resume(*, day: dt.date, now: dt.datetime, trigger: str) -> ReconciliationRun:
    run = ReconciliationRun.objects.filter(day=day).exclude(status=ReconciliationRun.Status.COMPLETE).first()
    if run is None:
        return ReconciliationRun.objects.create(
            day=day, started_at=now, trigger=trigger[:32], page_size=settings.BILLING_RECONCILE_PAGE_SIZE
        )
    run.status = ReconciliationRun.Status.RUNNING
    run.error = ""
    run.save(update_fields=["status", "error"])
    return run


def _fetch_pages(run: ReconciliationRun, *, gateway) -> None:
    """Page through the day from the page after the last one stored; each page is stored with its number."""
    start, end = day_window(run.day)
    for _pass in range(2):
        while True:
            page = gateway.list_payments(
                status="all",
                from_=start,
                to=end - dt.timedelta(seconds=1),  # `to` is inclusive: 23:59:59 KST is the day's last second
                page=run.pages_fetched + 1,
                limit=run.page_size,
                sorting="started",
            )
            with transaction.atomic():
                ReconciliationLedgerEntry.objects.bulk_create(
                    [_entry(run, p) for p in page.items], ignore_conflicts=True
                )
                run.pages_fetched += 1
                run.iamport_total = page.total
                run.save(update_fields=["pages_fetched", "iamport_total"])
            if not page.next or not page.items:
                break
        # Offsets shift when a payment of the day changes status meanwhile (it then files under another day):
        # if fewer distinct payments arrived than Iamport counts, page the day once more from the start.
        if run.ledger_entries.count() >= run.iamport_total:
            return
        run.pages_fetched = 0
        run.save(update_fields=["pages_fetched"])


def _status_time(p: GatewayPayment) -> dt.datetime | None:
    return {"paid": p.paid_at, "cancelled": p.cancelled_at, "failed": p.failed_at}.get(p.status) or p.started_at


def _entry(run: ReconciliationRun, p: GatewayPayment) -> ReconciliationLedgerEntry:
    return ReconciliationLedgerEntry(
        run=run,
        imp_uid=p.imp_uid[:32],
        merchant_uid=p.merchant_uid[:40],
        status=p.status[:16],
        amount=p.amount,
        cancel_amount=p.cancel_amount,
        at=_status_time(p),
        data={"cancels": [[c.cancellation_id, c.amount] for c in p.cancel_history]},
    )


# ---------------------------------------------------------------------------------------------- matching


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _load_ours(*, merchant_uids: Iterable[str], start: dt.datetime, end: dt.datetime) -> dict[str, _Ours]:
    """Our attempts for the listed merchant_uids, plus those charged or refunded during the day."""
    ours: dict[str, _Ours] = {}
    for chunk in _chunks(sorted(set(merchant_uids)), CHUNK):
        for attempt in PaymentAttempt.objects.filter(merchant_uid__in=chunk):
            ours[attempt.merchant_uid] = _Ours(attempt)
    refunded_today = Refund.objects.filter(created_at__gte=start, created_at__lt=end).values("attempt_id")
    for attempt in PaymentAttempt.objects.filter(Q(paid_at__gte=start, paid_at__lt=end) | Q(pk__in=refunded_today)):
        ours.setdefault(attempt.merchant_uid, _Ours(attempt))
    by_id = {o.attempt.pk: o for o in ours.values()}
    for chunk in _chunks(list(by_id), CHUNK):
        sums = (
            Refund.objects.filter(attempt_id__in=chunk)
            .values("attempt_id")
            .annotate(
                refunded=Sum("amount", filter=Q(status=Refund.Status.SUCCEEDED), default=0),
                in_flight=Sum("amount", filter=Q(status__in=(Refund.Status.PENDING, Refund.Status.UNKNOWN)), default=0),
            )
        )
        for row in sums:
            by_id[row["attempt_id"]].refunded = row["refunded"]
            by_id[row["attempt_id"]].in_flight = row["in_flight"]
    return ours


def _compare(ours: _Ours, p) -> _Found | None:
    """What differs between our attempt and one Iamport payment under its merchant_uid (None: they agree)."""
    a = ours.attempt
    charged = p.status in ("paid", "cancelled")
    fields = {"imp_uid": p.imp_uid}
    if a.imp_uid and p.imp_uid != a.imp_uid:
        if charged:
            # A second charge under our merchant_uid (a schedule that ran twice, a console charge): not ours.
            return _Found(Kind.MISSING_HERE, ours, p, f"second charge under {a.merchant_uid}", fields=fields)
        return None  # an earlier declined try of the same merchant_uid
    if a.status == Status.SUCCEEDED:
        if not charged:
            return _Found(Kind.STATUS_DIFFERS, ours, p, f"Iamport says {p.status}, we booked it paid")
        if p.amount != a.amount:
            return _Found(Kind.AMOUNT_DIFFERS, ours, p, f"Iamport {p.amount:,} won, ours {a.amount:,} won")
        if p.cancel_amount != ours.refunded:
            more_there = p.cancel_amount > ours.refunded and not ours.in_flight
            kind = Kind.STATUS_DIFFERS if p.status == "cancelled" else Kind.REFUND_DIFFERS
            detail = f"Iamport refunded {p.cancel_amount:,} won, we recorded {ours.refunded:,} won"
            return _Found(kind, ours, p, detail, resolvable=more_there)
        return None
    if a.flagged_reason:
        kind = Kind.AMOUNT_DIFFERS if charged and p.amount != a.amount else Kind.STATUS_DIFFERS
        return _Found(kind, ours, p, f"parked for an operator: {a.flagged_reason}"[:255])
    if a.status == Status.FAILED:
        if charged:
            return _Found(Kind.STATUS_DIFFERS, ours, p, "Iamport charged an attempt we booked failed", resolvable=True)
        return None
    # PENDING / UNKNOWN: a late paid or failed status settles it; "ready" is still in progress.
    if charged or p.status == "failed":
        if charged and p.amount != a.amount:
            return _Found(Kind.AMOUNT_DIFFERS, ours, p, f"Iamport {p.amount:,} won, ours {a.amount:,} won")
        return _Found(Kind.STATUS_DIFFERS, ours, p, f"Iamport says {p.status}, ours is {a.status}", resolvable=True)
    return None


def _as_payment(entry: ReconciliationLedgerEntry) -> GatewayPayment:
    return GatewayPayment(
        imp_uid=entry.imp_uid,
        merchant_uid=entry.merchant_uid,
        status=entry.status,
        amount=entry.amount,
        cancel_amount=entry.cancel_amount,
    )


def _classify(run: ReconciliationRun, *, now: dt.datetime, gateway) -> tuple[list[_Found], dict, dict]:
    start, end = day_window(run.day)
    prefix = settings.BILLING_UID_PREFIX
    entries = list(run.ledger_entries.all())
    ours = _load_ours(merchant_uids=(e.merchant_uid for e in entries), start=start, end=end)
    found: list[_Found] = []
    counts: dict[str, int] = defaultdict(int)
    iamport_totals: dict[str, dict] = defaultdict(lambda: {"count": 0, "amount": 0, "cancel_amount": 0})
    seen: set[int] = set()
    for e in entries:
        bucket = iamport_totals[e.status]
        bucket["count"] += 1
        bucket["amount"] += e.amount
        bucket["cancel_amount"] += e.cancel_amount
        mine = ours.get(e.merchant_uid)
        if mine is None:
            if e.status in ("paid", "cancelled") and e.merchant_uid.startswith(prefix):
                found.append(_Found(Kind.MISSING_HERE, None, e, "no attempt has this merchant_uid"))
            else:
                counts["not_ours"] += 1
            continue
        if not mine.attempt.imp_uid or mine.attempt.imp_uid == e.imp_uid:
            seen.add(mine.attempt.pk)
        difference = _compare(mine, e)
        if difference is None:
            counts["matched"] += 1
        else:
            found.append(difference)
    # What we booked on the day and the listing did not show: look it up by id before calling it missing.
    unseen = [o for o in ours.values() if o.attempt.pk not in seen and o.attempt.status == Status.SUCCEEDED]
    for chunk in _chunks(unseen, MULTI_GET):
        fetched = {p.imp_uid: p for p in gateway.get_payments(imp_uids=[o.attempt.imp_uid for o in chunk])}
        for mine in chunk:
            p = fetched.get(mine.attempt.imp_uid)
            if p is None:
                found.append(_Found(Kind.MISSING_THERE, mine, None, "Iamport has no payment with this imp_uid"))
                continue
            difference = _compare(mine, p)
            if difference is None:
                counts["matched"] += 1
            else:
                found.append(difference)
    cutoff = now - dt.timedelta(seconds=settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS)
    for attempt in PaymentAttempt.objects.filter(status=Status.UNKNOWN, created_at__lt=min(cutoff, end)):
        mine = _Ours(attempt)
        found.append(
            _Found(
                Kind.UNKNOWN_OPEN,
                mine,
                None,
                attempt.flagged_reason or "outcome unknown",
                resolvable=not attempt.flagged_reason,
            )
        )
    our_paid = PaymentAttempt.objects.filter(status=Status.SUCCEEDED, paid_at__gte=start, paid_at__lt=end).aggregate(
        amount=Sum("amount", default=0)
    )
    our_paid["count"] = PaymentAttempt.objects.filter(
        status=Status.SUCCEEDED, paid_at__gte=start, paid_at__lt=end
    ).count()
    refunds = Refund.objects.filter(status=Refund.Status.SUCCEEDED, created_at__gte=start, created_at__lt=end)
    our_refunded = refunds.aggregate(amount=Sum("amount", default=0))
    our_refunded["count"] = refunds.count()
    totals = {"iamport": dict(iamport_totals), "ours": {"paid": our_paid, "refunded": our_refunded}}
    return found, dict(counts), totals


# ---------------------------------------------------------------------------------------------- resolving


def _resolve(item: _Found, *, now: dt.datetime, gateway) -> bool:
    """Settle a difference a re-fetch settles safely, through the webhook's services. True when it is gone."""
    if not item.resolvable or item.ours is None:
        return False
    attempt_id = item.ours.attempt.pk
    try:
        if item.kind == Kind.UNKNOWN_OPEN:
            attempt = payment_reconcile(attempt_id=attempt_id, now=now, gateway=gateway, source=LABEL)
            return attempt.status != Status.UNKNOWN
        payment = gateway.get_payment(imp_uid=item.payment.imp_uid)  # the full record, cancel history included
    except GatewayError as exc:
        logger.warning("reconciliation: could not re-fetch %s (%s)", item.payment.imp_uid, exc)
        return False
    if item.kind in (Kind.REFUND_DIFFERS, Kind.STATUS_DIFFERS) and item.ours.attempt.status == Status.SUCCEEDED:
        attempt = PaymentAttempt.objects.select_related("invoice").get(pk=attempt_id)
        refunds_sync_from_gateway(attempt=attempt, payment=payment, now=now, label=LABEL)
    else:
        attempt = payment_apply_gateway_payment(attempt_id=attempt_id, payment=payment, now=now, source=LABEL)
        if attempt.status == Status.SUCCEEDED:  # a late paid status, perhaps refunded in the console since
            refunds_sync_from_gateway(attempt=attempt, payment=payment, now=now, label=LABEL)
    attempt = PaymentAttempt.objects.get(pk=attempt_id)
    refunded = attempt.refunds.filter(status=Refund.Status.SUCCEEDED).aggregate(s=Sum("amount", default=0))["s"]
    return _compare(_Ours(attempt, refunded=refunded), payment) is None


def _classify_and_finish(run: ReconciliationRun, *, now: dt.datetime, gateway, started: float) -> None:
    found, counts, totals = _classify(run, now=now, gateway=gateway)
    previous = (
        ReconciliationRun.objects.filter(day=run.day, status=ReconciliationRun.Status.COMPLETE)
        .exclude(pk=run.pk)
        .order_by("-id")
        .first()
    )
    earlier = {r.key: r for r in previous.rows.all()} if previous else {}
    rows = []
    for item in found:
        resolved = _resolve(item, now=now, gateway=gateway)
        row = _row(run, item)
        before = earlier.get(row.key)
        row.is_new = before is None
        if resolved:
            row.resolution, row.resolved_at = Resolution.AUTO, now
        elif before is not None and before.resolution == Resolution.INVESTIGATED:
            row.resolution, row.note = before.resolution, before.note
            row.resolved_at, row.resolved_by_id = before.resolved_at, before.resolved_by_id
        counts[item.kind] = counts.get(item.kind, 0) + 1
        rows.append(row)
    with transaction.atomic():
        run.rows.all().delete()  # a classification that died part way is redone whole
        ReconciliationRow.objects.bulk_create(rows)
        run.counts = {"matched": 0, **counts}
        run.totals = totals
        run.unresolved_count = sum(1 for r in rows if r.resolution == Resolution.OPEN)
        run.new_count = sum(1 for r in rows if r.is_new and r.resolution == Resolution.OPEN)
        run.status = ReconciliationRun.Status.COMPLETE
        run.finished_at = now
        run.duration_ms += int((time.monotonic() - started) * 1000)
        run.save()
        audit_record(
            at=now,
            action="reconciliation.completed",
            obj=run,
            actor_label=LABEL,
            reason=f"{run.day:%Y-%m-%d}: {run.unresolved_count} unresolved",
            data={"counts": run.counts},
        )


def _row(run: ReconciliationRun, item: _Found) -> ReconciliationRow:
    p, mine = item.payment, item.ours
    attempt = mine.attempt if mine else None
    return ReconciliationRow(
        run=run,
        kind=item.kind,
        imp_uid=(p.imp_uid if p is not None else (attempt.imp_uid or ""))[:32],
        merchant_uid=(p.merchant_uid if p is not None else attempt.merchant_uid)[:40],
        attempt=attempt if item.kind != Kind.MISSING_HERE else None,
        iamport_status=p.status if p is not None else "",
        iamport_amount=p.amount if p is not None else None,
        iamport_cancel_amount=p.cancel_amount if p is not None else None,
        our_status=attempt.status if attempt else "",
        our_amount=attempt.amount if attempt else None,
        our_refunded=mine.refunded if mine else None,
        detail=item.detail[:255],
    )


# ---------------------------------------------------------------------------------------------- operators


def reconciliation_notify(*, run: ReconciliationRun, now: dt.datetime) -> bool:
    """Email the operators that a run left differences for a person. Once per run."""
    recipients = list(settings.BILLING_OPERATOR_EMAILS) or [email for _name, email in settings.ADMINS]
    if not recipients or run.notified_at:
        return False
    context = {"run": run, "rows": run.rows.filter(resolution=Resolution.OPEN)[:50], "site": settings.SITE_URL}
    with override("ko"):
        subject = render_to_string("billing/email/reconciliation_subject.txt", context).strip()
        body = render_to_string("billing/email/reconciliation.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    run.notified_at = now
    run.save(update_fields=["notified_at"])
    return True


def _open_row(row_id: int) -> ReconciliationRow:
    row = ReconciliationRow.objects.select_for_update().filter(pk=row_id).first()
    if row is None:
        raise NotFoundError()
    if row.resolution != Resolution.OPEN:
        raise ReconciliationActionError(_("This difference has already been dealt with."))
    return row


def _after_row_change(row: ReconciliationRow) -> None:
    run = ReconciliationRun.objects.select_for_update().get(pk=row.run_id)
    run.unresolved_count = run.rows.filter(resolution=Resolution.OPEN).count()
    run.save(update_fields=["unresolved_count"])


def reconciliation_row_mark_investigated(*, row_id: int, note: str, now: dt.datetime, actor=None):
    """An operator looked into a difference and says what they found (the note is required)."""
    note = (note or "").strip()
    if not note:
        raise ReconciliationNoteRequiredError(field="note")
    with transaction.atomic():
        row = _open_row(row_id)
        row.resolution, row.note, row.resolved_at = Resolution.INVESTIGATED, note[:2000], now
        row.resolved_by = actor if getattr(actor, "is_authenticated", False) else None
        row.save(update_fields=["resolution", "note", "resolved_at", "resolved_by"])
        audit_record(
            at=now,
            action="reconciliation.investigated",
            obj=row,
            actor=actor,
            actor_label=LABEL,
            from_status="open",
            to_status="investigated",
            reason=note,
        )
        _after_row_change(row)
    return row


def reconciliation_row_refund_orphan(*, row_id: int, now: dt.datetime, actor=None, gateway=None):
    """Refund a payment Iamport holds under one of our merchant_uids and we have no charge for. The cancel
    carries `checksum` = the balance Iamport showed just now, so it refunds nothing twice."""
    with transaction.atomic():
        row = _open_row(row_id)
        if row.kind != Kind.MISSING_HERE or not row.imp_uid:
            raise ReconciliationActionError(_("Only a payment we have no record of can be refunded from here."))
    gateway = gateway or get_gateway()
    try:
        payment = gateway.get_payment(imp_uid=row.imp_uid)
        if PaymentAttempt.objects.filter(imp_uid=payment.imp_uid).exists():
            raise ReconciliationActionError(_("This payment is now recorded here; refund it from the payment."))
        balance = payment.cancellable_amount
        if balance <= 0:
            raise ReconciliationActionError(_("Iamport shows nothing left to refund on this payment."))
        after = gateway.cancel_payment(
            imp_uid=payment.imp_uid, amount=balance, checksum=balance, reason="대사: 주문 내역 없는 결제 환불"
        )
    except GatewayRejected as exc:
        raise ReconciliationActionError(
            _("Iamport refused the refund: %(message)s") % {"message": exc.message or exc.code}
        ) from exc
    except GatewayError as exc:
        raise GatewayUnavailableError() from exc
    with transaction.atomic():
        row = ReconciliationRow.objects.select_for_update().get(pk=row_id)
        row.resolution, row.resolved_at, row.iamport_cancel_amount = Resolution.REFUNDED, now, after.cancel_amount
        row.resolved_by = actor if getattr(actor, "is_authenticated", False) else None
        row.note = (row.note + "\n" if row.note else "") + f"refunded {balance:,} won (checksum {balance:,})"
        row.save(update_fields=["resolution", "resolved_at", "iamport_cancel_amount", "resolved_by", "note"])
        audit_record(
            at=now,
            action="reconciliation.orphan_refunded",
            obj=row,
            actor=actor,
            actor_label=LABEL,
            amount=balance,
            from_status="open",
            to_status="refunded",
            data={"imp_uid": row.imp_uid, "merchant_uid": row.merchant_uid, "checksum": balance},
        )
        _after_row_change(row)
    return row


# ---------------------------------------------------------------------------------------------- sweeps


def reconciliation_days_due(*, now: dt.datetime) -> list[dt.date]:
    """Days the beat should (re)run: yesterday (KST) until it has a complete run, and every unfinished run."""
    yesterday = kst_day(now) - dt.timedelta(days=1)
    days = set(
        ReconciliationRun.objects.exclude(status=ReconciliationRun.Status.COMPLETE).values_list("day", flat=True)
    )
    if not ReconciliationRun.objects.filter(day=yesterday, status=ReconciliationRun.Status.COMPLETE).exists():
        days.add(yesterday)
    return sorted(days)


def reconciliations_run_due(*, now: dt.datetime, gateway=None) -> dict[str, int]:
    """The beat's sweep: run what is due. Safe to re-run; a day someone else is running is skipped."""
    counts = {"complete": 0, "incomplete": 0, "unresolved": 0, "busy": 0}
    for day in reconciliation_days_due(now=now):
        try:
            run = reconciliation_run(day=day, now=now, gateway=gateway, trigger="beat")
        except ReconciliationInProgressError:
            counts["busy"] += 1
            continue
        counts[run.status if run.status == "complete" else "incomplete"] += 1
        counts["unresolved"] += run.unresolved_count
    return counts


def reconcile_every_day(start: dt.date, end: dt.date, *, now: dt.datetime | None = None, gateway=None) -> dict:
    """Reconcile every KST day from `start` to `end` inclusive (the chaos run's last step). Returns totals over
    the days: runs complete/incomplete, each difference class, and `unresolved` (what must be 0)."""
    from billing import clock

    now = now or clock.now()
    totals: dict[str, int] = defaultdict(int)
    day = start
    while day <= end:
        run = reconciliation_run(day=day, now=now, gateway=gateway, trigger="chaos", notify=False)
        totals[run.status] += 1
        totals["unresolved"] += run.unresolved_count
        for kind, n in run.counts.items():
            totals[kind] += n
        day += dt.timedelta(days=1)
    return dict(totals)
