"""Web latency under load: the subscription page, the subscriptions API, the webhook endpoint; prints ONE JSON.

    .venv/bin/python bench/web.py [--clients 50] [--duration 15] [--gunicorn-workers 2] [--threads 25]

Seeds --users subscribers (each: a card, an active subscription, --history paid monthly invoices), starts
gunicorn (gthread workers) as a subprocess on a free port with bench.settings, and drives it with `wrk`
(bench/wrk_report.lua: every request as one of the users, p50/p95/p99) — or, without wrk, a thread pool of
`requests` sessions — for --duration seconds per endpoint, --clients connections:
- GET /account/            (session cookie)       target: p95 under load, reported against the issue's figures
- GET /api/subscriptions/  (Authorization: Token) same
- POST /iamport/webhook    (store raw + enqueue after commit; no worker consumes the queue, purged afterwards)
Queries per request are counted in-process with Django's test client under CaptureQueriesContext.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import log, percentile, rnd

LUA = Path(__file__).resolve().parent / "wrk_report.lua"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50, help="concurrent connections")
    parser.add_argument("--duration", type=int, default=15, help="seconds per endpoint")
    parser.add_argument("--users", type=int, default=200, help="subscribers the requests rotate through")
    parser.add_argument("--history", type=int, default=12, help="paid invoices per subscriber")
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=25, help="threads per gunicorn worker")
    parser.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    return parser.parse_args(argv)


def seed(users: int, history: int, now: dt.datetime):
    """Subscribers with a card, an active monthly subscription and `history` paid invoices; returns them."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from billing.models import BillingKey, Customer, Invoice, PaymentAttempt
    from subscriptions import periods
    from subscriptions.models import Plan, Subscription, SubscriptionInvoice

    User = get_user_model()
    plan = Plan.objects.create(code="web-monthly", name_ko="웹 월간", name_en="Web monthly", amount=9_900)
    anchor = now - dt.timedelta(days=31 * history - 5)
    index = periods.period_index_at(anchor, interval="month", count=1, moment=now)
    start, end = periods.period_bounds(anchor, interval="month", count=1, index=index)
    people = User.objects.bulk_create(
        [User(username=f"web{i}", email=f"web{i}@example.com", password="!") for i in range(users)]  # noqa: S106
    )
    customers = Customer.objects.bulk_create([Customer(user=u, email=u.email, name=u.username) for u in people])
    keys = BillingKey.objects.bulk_create(
        [
            BillingKey(
                customer=c,
                customer_uid=f"kbweb{i}",
                is_default=True,
                card_name="신한카드",
                card_number_masked="4242-42**-****-4242",
                sandbox=True,
                created_at=anchor,
            )
            for i, c in enumerate(customers)
        ]
    )
    subs = Subscription.objects.bulk_create(
        [
            Subscription(
                customer=c,
                plan=plan,
                billing_key=k,
                status="active",
                billing_anchor=anchor,
                current_period_index=index,
                current_period_start=start,
                current_period_end=end,
                next_event_at=end,
                created_at=anchor,
            )
            for c, k in zip(customers, keys, strict=True)
        ]
    )
    invoices, links, attempts = [], [], []
    for c in customers:
        for p in range(history):
            p_start, p_end = periods.period_bounds(anchor, interval="month", count=1, index=p)
            invoices.append(
                Invoice(customer=c, kind="renewal" if p else "subscription_create", number=f"W{c.pk}-{p}",
                        status="paid", description="웹 월간", period_start=p_start, period_end=p_end, total=9_900,
                        supply_amount=9_000, vat_amount=900, attempt_count=1, created_at=p_start,
                        finalized_at=p_start, paid_at=p_start)
            )  # fmt: skip
    invoices = Invoice.objects.bulk_create(invoices, batch_size=5000)
    for i, invoice in enumerate(invoices):
        sub = subs[i // history]
        p = i % history
        links.append(
            SubscriptionInvoice(subscription=sub, invoice=invoice, kind="renewal" if p else "first", plan=plan,
                                period_index=p, period_start=invoice.period_start, period_end=invoice.period_end,
                                created_at=invoice.created_at)
        )  # fmt: skip
        attempts.append(
            PaymentAttempt(invoice=invoice, merchant_uid=f"kbweb_{invoice.pk}", customer_uid=f"kbweb{i // history}",
                           amount=9_900, vat_amount=900, status="succeeded", imp_uid=f"imp_web{invoice.pk}",
                           card_name="신한카드", created_at=invoice.created_at, settled_at=invoice.created_at,
                           paid_at=invoice.created_at)
        )  # fmt: skip
    SubscriptionInvoice.objects.bulk_create(links, batch_size=5000)
    PaymentAttempt.objects.bulk_create(attempts, batch_size=5000)
    tokens = Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in people])
    return people, tokens


