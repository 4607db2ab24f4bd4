"""Server-level behaviour: persistence, concurrency, the clock and reset controls, the CLI."""

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from iamport_sandbox.clock import SandboxClock
from iamport_sandbox.control import SandboxControl, SandboxControlError
from iamport_sandbox.server import SandboxServer
from iamport_sandbox.store import Store
from tests.sandbox.sandbox_helpers import FAR_EXPIRY, GOOD_CARD, Iamport, schedule_item

REPO = Path(__file__).resolve().parents[2]


def test_state_survives_restart_when_data_file_given(tmp_path):
    data = tmp_path / "sandbox.sqlite3"
    first = SandboxServer(data_path=data).start()
    try:
        client = Iamport(first.url)
        client.issued("c_persist")
        paid = client.paid("c_persist", "persist-1")
    finally:
        first.stop()

    second = SandboxServer(data_path=data).start()
    try:
        client = Iamport(second.url)
        assert client.payment(paid["imp_uid"])["status"] == "paid"
        assert client.get("/subscribe/customers/c_persist").status_code == 200
        after = client.paid("c_persist", "persist-2")
        assert int(after["imp_uid"][4:]) == int(paid["imp_uid"][4:]) + 1
    finally:
        second.stop()


def test_state_is_forgotten_on_restart_when_no_data_file(sandbox_server):
    first = SandboxServer().start()
    try:
        Iamport(first.url).issued("c_memory")
    finally:
        first.stop()
    second = SandboxServer().start()
    try:
        assert Iamport(second.url).get("/subscribe/customers/c_memory").status_code == 404
    finally:
        second.stop()


def _charge_on_own_session(base_url: str, token: str, customer_uid: str, merchant_uid: str, session=None) -> dict:
    own = session is None
    session = session or requests.Session()
    try:
        response = session.post(
            f"{base_url}/subscribe/payments/again",
            json={"customer_uid": customer_uid, "merchant_uid": merchant_uid, "amount": 1000, "name": "x"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,  # a hang guard: the gate below holds the first calls until the test releases them
        )
        return response.json()["response"]
    finally:
        if own:
            session.close()


def _gated_snapshot_then_release(control: SandboxControl, endpoint: str) -> dict:
    """Once every gate set for `endpoint` is taken (hang guard 30 s): the in-flight snapshot; then release them.

    A call takes its gate after its latency sleep, not on arrival. Releasing as soon as N calls are in flight
    could let a released call's next call (same connection, arrived after the release) take a gate that a
    slower first call had not reached yet, and be held for 120 s. With every gate taken, the calls in flight
    are exactly the gated ones, and none can leave before the release. If the gates are not all taken in
    time, they are cleared before the release so the failing test does not hang on a late caller.
    """
    deadline = time.monotonic() + 30
    while any(f["endpoint"] == endpoint for f in control.faults()) and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        return {"gates_left": control.faults(), **control.inflight()}
    finally:
        control.clear_faults()
        control.release_held()


def test_64_parallel_charges_with_latency_are_each_recorded_once(sandbox, sandbox_server):
    callers = 64
    client = Iamport(sandbox_server.url)
    client.issued("c_load")
    token = client.token()
    sandbox.set_latency(200)
    # Every charge waits at a gate, counted in flight, until all 64 are in flight together: proof that they
    # are served in parallel (one after another, the first would wait alone and the test would fail).
    sandbox.add_fault("again", "gate", times=callers)

    with ThreadPoolExecutor(callers) as pool:
        futures = [
            pool.submit(_charge_on_own_session, sandbox_server.url, token, "c_load", f"load-{i}")
            for i in range(callers)
        ]
        together = _gated_snapshot_then_release(sandbox, "again")
        payments = [future.result(timeout=60) for future in futures]

    assert together["gates_left"] == [] and together["current"]["again"] == callers
    assert all(p["status"] == "paid" for p in payments)
    assert len({p["imp_uid"] for p in payments}) == callers
    assert [(r["status"], r["fault"]) for r in sandbox.requests_log() if r["endpoint"] == "again"] == [
        (200, "gate")
    ] * callers
    assert sorted(p["merchant_uid"] for p in sandbox.payments()) == sorted(f"load-{i}" for i in range(callers))


def test_128_keep_alive_clients_are_served_together_and_every_charge_is_paid_when_latency_is_200ms(
    sandbox, sandbox_server
):
    # Throughput (charges/s) is a benchmark figure, not a test outcome; this checks what makes throughput
    # possible: 128 keep-alive connections in flight at once, and every one of 512 charges answered paid.
    client = Iamport(sandbox_server.url)
    client.issued("c_rate")
    token = client.token()
    sandbox.set_latency(200)
    total, workers = 512, 128
    # Each worker's first charge waits at a gate (no worker can send a second one before the release), so the
    # 128 first charges must all be in flight together; the other 384 then run freely on the same connections.
    sandbox.add_fault("again", "gate", times=workers)

    def worker(offset: int) -> list[str]:
        with requests.Session() as session:
            return [
                _charge_on_own_session(sandbox_server.url, token, "c_rate", f"rate-{index}", session)["status"]
                for index in range(offset, total, workers)
            ]

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(worker, offset) for offset in range(workers)]
        together = _gated_snapshot_then_release(sandbox, "again")
        statuses = [status for future in futures for status in future.result(timeout=120)]

    assert together["gates_left"] == [] and together["current"]["again"] == workers
    assert statuses == ["paid"] * total
    logged = [(r["status"], r["fault"]) for r in sandbox.requests_log() if r["endpoint"] == "again"]
    assert sorted(logged, key=str) == sorted([(200, "gate")] * workers + [(200, None)] * (total - workers), key=str)
    assert sorted(p["merchant_uid"] for p in sandbox.payments()) == sorted(f"rate-{i}" for i in range(total))


