"""Outgoing events to a real HTTP receiver: signed (verified with the standardwebhooks library), in the feed's
order, at least once, and nothing lost while the receiver is down."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from billing import clock
from billing.models import Event, EventDelivery
from billing.services.customers import customer_create
from billing.services.events import endpoint_create, endpoint_deliver, event_payload, events_sequence

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver:
    """A merchant's endpoint on a free loopback port that verifies each delivery as a merchant would."""

    def __init__(self):
        self.up = True
        self.received: list[dict] = []
        self.secret = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not receiver.up:
                    self.send_response(503)
                    self.end_headers()
                    return
                payload = Webhook(receiver.secret).verify(body, dict(self.headers))  # raises when forged
                receiver.received.append({"webhook-id": self.headers["webhook-id"], **payload})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _customers(n: int, prefix: str):
    for i in range(n):
        customer_create(external_id=f"{prefix}-{i}", now=clock.now())


def test_events_arrive_signed_and_in_feed_order_when_the_receiver_is_up(receiver):
    endpoint = endpoint_create(url=receiver.url, now=clock.now())
    receiver.secret = endpoint.secret
    _customers(3, "up")
    events_sequence(now=clock.now())

    result = endpoint_deliver(endpoint_id=endpoint.pk, now_fn=clock.now)

    assert result["delivered"] == 3
    feed = [event_payload(e) for e in Event.objects.select_related("customer").order_by("sequence")]
    assert [r["id"] for r in receiver.received] == [e["id"] for e in feed]
    assert all(r["webhook-id"] == r["id"] for r in receiver.received)
    assert [r["customer"]["external_id"] for r in receiver.received] == ["up-0", "up-1", "up-2"]


def test_receiver_down_gets_every_event_afterwards_exactly_as_the_feed_lists_them(receiver):
    endpoint = endpoint_create(url=receiver.url, now=clock.now())
    receiver.secret = endpoint.secret
    receiver.up = False
    _customers(4, "down")
    events_sequence(now=clock.now())

    down = endpoint_deliver(endpoint_id=endpoint.pk, now_fn=clock.now)
    assert down["delivered"] == 0 and down["next_retry_at"] is not None
    assert EventDelivery.objects.filter(status="pending", attempts__gte=1).count() == 4
    receiver.up = True
    EventDelivery.objects.update(next_attempt_at=clock.now())  # the backoff has passed

    up = endpoint_deliver(endpoint_id=endpoint.pk, now_fn=clock.now)

    assert up["delivered"] == 4
    feed = [f"evt_{pk}" for pk in Event.objects.order_by("sequence").values_list("pk", flat=True)]
    assert [r["id"] for r in receiver.received] == feed
    assert set(EventDelivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_outbox_row_commits_with_the_change_when_delivery_never_ran(db):
    # The process dies after the commit and before any dispatch: the event is in the outbox, and sequencing
    # (the beat sweep) picks it up.
    customer = customer_create(external_id="crash", now=clock.now())

    event = Event.objects.get(type="customer.created", customer=customer)
    assert event.sequence is None
    assert events_sequence(now=clock.now()) >= 1
    event.refresh_from_db()
    assert event.sequence is not None
    assert json.loads(json.dumps(event_payload(event)))["customer"]["external_id"] == "crash"
