"""Injected faults and latency: every mode, consumption order, and prompt release on stop/reset/release."""

import threading
import time

import pytest
import requests

from iamport_sandbox.control import SandboxControl, SandboxControlError
from iamport_sandbox.server import SandboxServer
from tests.sandbox.sandbox_helpers import Iamport, charge_with_own_client, wait_until_idle


def _charge(iamport, merchant_uid: str, timeout: float = 10):
    body = {"customer_uid": "c1", "merchant_uid": merchant_uid, "amount": 9900, "name": "x"}
    return iamport.post("/subscribe/payments/again", json=body, timeout=timeout)


def test_timeout_after_commit_charges_although_client_times_out(sandbox, iamport):
    iamport.issued("c1")
    sandbox.add_fault("again", "timeout_after_commit")

    with pytest.raises(requests.exceptions.ReadTimeout):
        _charge(iamport, "f-after", timeout=1)

    listing = iamport.get("/payments/findAll/f-after").json()["response"]
    assert listing["total"] == 1 and listing["list"][0]["status"] == "paid"
    assert [r["fault"] for r in sandbox.requests_log() if r["endpoint"] == "again"] == ["timeout_after_commit"]


def test_timeout_before_commit_charges_nothing_when_client_times_out(sandbox, iamport):
    iamport.issued("c1")
    sandbox.add_fault("again", "timeout_before_commit")

    with pytest.raises(requests.exceptions.ReadTimeout):
        _charge(iamport, "f-before", timeout=1)

    assert iamport.get("/payments/findAll/f-before").status_code == 404


def test_held_request_does_not_block_other_requests(sandbox, iamport, sandbox_server):
    iamport.issued("c1")
    sandbox.add_fault("again", "timeout_after_commit")  # held 120 s unless released
    outcome = []
    held = threading.Thread(target=lambda: outcome.append(_safe_charge(iamport, "f-hold")))
    other = Iamport(sandbox_server.url)
    held.start()
    assert sandbox.wait_for_inflight("again", 1, timeout=30)["current"] == {"again": 1}

    # A blocked server would leave this call unanswered until the hold ends (120 s), past its 10 s timeout.
    response = other.again("c1", "f-other")
    still_held = sandbox.wait_for_inflight("again", 1)

    assert response.json()["response"]["status"] == "paid"
    assert still_held["current"] == {"again": 1} and outcome == []
    logged = [(r["merchant_uid"], r["status"], r["fault"]) for r in sandbox.requests_log() if r["endpoint"] == "again"]
    # Sorted: the held call is logged when its hold starts, which may come after the other call's answer.
    assert sorted(logged, key=str) == [("f-hold", None, "timeout_after_commit"), ("f-other", 200, None)]
    sandbox.release_held()
    held.join(timeout=30)
    assert outcome == ["dropped"]


@pytest.mark.parametrize("mode", ["http_500", "http_503"])
def test_http_error_fault_answers_status_with_envelope_and_charges_nothing(sandbox, iamport, mode):
    iamport.issued("c1")
    sandbox.add_fault("again", mode)

    response = _charge(iamport, "f-http")

    assert response.status_code == int(mode[-3:])
    assert response.json()["code"] != 0 and response.json()["response"] is None
    assert iamport.get("/payments/findAll/f-http").status_code == 404


def test_code_error_fault_answers_200_with_code_minus_1_and_charges_nothing(sandbox, iamport):
    iamport.issued("c1")
    sandbox.add_fault("again", "code_error")

    response = _charge(iamport, "f-code")

    assert response.status_code == 200
    assert response.json()["code"] == -1 and response.json()["response"] is None
    assert iamport.get("/payments/findAll/f-code").status_code == 404


