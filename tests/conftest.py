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
