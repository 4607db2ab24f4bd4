"""Fixtures for the sandbox tests (the session server and the reset control come from tests/conftest.py)."""

import pytest

from tests.sandbox.sandbox_helpers import Iamport, WebhookReceiver


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