def test_delay_fault_serves_normally_after_delay(sandbox, iamport):
    iamport.issued("c1")
    sandbox.add_fault("again", "delay", delay_ms=1)

    response = _charge(iamport, "f-delay")

    assert response.status_code == 200 and response.json()["code"] == 0
    assert response.json()["response"]["status"] == "paid"
    assert [
        (r["merchant_uid"], r["status"], r["fault"]) for r in sandbox.requests_log() if r["endpoint"] == "again"
    ] == [("f-delay", 200, "delay")]
    assert [(p["merchant_uid"], p["status"]) for p in sandbox.payments()] == [("f-delay", "paid")]

    # While a delay runs the request is in flight, unanswered and uncharged: the delay comes before the charge.
    # Only reset and stop cut a delay short (a release does not), so this one ends with the reset.
    wait_until_idle(sandbox)  # so the first charge, counted out a moment after its answer, is not taken for this one
    sandbox.add_fault("again", "delay", delay_ms=120_000)
    outcome = []
    caller = threading.Thread(target=lambda: outcome.append(_safe_charge(iamport, "f-delay-long")))
    caller.start()
    delayed = sandbox.wait_for_inflight("again", 1, timeout=30)
    charged_while_delayed = [p["merchant_uid"] for p in sandbox.payments()]
    answered_while_delayed = list(outcome)
    sandbox.reset()
    caller.join(timeout=30)

    assert delayed["current"] == {"again": 1}
    assert charged_while_delayed == ["f-delay"] and answered_while_delayed == []
    assert not caller.is_alive()


def test_faults_are_consumed_in_order_for_times_requests_each(sandbox, iamport):
    iamport.issued("c1")
    sandbox.add_fault("again", "http_503", times=2)
    sandbox.add_fault("again", "code_error")

    statuses = [(r.status_code, r.json()["code"]) for r in (_charge(iamport, f"f-seq-{i}") for i in range(4))]

    assert statuses == [(503, -1), (503, -1), (200, -1), (200, 0)]


def test_fault_applies_only_to_its_endpoint(sandbox, iamport):
    iamport.issued("c1")
    sandbox.add_fault("cancel", "http_500")

    paid = iamport.paid("c1", "f-endpoint")

    assert iamport.cancel(imp_uid=paid["imp_uid"]).status_code == 500
    assert iamport.cancel(imp_uid=paid["imp_uid"]).json()["code"] == 0


@pytest.mark.parametrize(
    ("endpoint", "call"),
    [
        ("getToken", lambda api: api.session.post(f"{api.base_url}/users/getToken", json={}, timeout=5)),
        ("payments", lambda api: api.get("/payments/status/paid")),
        ("customers", lambda api: api.get("/subscribe/customers/c1")),
        ("onetime", lambda api: api.post("/subscribe/payments/onetime", json={})),
        ("schedule", lambda api: api.post("/subscribe/payments/schedule", json={})),
        ("unschedule", lambda api: api.post("/subscribe/payments/unschedule", json={})),
    ],
)
def test_fault_hits_named_endpoint_when_that_endpoint_is_called(sandbox, iamport, endpoint, call):
    iamport.token()
    sandbox.add_fault(endpoint, "http_503")

    assert call(iamport).status_code == 503
    assert sandbox.faults() == []


def test_clearing_faults_serves_normally_again(sandbox, iamport):
    iamport.issued("c1")
    sandbox.add_fault("again", "http_500", times=5)

    sandbox.clear_faults()

    assert _charge(iamport, "f-cleared").status_code == 200


def test_adding_unknown_fault_mode_is_refused_with_400(sandbox):
    with pytest.raises(SandboxControlError) as error:
        sandbox.add_fault("again", "explode")

    assert error.value.status == 400


def test_latency_delays_api_calls_but_not_controls(sandbox, iamport, sandbox_server):
    iamport.token()
    sandbox.set_latency(30_000)
    outcome = []

    def lookup() -> None:
        try:
            outcome.append(iamport.get("/payments/status/paid", timeout=60).status_code)
        except requests.exceptions.RequestException as exc:
            outcome.append(type(exc).__name__)

    api_call = threading.Thread(target=lookup)
    api_call.start()
    delayed = sandbox.wait_for_inflight("payments", 1, timeout=30)
    # A control that also slept 30 s would hit this 10 s client timeout and fail the test instead of hanging.
    quick = SandboxControl(sandbox_server.url, timeout=10)

    control_answer = quick.payments()
    still_delayed = quick.inflight()
    answered_before_latency_ended = list(outcome)
    quick.reset()  # ends the latency sleep
    api_call.join(timeout=30)

    assert delayed["current"] == {"payments": 1}
    assert control_answer == []
    assert still_delayed["current"] == {"payments": 1} and answered_before_latency_ended == []
    assert not api_call.is_alive() and len(outcome) == 1


