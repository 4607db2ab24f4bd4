"""Fixtures shared by every test: one real iamport_sandbox per test session, reset before each test."""

import pytest


@pytest.fixture(scope="session")
def sandbox_server():
    from iamport_sandbox.server import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def notify_server():
    """One notify_sandbox (SOLAPI look-alike) per test session, on a free loopback port."""
    from notify_sandbox.server import NotifySandbox

    server = NotifySandbox(host="127.0.0.1", port=0).start()
    yield server
    server.stop()


class NotifyControl:
    """The notification sandbox's /__sandbox__ controls, over HTTP."""

    def __init__(self, url: str):
        self.url = url

    def reset(self) -> None:
        import requests

        requests.post(f"{self.url}/__sandbox__/reset", timeout=5).raise_for_status()

    def fault(self, kind: str, **fields) -> None:
        import requests

        requests.post(f"{self.url}/__sandbox__/faults", json={"kind": kind, **fields}, timeout=5).raise_for_status()

    def messages(self, to: str | None = None) -> list[dict]:
        import requests

        listed = requests.get(f"{self.url}/__sandbox__/messages", timeout=5).json()
        return [m for m in listed if to is None or m["to"] == to]


@pytest.fixture(autouse=True)
def notify(notify_server, settings):
    """A clean notification sandbox for every test, and the app pointed at it (never the real SOLAPI)."""
    from notify_sandbox.server import DEFAULT_API_KEY, DEFAULT_API_SECRET

    settings.SOLAPI_BASE_URL = notify_server.url
    settings.SOLAPI_API_KEY, settings.SOLAPI_API_SECRET = DEFAULT_API_KEY, DEFAULT_API_SECRET
    control = NotifyControl(notify_server.url)
    control.reset()
    return control


@pytest.fixture
def sandbox(sandbox_server):
    """A clean sandbox (state, clock, faults, latency) and a client for its /__sandbox__ controls."""
    from iamport_sandbox.control import SandboxControl

    control = SandboxControl(sandbox_server.url)
    control.reset()
    return control


@pytest.fixture(autouse=True)
def _app_uses_the_sandbox(request, settings):
    """Point the app (get_gateway, the clock command) at the session's sandbox, with short timeouts."""
    if "sandbox_server" not in request.fixturenames and "sandbox" not in request.fixturenames:
        return
    server = request.getfixturevalue("sandbox_server")
    settings.IAMPORT_API_URL = server.url
    settings.IAMPORT_SANDBOX_URL = server.url
    settings.IAMPORT_READ_TIMEOUT = 2.0
    settings.SITE_URL = ""  # no webhooks unless a test starts a live server and sets SITE_URL


# The suites that run under both gateways (the `gateway` fixture's params); every other test that takes
# `gateway` runs on Iamport V1 only: they prove V1-specific wire behaviour (tokens, envelopes, V1 paths).
V2_SUITES = (
    "tests/subscriptions/test_lifecycle.py",  # both strategies
    "tests/subscriptions/test_dunning.py",
    "tests/subscriptions/test_schedules.py",
    "tests/subscriptions/test_plan_changes.py",
    "tests/subscriptions/test_renewals.py",
    "tests/subscriptions/test_renewals_calendar.py",
    "tests/billing/test_payments.py",
    "tests/billing/test_refunds.py",
    "tests/billing/test_webhooks.py",
)


def use_portone_v2(settings, server) -> None:
    """Point the app at the sandbox's PortOne V2 surface (its default secret, store, channel, webhook secret)."""
    from iamport_sandbox.v2.ledger import DEFAULT_API_SECRET, DEFAULT_CHANNEL_KEY, DEFAULT_STORE_ID
    from iamport_sandbox.v2.signing import DEFAULT_WEBHOOK_SECRET

    settings.BILLING_GATEWAY = "portone_v2"
    settings.PORTONE_API_URL = server.url + "/v2"
    settings.PORTONE_API_SECRET = DEFAULT_API_SECRET
    settings.PORTONE_STORE_ID = DEFAULT_STORE_ID
    settings.PORTONE_CHANNEL_KEY = DEFAULT_CHANNEL_KEY
    settings.PORTONE_WEBHOOK_SECRET = DEFAULT_WEBHOOK_SECRET
    settings.PORTONE_READ_TIMEOUT = 2.0
    settings.PORTONE_SDK_URL = server.url + "/v2/browser-sdk.js"


@pytest.fixture(params=["iamport_v1", "portone_v2"])
def gateway(request, sandbox, sandbox_server, settings):
    """The app's gateway, once per gateway kind: Iamport V1 and PortOne V2 (both on the same sandbox)."""
    from billing.services.gateway import get_gateway, reset_gateway

    if request.param == "portone_v2":
        use_portone_v2(settings, sandbox_server)
    reset_gateway()
    return get_gateway()


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_v2 = callspec is not None and callspec.params.get("gateway") == "portone_v2"
        in_suite = any(str(item.fspath).endswith(suite) for suite in V2_SUITES)
        (drop if on_v2 and not in_suite else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
