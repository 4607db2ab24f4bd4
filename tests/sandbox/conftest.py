"""Fixtures for the sandbox tests (the session server and the reset control come from tests/conftest.py)."""

import pytest

from tests.sandbox.sandbox_helpers import Iamport, WebhookReceiver, wait_until_idle


@pytest.fixture
def sandbox(sandbox):
    """The reset sandbox, once no API request of an earlier test is still in flight.

    A request counts in flight a moment after its client has the answer, and one held by an earlier test is
    released by the reset but still has to finish. A test that waits for N requests in flight and then
    releases them must not count such a straggler as one of its own (it would release too early).
    """
    leftover = wait_until_idle(sandbox, timeout=30)
    assert leftover["current"] == {}, f"API requests of an earlier test still in flight after reset: {leftover}"
    return sandbox


@pytest.fixture
def iamport(sandbox, sandbox_server) -> Iamport:
    client = Iamport(sandbox_server.url)
    yield client
    client.session.close()


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()