def test_reset_clears_latency_and_faults(sandbox, iamport, sandbox_server):
    sandbox.set_latency(60_000)
    sandbox.add_fault("payments", "http_500")

    sandbox.reset()

    assert sandbox.faults() == []
    assert requests.get(f"{sandbox_server.url}/__sandbox__/latency", timeout=10).json() == {"ms": 0}
    # With the latency left in place, the token call and this lookup would each sleep 60 s, past their 10 s
    # client timeouts (hang guards), and the test would fail.
    assert iamport.get("/payments/status/paid", timeout=10).status_code == 200
    assert [(r["endpoint"], r["status"], r["fault"]) for r in sandbox.requests_log()] == [
        ("getToken", 200, None),
        ("payments", 200, None),
    ]


def test_stop_returns_promptly_when_a_response_is_held():
    server = SandboxServer().start()
    try:
        control = SandboxControl(server.url)
        client = Iamport(server.url)
        client.issued("c1")
        control.add_fault("again", "timeout_after_commit")  # held 120 s unless released
        outcome = []
        # The client would wait 300 s on its own: any end it sees within the join guards below is the server's.
        caller = threading.Thread(target=lambda: outcome.append(_safe_charge(client, "f-stop", timeout=300)))
        caller.start()
        held = control.wait_for_inflight("again", 1, timeout=30)

        stopper = threading.Thread(target=server.stop)
        stopper.start()
        stopper.join(timeout=30)  # a hang guard: stop() must not wait for the held response to end
        caller.join(timeout=30)
        idle = _wait_until_nothing_in_flight(server)

        assert held["current"] == {"again": 1}
        assert not stopper.is_alive()
        assert not caller.is_alive() and outcome == ["dropped"]
        assert idle == {}  # the held request was released, not left waiting out its 120 s
    finally:
        server.stop()


def _safe_charge(client, merchant_uid: str, timeout: float = 30) -> str:
    """How one charge ended: answered, dropped (connection closed unanswered), timed out (the client gave up)."""
    try:
        _charge(client, merchant_uid, timeout=timeout)
    except requests.exceptions.Timeout:  # before ConnectionError: ConnectTimeout is both
        return "timed out"
    except requests.exceptions.ConnectionError:
        return "dropped"
    except requests.exceptions.RequestException as exc:
        return f"error: {type(exc).__name__}"
    return "answered"