def session_cookies(people) -> list[str]:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    cookies = []
    for user in people:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        cookies.append(session.session_key)
    return cookies


def queries_per_request(user, token: str) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    result = {}
    client = Client()
    client.force_login(user)
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    body = json.dumps({"imp_uid": "imp_999999999999", "merchant_uid": "kbwh_q", "status": "paid"})
    calls = {
        "account": lambda: client.get("/account/"),
        "api_subscriptions": lambda: api.get("/api/subscriptions/"),
        "webhook": lambda: Client().post("/iamport/webhook", body, content_type="application/json"),
    }
    for name, call in calls.items():
        call()  # warm
        with CaptureQueriesContext(connection) as captured:
            response = call()
        result[name] = {"status": response.status_code, "queries": len(captured.captured_queries)}
    return result


def start_gunicorn(args, env: dict, workdir: Path) -> tuple[subprocess.Popen, str]:
    port = common.free_port()
    log_file = open(workdir / "gunicorn.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.gunicorn_workers), "--worker-class", "gthread", "--threads", str(args.threads),
         "--log-level", "warning", "--backlog", "2048"],
        cwd=common.ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
    )  # fmt: skip
    process.log_file = log_file
    base = f"http://127.0.0.1:{port}"
    import requests

    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(base + "/healthz", timeout=2)
            return process, base
        except requests.RequestException:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(
                    "gunicorn did not start:\n" + (workdir / "gunicorn.log").read_text()[-2000:]
                ) from None
            time.sleep(0.1)


def check(base: str, name: str, header: str | None) -> None:
    """One request by hand: the load run only counts statuses, so make sure 200 means the real page."""
    import requests

    headers = dict([header.split(": ", 1)]) if header else {}
    if name == "webhook":
        response = requests.post(
            base + "/iamport/webhook", json={"imp_uid": "imp_1", "merchant_uid": "x", "status": "paid"}, timeout=10
        )
    else:
        path = "/account/" if name == "account" else "/api/subscriptions/"
        response = requests.get(base + path, headers=headers, allow_redirects=False, timeout=10)
    if response.status_code != 200:
        raise RuntimeError(f"{name}: HTTP {response.status_code} before the load run: {response.text[:300]}")
    if name == "api_subscriptions" and not response.json().get("results"):
        raise RuntimeError("the API answered no subscription for a seeded user")


def drive_wrk(base: str, path: str, args, workdir: Path, header_lines: list[str], *, webhook=False) -> dict:
    headers_file = workdir / "headers.txt"
    headers_file.write_text("\n".join(header_lines))
    env = {
        **os.environ,
        "BENCH_WRK_HEADERS": str(headers_file) if header_lines else "",
        "BENCH_WRK_METHOD": "POST" if webhook else "GET",
        "BENCH_WRK_EXPECT": "200",
        "BENCH_WRK_WEBHOOK": "1" if webhook else "0",
    }
    threads = min(2, args.clients)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(args.clients), "-d", f"{max(int(args.duration), 1)}s", "--timeout", "30s",
         "-s", str(LUA), base + path],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stdout[-1000:]} {out.stderr[-1000:]}")
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)