def test_clock_refuses_to_move_backwards(sandbox):
    now = sandbox.now()

    with pytest.raises(SandboxControlError) as error:
        sandbox.set_now(now - 3600)

    assert error.value.status == 400
    with pytest.raises(SandboxControlError):
        sandbox.advance(-1)


def test_clock_follows_real_time_plus_offset_when_not_frozen():
    wall = [1_800_000_000.0]
    clock = SandboxClock(Store(), wall=lambda: wall[0])
    clock.advance(1000)

    wall[0] += 5  # five real seconds pass

    assert clock.now() == 1_800_000_000 + 1000 + 5
    assert clock.snapshot() == {"now": 1_800_001_005, "offset": 1000, "frozen": False}


def test_frozen_clock_ignores_real_time_and_keeps_its_moment_when_unfrozen():
    wall = [1_800_000_000.0]
    clock = SandboxClock(Store(), wall=lambda: wall[0])
    clock.freeze(True)
    clock.advance(60)

    wall[0] += 3600
    frozen_now = clock.now()
    clock.freeze(False)
    wall[0] += 2

    assert frozen_now == 1_800_000_060
    assert clock.now() == 1_800_000_062


def test_reset_clears_payments_keys_schedules_tokens_and_clock(sandbox, iamport):
    sandbox.freeze()
    iamport.issued("c1")
    iamport.paid("c1", "reset-1")
    iamport.schedule("c1", schedule_item("reset-s", sandbox.now() + 3600))
    old_token = iamport.token()
    sandbox.advance(10 * 24 * 3600)
    sandbox.freeze(False)  # the ten days become an offset on real time, which reset must drop

    sandbox.reset()

    assert sandbox.payments() == [] and sandbox.customers() == [] and sandbox.schedules() == []
    assert sandbox.requests_log() == [] and sandbox.webhooks() == []
    clock = sandbox.clock()
    assert clock["offset"] == 0 and clock["frozen"] is False  # real time again, read without a stopwatch
    response = requests.get(f"{iamport.base_url}/payments/status/paid", headers={"Authorization": old_token}, timeout=5)
    assert response.status_code == 401


def test_ids_restart_from_the_beginning_after_reset(sandbox, iamport):
    iamport.issued("c1")
    first = iamport.paid("c1", "ids-1")
    sandbox.reset()
    iamport.token(refresh=True)
    iamport.issued("c1")

    again = iamport.paid("c1", "ids-1")

    assert again["imp_uid"] == first["imp_uid"]


def test_ledger_dump_contains_cancel_history_and_sandbox_extras(sandbox, iamport):
    iamport.issued("c1")
    paid = iamport.paid("c1", "dump-1", notice_url="http://127.0.0.1:9/x")
    iamport.cancel(imp_uid=paid["imp_uid"], amount=100)

    (entry,) = sandbox.payments()

    assert entry["cancel_history"][0]["amount"] == 100
    assert entry["_sandbox"]["notice_url"] == "http://127.0.0.1:9/x"
    assert {"tax_free", "vat_amount"} <= set(entry["_sandbox"])


def test_card_behaviour_control_returns_404_when_key_unknown(sandbox):
    with pytest.raises(SandboxControlError) as error:
        sandbox.set_card_behaviour("ghost", "paid")

    assert error.value.status == 404


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_serves_api_and_logs_one_line_per_request_without_card_numbers(tmp_path):
    port = _free_port()
    log = tmp_path / "stderr.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "iamport_sandbox", "--host", "127.0.0.1", "--port", str(port)],
            stderr=stderr,
            cwd=REPO,
            env=env,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 10
            while True:
                try:
                    SandboxControl(base_url).health()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            client = Iamport(base_url)
            client.post(
                "/subscribe/customers/c_cli",
                params={"card_number": GOOD_CARD},
                json={"card_number": GOOD_CARD, "expiry": FAR_EXPIRY, "pg": "nice"},
            )
            # The server writes a request's line just after the answer: wait for it before stopping the server.
            deadline = time.monotonic() + 10
            while "/subscribe/customers/c_cli" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            process.terminate()
            process.wait(timeout=10)

    lines = log.read_text().splitlines()
    api_lines = [line for line in lines if "/subscribe/customers/c_cli" in line]
    assert len(api_lines) == 1 and api_lines[0].startswith("POST /subscribe/customers/c_cli 200")
    assert any(line.startswith("POST /users/getToken 200") for line in lines)
    assert not [line for line in lines if "4242" in line]