def _wait_until_nothing_in_flight(server: SandboxServer, timeout: float = 30) -> dict:
    """In-process (the server may be stopped): poll until no API request is in flight or the deadline passes."""
    deadline = time.monotonic() + timeout
    while (current := server.inflight.snapshot()["current"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    return current


def test_throttle_answers_429_with_envelope_and_retry_after_and_charges_nothing_when_injected(sandbox, iamport):
    iamport.issued("c1")
    sandbox.add_fault("again", "throttle", retry_after=7)

    response = _charge(iamport, "f-throttle")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    body = response.json()
    assert body["code"] == -1 and body["response"] is None
    assert body["message"].startswith("Too Many Requests (sandbox throttle): ")
    assert [p["merchant_uid"] for p in sandbox.payments()] == []
    assert [(r["status"], r["fault"]) for r in sandbox.requests_log() if r["endpoint"] == "again"] == [
        (429, "throttle")
    ]


def test_throttle_asks_to_retry_after_one_second_when_retry_after_is_not_given(sandbox, iamport):
    iamport.issued("c1")
    sandbox.add_fault("again", "throttle")

    throttled = _charge(iamport, "f-throttle-1")
    retried = _charge(iamport, "f-throttle-2")

    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "1")
    assert retried.status_code == 200 and retried.json()["response"]["status"] == "paid"


def test_throttle_issues_no_billing_key_when_it_hits_key_issuance(sandbox, iamport):
    iamport.token()
    sandbox.add_fault("customers", "throttle")

    response = iamport.issue("c-throttled")

    assert response.status_code == 429
    assert sandbox.customers() == []


@pytest.mark.parametrize("retry_after", [-1, "1", 1.5, True])
def test_adding_throttle_is_refused_with_400_when_retry_after_is_not_a_non_negative_integer(sandbox, retry_after):
    with pytest.raises(SandboxControlError) as error:
        sandbox.add_fault("again", "throttle", retry_after=retry_after)

    assert error.value.status == 400
    assert "retry_after" in error.value.body["error"]
    assert sandbox.faults() == []


def test_gate_holds_concurrent_charges_until_released_when_gated(sandbox, iamport, sandbox_server):
    callers = 4
    iamport.issued("c1")
    sandbox.add_fault("again", "gate", times=callers, hold_ms=30_000)
    answers = []

    def call(merchant_uid: str) -> None:
        answers.append(charge_with_own_client(sandbox_server.url, merchant_uid))

    threads = [threading.Thread(target=call, args=(f"f-gate-{i}",)) for i in range(callers)]
    for thread in threads:
        thread.start()

    waiting = sandbox.wait_for_inflight("again", callers)
    charged_while_gated = [p["merchant_uid"] for p in sandbox.payments()]
    sandbox.release_held()
    for thread in threads:
        thread.join(timeout=10)

    assert waiting["current"]["again"] == callers
    assert charged_while_gated == []
    assert [(r.status_code, r.json()["response"]["status"]) for r in answers] == [(200, "paid")] * callers
    assert sorted(p["merchant_uid"] for p in sandbox.payments()) == [f"f-gate-{i}" for i in range(callers)]
    assert sandbox.inflight()["peak"]["again"] == callers
    assert [(r["status"], r["fault"]) for r in sandbox.requests_log() if r["endpoint"] == "again"] == [
        (200, "gate")
    ] * callers


def test_gate_serves_normally_when_hold_ms_passes_without_release(sandbox, iamport):
    iamport.issued("c1")
    sandbox.add_fault("again", "gate", hold_ms=50)

    response = _charge(iamport, "f-gate-timeout")

    assert response.status_code == 200 and response.json()["response"]["status"] == "paid"


def test_release_frees_gated_request_when_it_arrived_before_release_but_reached_its_gate_after(
    sandbox, iamport, sandbox_server
):
    # The latency sleep keeps the request short of its gate while the release is sent: a release must
    # cover every request already in flight, or a test that waited for N in flight could hang on one.
    iamport.issued("c1")
    sandbox.add_fault("again", "gate", hold_ms=60_000)
    sandbox.set_latency(300)
    answers = []
    caller = threading.Thread(target=lambda: answers.append(_safe_charge(iamport, "f-gate-late", timeout=10)))
    caller.start()
    sandbox.wait_for_inflight("again", 1)

    sandbox.release_held()
    caller.join(timeout=15)

    assert answers == ["answered"]
    assert [p["merchant_uid"] for p in sandbox.payments()] == ["f-gate-late"]


def test_release_drops_held_timeout_response_when_released(sandbox, iamport, sandbox_server):
    iamport.issued("c1")
    sandbox.add_fault("again", "timeout_after_commit")  # held 120 s unless released
    outcome = []
    caller = threading.Thread(target=lambda: outcome.append(_safe_charge(iamport, "f-release", timeout=30)))
    caller.start()
    sandbox.wait_for_inflight("again", 1)

    sandbox.release_held()
    caller.join(timeout=10)

    assert outcome == ["dropped"]
    assert [(p["merchant_uid"], p["status"]) for p in sandbox.payments()] == [("f-release", "paid")]
