"""A day of N payments reconciled (대사) against the Iamport sandbox; prints ONE JSON object.

    .venv/bin/python bench/reconcile.py --payments 100000 [--page-size 1000]

1. Seeds N succeeded attempts paid during one KST day (bulk ORM inserts: one customer, N invoices, N attempts)
   and the same N paid payments in the sandbox's ledger (one `payments/bulk` control call, in its own process).
2. Baseline: the same day paged through the app's gateway adapter (`list_payments`, every page), no database
   work: what Iamport alone costs.
3. The reconciliation run (`reconciliation_run`) under CaptureQueriesContext.

Keys: payments, seconds, payments_per_s, queries, queries_per_payment, baseline_seconds (paging alone),
overhead (seconds / baseline_seconds), clean (the run found nothing: it must), load (1-minute load average at
start and end), and the run's counts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
import zoneinfo
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import log, rnd

KST = zoneinfo.ZoneInfo("Asia/Seoul")
AMOUNT = 9_900
IMP_UID_BASE = 100_000_000_000  # the sandbox's sequential imp_uids: imp_{BASE + seq:012d}, seq from 1


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    return parser.parse_args(argv)


def seed(count: int, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """N paid attempts spread over `day` exactly as the sandbox spreads its N payments (same instants)."""
    from django.contrib.auth import get_user_model

    from billing.models import Customer, Invoice, PaymentAttempt

    start = dt.datetime.combine(day, dt.time.min, tzinfo=KST)
    end = start + dt.timedelta(days=1) - dt.timedelta(seconds=1)
    first, last = int(start.timestamp()), int(end.timestamp())
    user = get_user_model().objects.create(username="bench-reconcile")
    customer = Customer.objects.create(user=user, email="bench@example.com")
    batch = 5_000
    for offset in range(0, count, batch):
        size = min(batch, count - offset)
        invoices = Invoice.objects.bulk_create(
            [
                Invoice(
                    customer=customer,
                    kind=Invoice.Kind.RENEWAL,
                    number=f"B{offset + i:09d}",
                    status=Invoice.Status.PAID,
                    description="bench",
                    total=AMOUNT,
                    supply_amount=9_000,
                    vat_amount=900,
                    created_at=start,
                )
                for i in range(size)
            ]
        )
        attempts = []
        for i, invoice in enumerate(invoices):
            n = offset + i
            paid = dt.datetime.fromtimestamp(first + (last - first) * n // max(count - 1, 1), dt.UTC)
            attempts.append(
                PaymentAttempt(
                    invoice=invoice,
                    merchant_uid=f"kbbench_{n}",
                    customer_uid="bench-key",
                    amount=AMOUNT,
                    vat_amount=900,
                    status=PaymentAttempt.Status.SUCCEEDED,
                    imp_uid=f"imp_{IMP_UID_BASE + n + 1:012d}",
                    created_at=paid,
                    paid_at=paid,
                    settled_at=paid,
                )
            )
        PaymentAttempt.objects.bulk_create(attempts)
    return start, end


def baseline(gateway, start: dt.datetime, end: dt.datetime, page_size: int) -> tuple[float, int]:
    began, page, seen = time.perf_counter(), 1, 0
    while True:
        result = gateway.list_payments(from_=start, to=end, page=page, limit=page_size, sorting="started")
        seen += len(result.items)
        if not result.next:
            return time.perf_counter() - began, seen
        page = result.next


def main(argv=None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    sandbox = common.SandboxProcess(workdir)
    common.configure(
        queue_prefix="bench-reconcile",
        db_suffix="_reconcile",
        extra_env={
            "IAMPORT_API_URL": sandbox.url,
            "IAMPORT_SANDBOX_URL": sandbox.url,
            "BILLING_RECONCILE_PAGE_SIZE": str(args.page_size),
        },
    )
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.services.gateway import get_gateway
    from billing.services.reconciliation import reconciliation_run

    settings.BILLING_RECONCILE_PAGE_SIZE = args.page_size
    common.truncate_app_tables()
    sandbox.start()
    try:
        day = dt.date(2027, 1, 31)
        seed_began = time.perf_counter()
        start, end = seed(args.payments, day)
        sandbox.control.bulk_payments(
            prefix="kbbench_", count=args.payments, amount=AMOUNT, from_=int(start.timestamp()), to=int(end.timestamp())
        )
        seed_s = time.perf_counter() - seed_began
        log(f"seeded {args.payments} payments on both sides in {seed_s:.1f}s")
        gateway = get_gateway()
        baseline_s, listed = baseline(gateway, start, end, args.page_size)
        log(f"baseline: paged {listed} payments in {baseline_s:.2f}s")
        now = end + dt.timedelta(hours=1)
        with CaptureQueriesContext(connection) as queries:
            began = time.perf_counter()
            run = reconciliation_run(day=day, now=now, gateway=gateway, trigger="bench", notify=False)
            seconds = time.perf_counter() - began
        log(f"reconciled in {seconds:.2f}s with {len(queries)} queries: {run.status}, {run.counts}")
    finally:
        sandbox.stop()
    common.emit(
        {
            "payments": args.payments,
            "page_size": args.page_size,
            "seconds": rnd(seconds, 2),
            "payments_per_s": rnd(args.payments / seconds, 0),
            "queries": len(queries),
            "queries_per_payment": rnd(len(queries) / args.payments, 5),
            "baseline_seconds": rnd(baseline_s, 2),
            "baseline": "the same day paged through the gateway adapter, no database work",
            "overhead": rnd(seconds / baseline_s, 2),
            "clean": run.is_clean,
            "status": run.status,
            "counts": run.counts,
            "pages": run.pages_fetched,
            "database": common.database_label(),
            "load": {"start": rnd(load_start, 2), "end": rnd(os.getloadavg()[0], 2), "cpus": os.cpu_count()},
            "seed_s": rnd(seed_s, 1),
        }
    )
    return 0 if run.is_clean else 1


if __name__ == "__main__":
    sys.exit(main())
