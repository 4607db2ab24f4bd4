"""Fault-injection fixtures: subscribers on the real sandbox, the operator's invariants, threads with their own
database connections, and the webhook plumbing (a live server, an optional gate in front of it)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from config.celery import app as celery_app
from subscriptions.models import Subscription
from subscriptions.services.lifecycle import subscription_create
from tests.factories import GOOD_CARD, PlanFactory, make_customer, register_card
from tests.reliability.helpers import WebhookGate


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def plan():
    return PlanFactory(code="rel-weekly", amount=9_900, interval="week")


@pytest.fixture
def subscribed(gateway, plan):
    """A paid, active subscription (first period charged through the sandbox) for a new customer."""

    def make(*, now: dt.datetime, card: str = GOOD_CARD) -> Subscription:
        customer = make_customer()
        register_card(customer, gateway, now=now, card=card)
        subscription = subscription_create(customer=customer, plan=plan, now=now, gateway=gateway)
        assert subscription.status == Subscription.Status.ACTIVE
        return subscription

    return make


def run_in_threads(*calls, timeout: float = 60.0) -> list:
    """Run each zero-argument callable in its own thread, released together by a barrier. Each thread gets
    its own database connection (closed at the end). Returns the results, re-raising the first error."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def body(index, call):
        try:
            barrier.wait(timeout)
            results[index] = call()
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread is still running"
    if errors:
        raise errors[0]
    return results


@pytest.fixture
def webhooks_live(live_server, settings, sandbox):
    """notice_url points at a live Django server; webhook tasks run inside the request (eager Celery)."""
    previous = celery_app.conf.task_always_eager  # read before the setting changes: Celery loads it lazily
    settings.SITE_URL = live_server.url
    settings.CELERY_TASK_ALWAYS_EAGER = True
    celery_app.conf.task_always_eager = True
    yield live_server
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def webhook_gate(webhooks_live, settings):
    """A gate between the sandbox and the live server: deliveries can be held and released in any order."""
    gate = WebhookGate(target=webhooks_live.url)
    settings.SITE_URL = gate.url
    yield gate
    gate.close()
