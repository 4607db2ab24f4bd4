"""API test fixtures: a recording API client (so a test can prove every schema operation is exercised),
subscribers built through the real services, and throttle counters reset per test."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from rest_framework.test import APIClient

from billing import clock
from subscriptions.models import Plan
from subscriptions.services.lifecycle import subscription_create
from tests.factories import GOOD_CARD, PlanFactory, UserFactory, make_customer, register_card

API_TESTS = Path(__file__).parent
COVERAGE_TEST = "test_every_schema_operation_is_requested_when_the_whole_api_suite_runs"

# (METHOD, path) of every request any API test made in this process.
REQUESTED: set[tuple[str, str]] = set()
# Set when some tests/api test was deselected (-k, -m, --deselect): the coverage check then cannot hold.
PARTIAL_RUN = SimpleNamespace(deselected=False)


class RecordingAPIClient(APIClient):
    def request(self, **kwargs):
        REQUESTED.add((kwargs["REQUEST_METHOD"].upper(), kwargs["PATH_INFO"]))
        return super().request(**kwargs)


def pytest_collection_modifyitems(session, config, items):
    """The schema coverage test reads what the other tests requested, so it runs last."""
    last = [item for item in items if item.name == COVERAGE_TEST]
    items[:] = [item for item in items if item.name != COVERAGE_TEST] + last


def pytest_deselected(items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("gateway") == "portone_v2":
            continue  # a V2 variant the suite never runs here (tests/conftest.py V2_SUITES): not a partial run
        if API_TESTS in Path(str(item.fspath)).parents:
            PARTIAL_RUN.deselected = True


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def anon():
    return RecordingAPIClient()


@pytest.fixture
def client_for():
    """client_for(user): an API client authenticated as `user` (token auth is tested on its own)."""

    def build(user):
        client = RecordingAPIClient()
        client.force_authenticate(user=user)
        return client

    return build


@pytest.fixture
def plans(db):
    return {
        "basic": PlanFactory(code="basic", name_ko="베이직", name_en="Basic", amount=9_900, sort_order=1),
        "pro": PlanFactory(code="pro", name_ko="프로", name_en="Pro", amount=29_900, sort_order=2),
    }


@pytest.fixture
def subscriber(gateway, plans):
    """subscriber(card=, plan=): a user with a card and a subscription created through the services
    (active once the first charge went through)."""

    def build(*, card: str = GOOD_CARD, plan: str | None = "basic"):
        customer = make_customer()
        now = clock.now()
        billing_key = register_card(customer, gateway, now=now, card=card)
        subscription = (
            subscription_create(customer=customer, plan=Plan.objects.get(code=plan), now=now) if plan else None
        )
        return SimpleNamespace(
            user=customer.user, customer=customer, billing_key=billing_key, subscription=subscription
        )

    return build


@pytest.fixture
def staff_user(db):
    """staff_user(*codenames): a staff account holding exactly these billing permissions."""

    def build(*codenames: str):
        user = UserFactory(is_staff=True)
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="billing", codename__in=codenames))
        return user

    return build


def error_of(response) -> dict:
    """The error object of an API error response, after checking the one error shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return body["error"]