def drive_python(base: str, path: str, args, header_lines: list[str], *, webhook=False) -> dict:
    """A fallback when wrk is not installed: one requests.Session per client thread."""
    import requests

    latencies, unexpected, errors = [], [0], [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + args.duration

    def client(index: int) -> None:
        session = requests.Session()
        local, n = [], 0
        while time.perf_counter() < stop_at:
            n += 1
            header = header_lines[(index + n) % len(header_lines)] if header_lines else None
            headers = dict([header.split(": ", 1)]) if header else {}
            started = time.perf_counter()
            try:
                if webhook:
                    body = {"imp_uid": f"imp_{index:04d}{n:08d}", "merchant_uid": f"kbwh_{index}_{n}", "status": "paid"}
                    response = session.post(base + path, json=body, timeout=30)
                else:
                    response = session.get(base + path, headers=headers, allow_redirects=False, timeout=30)
                local.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    with lock:
                        unexpected[0] += 1
            except requests.RequestException:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(local)

    started = time.perf_counter()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    duration = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "duration_s": rnd(duration, 3),
        "rps": rnd(len(latencies) / duration),
        "p50_ms": rnd(percentile(latencies, 50), 2),
        "p95_ms": rnd(percentile(latencies, 95), 2),
        "p99_ms": rnd(percentile(latencies, 99), 2),
        "max_ms": rnd(max(latencies), 2) if latencies else None,
        "unexpected_status": unexpected[0],
        "socket_errors": errors[0],
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    env = common.configure(queue_prefix="bench-web", db_suffix="_web", extra_env={"LOG_LEVEL": "WARNING"})
    queue = env["CELERY_TASK_DEFAULT_QUEUE"]
    driver = args.driver if args.driver != "auto" else ("wrk" if shutil.which("wrk") else "python")
    workdir = Path(tempfile.mkdtemp(prefix="kbilling-web-"))

    from django.utils import timezone

    needed = args.gunicorn_workers * args.threads + 3
    if needed > common.connections_available():
        raise SystemExit(f"gunicorn needs ~{needed} database connections (one per thread): lower --threads")

    common.truncate_app_tables()
    started = time.perf_counter()
    people, tokens = seed(args.users, args.history, timezone.now())
    cookies = session_cookies(people)
    seed_s = time.perf_counter() - started
    log(f"seeded {args.users} subscribers x {args.history} invoices in {seed_s:.1f}s; driver {driver}")
    queries = queries_per_request(people[0], tokens[0].key)

    process, base = start_gunicorn(args, env, workdir)
    endpoints = {
        "account": ("/account/", [f"Cookie: sessionid={c}" for c in cookies], False),
        "api_subscriptions": ("/api/subscriptions/", [f"Authorization: Token {t.key}" for t in tokens], False),
        "webhook": ("/iamport/webhook", [], True),
    }
    results = {}
    try:
        for name, (path, header_lines, webhook) in endpoints.items():
            check(base, name, header_lines[0] if header_lines else None)
            meter = common.CpuMeter({"gunicorn": lambda: _tree(process.pid), "postgres": common.database_server_pids})
            meter.start()
            log(f"{name}: {args.clients} clients for {args.duration}s")
            if driver == "wrk":
                figures = drive_wrk(base, path, args, workdir, header_lines, webhook=webhook)
            else:
                figures = drive_python(base, path, args, header_lines, webhook=webhook)
            cpu = meter.stop()
            figures["cpu_ms_per_request"] = {
                k: rnd(v * 1000 / max(figures["requests"], 1), 2) for k, v in cpu.items() if k in ("gunicorn",
                                                                                                   "postgres", "other")
            }  # fmt: skip
            figures["box_utilisation"] = rnd(cpu["box_busy"] / cpu["box_capacity"], 2) if cpu["box_capacity"] else None
            figures["queries_per_request"] = queries[name]["queries"]
            results[name] = figures
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.log_file.close()
        common.purge_queue(queue)

    from billing.models import WebhookEvent

    results["webhook"]["events_stored"] = WebhookEvent.objects.count()
    shutil.rmtree(workdir, ignore_errors=True)
    return {
        **results,
        "params": {
            "clients": args.clients,
            "duration_s": args.duration,
            "users": args.users,
            "history": args.history,
            "gunicorn": f"{args.gunicorn_workers} workers x {args.threads} threads (gthread)",
            "driver": driver,
            "database": common.database_label(),
            "loadavg_at_end": os.getloadavg()[0],
        },
        "timings": {"seed_s": rnd(seed_s, 1)},
    }


def _tree(pid: int) -> list[int]:
    """A process and its children (gunicorn's workers)."""
    pids = [pid]
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            pids.extend(_tree(int(child)))
    except OSError:
        pass
    return pids


if __name__ == "__main__":
    common.emit(main())
