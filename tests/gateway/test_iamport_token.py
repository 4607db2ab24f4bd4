"""Access token: one fetch shared by all calls and threads, refresh before expiry, one retry on 401."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from billing.gateway import GatewayNotFound

from .conftest import FakeClock, issue_key, log_of

TOKEN_LIFETIME = 30 * 60


def test_token_is_fetched_once_when_many_calls_are_made(gateway, sandbox, customer_uid, uid):
    for _ in range(5):
        gateway.get_billing_key(customer_uid=customer_uid)
    gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=uid("order"), amount=100, name="n")

    assert len(log_of(sandbox, "getToken")) == 1
    assert len([e for e in log_of(sandbox, "customers") if e["method"] == "GET"]) == 5


def test_token_is_reused_when_two_minutes_of_life_are_left(make_gateway, sandbox):
    clock = FakeClock(sandbox.now())
    gateway = make_gateway(clock=clock)
    gateway.get_token()

    sandbox.advance(TOKEN_LIFETIME - 120)
    clock.advance(TOKEN_LIFETIME - 120)
    gateway.find_payment(merchant_uid="nothing")

    assert len(log_of(sandbox, "getToken")) == 1


def test_token_is_refreshed_when_less_than_a_minute_of_life_is_left(make_gateway, sandbox):
    clock = FakeClock(sandbox.now())
    gateway = make_gateway(clock=clock)
    first = gateway.get_token()

    sandbox.advance(TOKEN_LIFETIME - 59)
    clock.advance(TOKEN_LIFETIME - 59)
    gateway.find_payment(merchant_uid="nothing")

    assert len(log_of(sandbox, "getToken")) == 2
    # Iamport hands back the same token with a 5-minute extension in its last minute; the new expiry is
    # cached, so the next minutes need no further fetch.
    clock.advance(120)
    sandbox.advance(120)
    second = gateway.get_token()
    assert len(log_of(sandbox, "getToken")) == 2
    assert second == first
    assert 401 not in {e["status"] for e in sandbox.requests_log()}


def test_token_expiry_uses_iamport_clock_when_local_clock_is_skewed(make_gateway, sandbox):
    # Our clock is a day ahead of Iamport's: the remaining lifetime, not the absolute expiry, must count.
    clock = FakeClock(sandbox.now() + 86_400)
    gateway = make_gateway(clock=clock)

    gateway.get_token()
    gateway.find_payment(merchant_uid="nothing")
    gateway.find_payment(merchant_uid="nothing")

    assert len(log_of(sandbox, "getToken")) == 1


def test_call_is_retried_once_with_new_token_when_iamport_answers_401(gateway, sandbox, uid):
    gateway.get_token()
    sandbox.reset()  # forgets every issued token: the cached one now gets 401
    customer_uid = uid("cust")

    key = issue_key(gateway, customer_uid)

    assert key.customer_uid == customer_uid
    issues = [e for e in sandbox.requests_log() if e["endpoint"] == "customers"]
    assert [e["status"] for e in issues] == [401, 200]  # the write was retried exactly once
    assert len(log_of(sandbox, "getToken")) == 1  # the log was reset with the sandbox


def test_read_is_retried_once_with_new_token_when_iamport_answers_401(gateway, sandbox):
    gateway.get_token()
    sandbox.reset()

    with pytest.raises(GatewayNotFound):
        gateway.get_billing_key(customer_uid="nobody")

    statuses = [e["status"] for e in log_of(sandbox, "customers")]
    assert statuses[0] == 401 and len(statuses) == 2


def test_token_is_fetched_once_when_64_threads_start_together(make_gateway, sandbox):
    gateway = make_gateway()
    sandbox.add_fault("getToken", "delay", delay_ms=300)  # keep the first fetch in flight while others wait
    barrier = threading.Barrier(64)

    def work(_):
        barrier.wait()
        return gateway.find_payment(merchant_uid="nothing")

    with ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(work, range(64)))

    assert results == [None] * 64
    assert len(log_of(sandbox, "getToken")) == 1
    assert len(log_of(sandbox, "payments")) == 64


def test_threads_get_separate_sessions_when_gateway_is_shared(gateway, sandbox):
    sessions = []

    def grab():
        sessions.append(gateway._transport.session())

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grab()
    grab()

    assert len({id(s) for s in sessions}) == 5  # four threads + this one (which reuses its own)


def test_authenticate_fetches_a_token_only_when_none_is_fresh_and_the_next_charge_needs_none(
    make_gateway, sandbox, customer_uid, uid
):
    gateway = make_gateway()  # no token cached yet
    sandbox.clear_requests_log()

    gateway.authenticate()
    gateway.authenticate()
    gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=uid("order"), amount=100, name="n")

    assert [e["endpoint"] for e in sandbox.requests_log()] == ["getToken", "again"]
