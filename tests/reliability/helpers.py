"""Helpers for the fault-injection tests: what the sandbox saw, the operator's invariants, a webhook gate and
real Celery worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.db import connection

from billing.models import Invoice, PaymentAttempt

ROOT = Path(__file__).resolve().parents[2]
UNSETTLED = (PaymentAttempt.Status.PENDING, PaymentAttempt.Status.UNKNOWN)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# --- what the sandbox saw -------------------------------------------------------------------------------


def again_requests(sandbox, merchant_uid: str | None = None) -> list[dict]:
    """`POST /subscribe/payments/again` requests the sandbox received (401s carry no merchant_uid)."""
    return [
        r
        for r in sandbox.requests_log()
        if r.get("endpoint") == "again" and (merchant_uid is None or r.get("merchant_uid") == merchant_uid)
    ]


def charged_payments(sandbox) -> list[dict]:
    """Money that moved at Iamport: paid (or later refunded) charges, billing-key issuances excluded."""
    return [
        p for p in sandbox.payments() if p["status"] in ("paid", "cancelled") and p.get("customer_uid_usage") != "issue"
    ]


def wait_for_sandbox_payment(sandbox, merchant_uid: str, timeout: float = 10.0) -> dict:
    """Wait until a request the client gave up on has been applied at the sandbox."""
    found: list[dict] = []

    def applied() -> bool:
        found[:] = [p for p in sandbox.payments() if p["merchant_uid"] == merchant_uid]
        return bool(found)

    assert wait_until(applied, timeout), f"the sandbox never applied {merchant_uid}"
    return found[0]


# --- the operator's invariants --------------------------------------------------------------------------


def assert_books_balance(sandbox) -> None:
    """After settlement: every charge at Iamport maps to exactly one SUCCEEDED attempt of ours, no invoice
    was charged twice, nothing is left PENDING/UNKNOWN, and every paid invoice has exactly one success."""
    charged = charged_payments(sandbox)
    attempts = {a.merchant_uid: a for a in PaymentAttempt.objects.all()}
    problems = []
    for payment in charged:
        attempt = attempts.get(payment["merchant_uid"])
        if attempt is None:
            problems.append(f"paid but unrecorded: {payment['merchant_uid']} ({payment['imp_uid']})")
        elif attempt.status != PaymentAttempt.Status.SUCCEEDED or attempt.imp_uid != payment["imp_uid"]:
            problems.append(f"paid at Iamport, {attempt.status} here: {attempt.merchant_uid}")
    per_merchant_uid = Counter(p["merchant_uid"] for p in charged)
    problems += [f"{uid} charged {n} times" for uid, n in per_merchant_uid.items() if n > 1]
    per_invoice = Counter(attempts[p["merchant_uid"]].invoice_id for p in charged if p["merchant_uid"] in attempts)
    problems += [f"invoice {inv} charged {n} times" for inv, n in per_invoice.items() if n > 1]
    charged_uids = set(per_merchant_uid)
    for attempt in attempts.values():
        if attempt.status in UNSETTLED:
            problems.append(f"left {attempt.status}: {attempt.merchant_uid} {attempt.flagged_reason}")
        if attempt.status == PaymentAttempt.Status.SUCCEEDED and attempt.merchant_uid not in charged_uids:
            problems.append(f"recorded paid, never charged: {attempt.merchant_uid}")
    for invoice in Invoice.objects.filter(status=Invoice.Status.PAID, total__gt=0):
        successes = invoice.attempts.filter(status=PaymentAttempt.Status.SUCCEEDED).count()
        if successes != 1:
            problems.append(f"paid invoice {invoice.pk} has {successes} successful attempts")
    assert not problems, problems


# --- a gate between the sandbox's webhook deliveries and the live server --------------------------------


class WebhookGate:
    """Forwards webhook POSTs to `target`; a delivery whose body matches a held rule waits for `release()`.
    Records the order in which deliveries reached the app."""

    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.forwarded: list[dict] = []
        self._hold_statuses: set[str] = set()
        self._released = threading.Event()
        self._lock = threading.Lock()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"{}")
                if body.get("status") in gate._hold_statuses:
                    gate._released.wait(30)
                request = urllib.request.Request(
                    gate.target + self.path,
                    data=raw,
                    method="POST",
                    headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                )
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, answer = response.status, response.read()
                with gate._lock:
                    gate.forwarded.append(body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def hold(self, *statuses: str) -> None:
        self._hold_statuses = set(statuses)

    def release(self) -> None:
        self._released.set()

    def statuses(self, merchant_uid: str) -> list[str]:
        """The statuses of the deliveries for `merchant_uid`, in the order the app received them."""
        with self._lock:
            return [body.get("status") for body in self.forwarded if body.get("merchant_uid") == merchant_uid]

    def close(self) -> None:
        self._released.set()
        self._httpd.shutdown()
        self._httpd.server_close()


# --- real Celery workers -------------------------------------------------------------------------------


def start_worker(queue: str, sandbox_url: str, log_path: Path, *, concurrency: int = 8) -> subprocess.Popen:
    """A Celery worker process (threads pool) on the test database, the given queue and the sandbox, logging
    to `log_path` (read it with `worker_log`)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_NAME": connection.settings_dict["NAME"],
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "IAMPORT_API_URL": sandbox_url,
        "IAMPORT_SANDBOX_URL": sandbox_url,
        "SITE_URL": "",
    }
    args = ["worker", "--pool", "threads", "--concurrency", str(concurrency), "-Q", queue]
    args += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"]
    with open(log_path, "w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )


def worker_log(log_path: Path) -> str:
    return log_path.read_text(errors="replace") if log_path.exists() else ""


def tasks_done(log_path: Path, task_name: str) -> int:
    """How many runs of `task_name` the worker has finished (logged as succeeded)."""
    return sum(1 for line in worker_log(log_path).splitlines() if f"{task_name}[" in line and " succeeded in " in line)


def stop_worker(process: subprocess.Popen, *, kill: bool = False) -> None:
    """Stop a worker this test started: SIGKILL when `kill` (or when it does not stop), else SIGTERM."""
    if process.poll() is None:
        if kill:
            process.kill()
        else:
            process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- subscriptions ------------------------------------------------------------------------------------


def renewal_invoice(subscription) -> Invoice:
    return Invoice.objects.get(subscription_link__subscription=subscription, kind=Invoice.Kind.RENEWAL)


def attempts_of(invoice: Invoice) -> list[PaymentAttempt]:
    return list(invoice.attempts.order_by("created_at", "id"))
