"""Token expiry mid-run (A6 item 7): Iamport's clock moves past the cached token's 30 minutes while ours does not,
so the cached token is refused with 401. The client must refresh once and send the charge exactly once more
(a 401 means the charge was not processed)."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.models import PaymentAttempt
from subscriptions.services.renewals import subscription_renew
from tests.reliability.conftest import run_in_threads
from tests.reliability.helpers import assert_books_balance, attempts_of, renewal_invoice

Status = PaymentAttempt.Status
MINUTE = dt.timedelta(minutes=1)


def calls_since(sandbox, seq: int) -> list[tuple[str, int | None]]:
    return [(r["endpoint"], r["status"]) for r in sandbox.requests_log() if r["seq"] > seq]


def last_seq(sandbox) -> int:
    return max(r["seq"] for r in sandbox.requests_log())


@pytest.mark.django_db
def test_charge_goes_through_once_after_one_token_refresh_when_the_cached_token_expired_at_iamport(
    sandbox, gateway, subscribed, now
):
    sub = subscribed(now=now)  # the gateway now holds a cached token
    seen = last_seq(sandbox)
    sandbox.advance(31 * 60)

    outcome = subscription_renew(subscription_id=sub.pk, now=sub.current_period_end + MINUTE, gateway=gateway)

    [attempt] = attempts_of(renewal_invoice(sub))
    assert outcome == "renewed:succeeded"
    assert calls_since(sandbox, seen) == [("again", 401), ("getToken", 200), ("again", 200)]
    assert attempt.status == Status.SUCCEEDED
    assert_books_balance(sandbox)


@pytest.mark.django_db(transaction=True)
def test_parallel_charges_share_one_token_refresh_and_each_charge_once_when_the_token_expired_mid_run(
    sandbox, gateway, subscribed, now
):
    subs = [subscribed(now=now) for _ in range(4)]
    seen = last_seq(sandbox)
    sandbox.advance(31 * 60)
    sandbox.set_latency(300)  # the 401s overlap

    outcomes = run_in_threads(
        *[
            lambda sid=sub.pk, at=sub.current_period_end + MINUTE: subscription_renew(
                subscription_id=sid, now=at, gateway=gateway
            )
            for sub in subs
        ]
    )

    calls = calls_since(sandbox, seen)
    assert outcomes == ["renewed:succeeded"] * 4
    assert calls.count(("again", 401)) >= 2  # several charges really met the expired token
    assert calls.count(("getToken", 200)) == 1
    assert calls.count(("again", 200)) == 4
    assert set(calls) <= {("again", 401), ("getToken", 200), ("again", 200)}
    assert_books_balance(sandbox)
