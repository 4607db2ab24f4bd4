"""Traffic controls: the in-flight counter and its peaks, and per-endpoint rate caps answered like a PG's 429."""

import threading

import pytest
import requests

from iamport_sandbox.traffic import RateLimiter
from tests.sandbox.sandbox_helpers import charge_with_own_client, wait_until_idle


def _charge(iamport, merchant_uid: str):
    body = {"customer_uid": "c1", "merchant_uid": merchant_uid, "amount": 9900, "name": "x"}
    return iamport.post("/subscribe/payments/again", json=body)


# -- in flight ---------------------------------------------------------------------------------------------


def test_inflight_counts_api_requests_but_not_controls_when_both_are_called(sandbox, iamport, sandbox_server):
    iamport.token()
    iamport.get("/payments/status/paid")
    iamport.get("/no/such/api")  # 404: no endpoint name to count under
    sandbox.payments()
    sandbox.config()
    requests.get(f"{sandbox_server.url}/v1/iamport.js", timeout=5)

    snapshot = wait_until_idle(sandbox)

    assert snapshot == {"current": {}, "peak": {"getToken": 1, "payments": 1}}


def test_inflight_reset_lowers_peaks_to_what_is_still_in_flight_when_deleted(sandbox, iamport, sandbox_server):
    iamport.issued("c1")
    sandbox.add_fault("again", "gate", hold_ms=30_000)
    caller = threading.Thread(target=charge_with_own_client, args=(sandbox_server.url, "t-gated"))
    caller.start()
    sandbox.wait_for_inflight("again", 1)

    after = sandbox.reset_inflight()

    sandbox.release_held()
    caller.join(timeout=10)
    assert after == {"current": {"again": 1}, "peak": {"again": 1}}


def test_reset_clears_inflight_peaks_and_rate_limits_when_called(sandbox, iamport):
    iamport.issued("c1")
    sandbox.set_rate_limit("again", 1)
    iamport.paid("c1", "t-before-reset")
    wait_until_idle(sandbox)

    sandbox.reset()

    assert sandbox.inflight() == {"current": {}, "peak": {}}
    assert sandbox.config()["rate_limits"] == {}
    iamport.token(refresh=True)  # reset forgets tokens
    iamport.issued("c1")
    assert [_charge(iamport, f"t-after-reset-{i}").status_code for i in range(2)] == [200, 200]


# -- rate caps ---------------------------------------------------------------------------------------------


def test_rate_cap_refuses_charge_with_429_and_charges_nothing_when_cap_is_reached(sandbox, iamport):
    iamport.issued("c1")
    sandbox.set_rate_limit("again", 2)

    responses = [_charge(iamport, f"r-{i}") for i in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 429]
    assert [r.json()["response"]["status"] for r in responses[:2]] == ["paid", "paid"]
    refused = responses[2]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["code"] == -1 and refused.json()["response"] is None
    assert refused.json()["message"].startswith("Too Many Requests (sandbox throttle): ")
    assert sorted(p["merchant_uid"] for p in sandbox.payments()) == ["r-0", "r-1"]
    assert [
        (r["merchant_uid"], r["status"], r["fault"]) for r in sandbox.requests_log() if r["endpoint"] == "again"
    ] == [
        ("r-0", 200, None),
        ("r-1", 200, None),
        ("r-2", 429, "rate_limit"),
    ]


def test_rate_cap_leaves_other_endpoints_alone_when_one_endpoint_is_capped(sandbox, iamport):
    iamport.issued("c1")
    sandbox.set_rate_limit("again", 1)
    _charge(iamport, "r-capped")

    lookups = [iamport.get("/payments/findAll/r-capped").status_code for _ in range(3)]

    assert lookups == [200, 200, 200]
    assert sandbox.config()["rate_limits"] == {"again": 1}


def test_rate_cap_is_checked_before_faults_when_both_apply(sandbox, iamport):
    iamport.issued("c1")
    sandbox.set_rate_limit("again", 1)
    sandbox.add_fault("again", "code_error", times=2)

    first = _charge(iamport, "r-fault-1")
    second = _charge(iamport, "r-fault-2")

    assert (first.status_code, first.json()["code"]) == (200, -1)
    assert second.status_code == 429
    assert [f["times"] for f in sandbox.faults()] == [1]


def test_unauthenticated_request_is_answered_401_when_the_cap_is_reached(sandbox, iamport):
    iamport.issued("c1")
    sandbox.set_rate_limit("again", 1)
    _charge(iamport, "r-auth-1")

    response = iamport.post("/subscribe/payments/again", auth=False, json={})

    assert response.status_code == 401


@pytest.mark.parametrize("removal", [0, None])
def test_rate_cap_is_removed_when_set_to_zero_or_null(sandbox, iamport, removal):
    iamport.issued("c1")
    sandbox.set_rate_limit("again", 1)

    config = sandbox.set_rate_limit("again", removal)

    assert config["rate_limits"] == {}
    assert [_charge(iamport, f"r-removed-{i}").status_code for i in range(3)] == [200, 200, 200]


@pytest.mark.parametrize(
    "rate_limits",
    [
        {"nope": 5},
        {"again": -1},
        {"again": 1.5},
        {"again": "5"},
        {"again": True},
        {"cancel": 1, "again": -1},
        [50],
        50,
    ],
)
def test_rate_limits_are_refused_with_400_and_nothing_changes_when_invalid(sandbox, sandbox_server, rate_limits):
    sandbox.set_rate_limit("again", 3)

    response = requests.post(f"{sandbox_server.url}/__sandbox__/config", json={"rate_limits": rate_limits}, timeout=5)

    assert response.status_code == 400
    assert "rate_limits" in response.json()["error"]
    assert sandbox.config()["rate_limits"] == {"again": 3}


def test_rate_window_frees_a_slot_one_second_after_the_oldest_start_when_capped():
    now = [100.0]
    limiter = RateLimiter(monotonic=lambda: now[0])
    limiter.update({"again": 2})
    assert limiter.admit("again") is None
    now[0] = 100.5
    assert limiter.admit("again") is None

    now[0] = 100.9
    refusals = [limiter.admit("again") for _ in range(5)]  # refusals are not starts: they take no slot
    now[0] = 101.0
    freed = limiter.admit("again")
    full_again = limiter.admit("again")

    assert refusals == [(1, 2)] * 5
    assert freed is None
    assert full_again == (1, 2)


def test_forgetting_the_rate_window_admits_a_full_cap_at_once_and_keeps_the_cap(sandbox, iamport):
    iamport.issued("c1")
    sandbox.set_rate_limit("again", 2)
    assert [iamport.again("c1", f"fw-{i}").status_code for i in range(3)] == [200, 200, 429]

    answer = sandbox.forget_rate_window()

    assert answer == {"rate_limits": {"again": 2}}
    assert [iamport.again("c1", f"fw-next-{i}").status_code for i in range(3)] == [200, 200, 429]
