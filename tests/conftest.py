"""Fixtures shared by every test: one real iamport_sandbox per test session, reset before each test."""

import pytest


@pytest.fixture(scope="session")
def sandbox_server():
    from iamport_sandbox.server import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


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


@pytest.fixture
def gateway(sandbox, settings):
    from billing.services.gateway import get_gateway, reset_gateway

    reset_gateway()
    return get_gateway()
