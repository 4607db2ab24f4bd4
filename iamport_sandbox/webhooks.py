"""Webhook ("Notification") delivery: an outbox of deliveries, worked off by background threads.

Iamport V1 posts `{imp_uid, merchant_uid, status[, cancellation_id]}` to the payment's notice_url (or the
console URL) with a 10 s connect / 30 s read timeout, once, unsigned. Every delivery is recorded with the
receiver's HTTP status or the transport error.

The outbox is a priority queue ordered by (not_before, seq). `_plan` turns one notice into the deliveries
to make; it is the single place a later feature can duplicate a delivery, delay it or reorder it.
"""

import heapq
import http.client
import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from iamport_sandbox.store import Store

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 30


@dataclass(frozen=True)
class Notice:
    """A webhook the ledger wants sent; `notice_url` None means "the console (default) URL"."""

    notice_url: str | list | None
    body: dict
    trigger: str
    # V2 only: (delivery seq, exact body text) -> extra headers (the Standard Webhooks signature), computed at
    # send time so the timestamp is the sender's wall clock, as a verifier expects.
    signer: Callable[[int, str], dict] | None = None


@dataclass(order=True)
class Delivery:
    not_before: float
    seq: int
    url: str = field(compare=False)
    body: dict = field(compare=False)
    content_type: str = field(compare=False)
    trigger: str = field(compare=False)
    generation: int = field(compare=False)
    signer: Callable[[int, str], dict] | None = field(compare=False, default=None)


class WebhookOutbox:
    def __init__(self, store: Store, clock, *, default_notice_url=None, workers: int = 4):
        self._store = store
        self._clock = clock
        self.default_notice_url = default_notice_url
        self.content_type = "application/json"
        self._queue: list[Delivery] = []
        self._cond = threading.Condition()
        self._generation = 0
        self._stopping = False
        self._workers = [
            threading.Thread(target=self._work, name=f"sandbox-webhook-{i}", daemon=True) for i in range(workers)
        ]

    def start(self) -> None:
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._cond.notify_all()

    def reset(self) -> None:
        with self._cond:
            self._generation += 1
            self._queue.clear()

    # -- enqueue --------------------------------------------------------------------------------------

    def submit(self, notices: list[Notice], *, synchronous: bool = False) -> list[dict]:
        """Record and queue the deliveries; with `synchronous` deliver them in this thread, in order."""
        deliveries = [delivery for notice in notices for delivery in self._plan(notice)]
        if synchronous:
            return [self._deliver(delivery) for delivery in deliveries]
        with self._cond:
            for delivery in deliveries:
                heapq.heappush(self._queue, delivery)
            self._cond.notify_all()
        return [self._record_of(delivery) for delivery in deliveries]

    def _targets(self, notice: Notice) -> list[str]:
        url = notice.notice_url or self.default_notice_url
        if not url:
            return []
        urls = url if isinstance(url, list) else [url]
        return [u for u in urls if isinstance(u, str) and u]

    def _plan(self, notice: Notice) -> list[Delivery]:
        """One delivery per target URL, sent as soon as possible (hook point for duplicates/reordering)."""
        deliveries = []
        generation = self._generation
        for url in self._targets(notice):
            record = {
                "url": url,
                "body": notice.body,
                "content_type": self.content_type,
                "trigger": notice.trigger,
                "status": None,
                "error": None,
                "state": "pending",
                "enqueued_at": self._clock.now(),
                "delivered_at": 0,
            }
            with self._store.tx() as db:
                cursor = db.execute("INSERT INTO webhooks (data) VALUES (?)", (json.dumps(record),))
                seq = cursor.lastrowid
            deliveries.append(
                Delivery(
                    time.monotonic(),
                    seq,
                    url,
                    notice.body,
                    "application/json" if notice.signer else self.content_type,
                    notice.trigger,
                    generation,
                    notice.signer,
                )
            )
        return deliveries

    # -- deliver --------------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._queue:
                        wait = self._queue[0].not_before - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopping:
                    return
                delivery = heapq.heappop(self._queue)
            try:
                self._deliver(delivery)
            except Exception:
                if self._stopping:  # the store may already be closed
                    return
                traceback.print_exc()

    def _deliver(self, delivery: Delivery) -> dict:
        signer = delivery.signer
        status, error = _post(
            delivery.url,
            delivery.body,
            delivery.content_type,
            (lambda text: signer(delivery.seq, text)) if signer else None,
        )
        return self._finish(delivery, status, error)

    def _finish(self, delivery: Delivery, status: int | None, error: str | None) -> dict:
        # Read the clock before taking the store lock: the clock persists itself under its own lock, so
        # "store lock, then clock lock" here could deadlock with a concurrent clock move.
        delivered_at = self._clock.now()
        with self._store.tx() as db:
            if delivery.generation != self._generation:
                return {}
            row = db.execute("SELECT data FROM webhooks WHERE seq = ?", (delivery.seq,)).fetchone()
            if row is None:
                return {}
            record = json.loads(row["data"])
            record.update(
                status=status,
                error=error,
                state="delivered" if error is None and status is not None and 200 <= status < 300 else "failed",
                delivered_at=delivered_at,
            )
            db.execute("UPDATE webhooks SET data = ? WHERE seq = ?", (json.dumps(record), delivery.seq))
        return {"seq": delivery.seq, **record}

    def _record_of(self, delivery: Delivery) -> dict:
        with self._store.read() as db:
            row = db.execute("SELECT data FROM webhooks WHERE seq = ?", (delivery.seq,)).fetchone()
        return {"seq": delivery.seq, **json.loads(row["data"])} if row else {}

    def records(self) -> list[dict]:
        with self._store.read() as db:
            rows = db.execute("SELECT seq, data FROM webhooks ORDER BY seq").fetchall()
        return [{"seq": row["seq"], **json.loads(row["data"])} for row in rows]

    def clear(self) -> None:
        with self._store.tx() as db:
            db.execute("DELETE FROM webhooks")


def _post(url: str, body: dict, content_type: str, sign=None) -> tuple[int | None, str | None]:
    """POST once. http.client rather than urllib so connect and read get their own timeouts."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return None, f"invalid notice_url {url!r}"
    if content_type == "application/x-www-form-urlencoded":
        payload = urlencode(body).encode()
    else:
        payload = json.dumps(body, ensure_ascii=False).encode()
    extra_headers = sign(payload.decode()) if sign else {}
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT_S)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.connect()
        connection.sock.settimeout(READ_TIMEOUT_S)
        connection.request(
            "POST",
            path,
            body=payload,
            headers={
                "Content-Type": f"{content_type}; charset=utf-8",
                "User-Agent": "iamport-sandbox-webhook",
                **extra_headers,
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status, None
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()
