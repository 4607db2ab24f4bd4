"""Fixtures of the subscription service tests: plans, subscribing through the real services, a billing sweep that
runs after-commit work as production does, and the two billing strategies (a module opts in with
`pytest.mark.usefixtures("strategy", "_after_commit_runs")`). Plain helpers live in lifecycle_helpers.py."""

from __future__ import annotations

import pytest

from subscriptions.services.lifecycle import (
    subscription_create,
)
from subscriptions.services.sweep import billing_run
from tests.factories import (
    GOOD_CARD,
    PlanFactory,
    make_customer,
    register_card,
)
from tests.subscriptions.lifecycle_helpers import T0, committed, deliver_webhooks


@pytest.fixture
def plan():
    return PlanFactory(code="basic", amount=9_900)


@pytest.fixture
def pro():
    return PlanFactory(code="pro", amount=29_900)


@pytest.fixture(params=["again", "schedule"])
def strategy(request, settings):
    """Every test here runs under both billing strategies: our sweeps charging with `again`, and Iamport
    executing pre-registered schedules and telling us by webhook."""
    settings.BILLING_STRATEGY = request.param
    if request.param == "schedule":
        settings.SITE_URL = "http://127.0.0.1:9"  # a notice_url is sent; the tests deliver the webhooks
    return request.param


@pytest.fixture
def subscribe(django_capture_on_commit_callbacks):
    def subscribed(gateway, plan, *, card=GOOD_CARD, now=T0):
        customer = make_customer()
        with django_capture_on_commit_callbacks(execute=True):
            register_card(customer, gateway, now=now, card=card)
            return subscription_create(customer=customer, plan=plan, now=now, gateway=gateway)

    return subscribed


@pytest.fixture
def _after_commit_runs(django_capture_on_commit_callbacks):
    """Subscriber actions commit in production, and their after-commit work (re-scheduling) runs then."""
    committed.capture = django_capture_on_commit_callbacks


@pytest.fixture
def run(django_capture_on_commit_callbacks, strategy, sandbox):
    """One billing sweep, with after-commit work (emails, card retries, schedules) executed as in production."""
    seen: set = set()

    def sweep(gateway, now):
        with django_capture_on_commit_callbacks(execute=True):
            if strategy == "schedule":
                if int(now.timestamp()) > sandbox.now():  # its clock only moves forward (and runs on by itself)
                    sandbox.set_now(int(now.timestamp()))  # executes the schedules that fell due
                deliver_webhooks(sandbox, gateway, now, seen)
            return billing_run(now=now, gateway=gateway)

    return sweep
