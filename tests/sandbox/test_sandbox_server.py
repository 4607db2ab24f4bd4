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

from iamport_sandbox.control import SandboxControl, SandboxControlError
from iamport_sandbox.server import SandboxServer
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


def test_64_parallel_charges_with_latency_are_each_recorded_once(sandbox, sandbox_server):
    client = Iamport(sandbox_server.url)
    client.issued("c_load")
    token = client.token()
    sandbox.set_latency(200)

    def charge(index: int) -> dict:
        with requests.Session() as session:
            response = session.post(
                f"{sandbox_server.url}/subscribe/payments/again",
                json={"customer_uid": "c_load", "merchant_uid": f"load-{index}", "amount": 1000, "name": "x"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            return response.json()["response"]

    started = time.monotonic()
    with ThreadPoolExecutor(64) as pool:
        payments = list(pool.map(charge, range(64)))
    elapsed = time.monotonic() - started

    assert all(p["status"] == "paid" for p in payments)
    assert len({p["imp_uid"] for p in payments}) == 64
    assert len([r for r in sandbox.requests_log() if r["endpoint"] == "again"]) == 64
    assert len(sandbox.payments()) == 64
    assert elapsed < 3  # one after another would take 12.8 s


def test_sustains_over_200_charges_per_second_with_200ms_latency(sandbox, sandbox_server):
    client = Iamport(sandbox_server.url)
    client.issued("c_rate")
    token = client.token()
    sandbox.set_latency(200)
    total, workers = 512, 128

    def worker(offset: int) -> int:
        done = 0
        with requests.Session() as session:
            for index in range(offset, total, workers):
                response = session.post(
                    f"{sandbox_server.url}/subscribe/payments/again",
                    json={"customer_uid": "c_rate", "merchant_uid": f"rate-{index}", "amount": 1000, "name": "x"},
                    headers={"Authorization": token},
                    timeout=10,
                )
                done += response.json()["response"]["status"] == "paid"
        return done

    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        paid = sum(pool.map(worker, range(workers)))
    rate = total / (time.monotonic() - started)

    assert paid == total
    assert rate > 200, f"{rate:.0f} charges/s"


def test_clock_refuses_to_move_backwards(sandbox):
    now = sandbox.now()

    with pytest.raises(SandboxControlError) as error:
        sandbox.set_now(now - 3600)

    assert error.value.status == 400
    with pytest.raises(SandboxControlError):
        sandbox.advance(-1)


def test_clock_follows_real_time_plus_offset_when_not_frozen(sandbox):
    before = sandbox.now()
    sandbox.advance(1000)

    after = sandbox.now()

    assert before + 1000 <= after <= before + 1002


def test_reset_clears_payments_keys_schedules_tokens_and_clock(sandbox, iamport):
    sandbox.freeze()
    iamport.issued("c1")
    iamport.paid("c1", "reset-1")
    iamport.schedule("c1", schedule_item("reset-s", sandbox.now() + 3600))
    old_token = iamport.token()
    sandbox.advance(10 * 24 * 3600)

    sandbox.reset()

    assert sandbox.payments() == [] and sandbox.customers() == [] and sandbox.schedules() == []
    assert sandbox.requests_log() == [] and sandbox.webhooks() == []
    assert abs(sandbox.now() - time.time()) < 5 and sandbox.clock()["frozen"] is False
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
        finally:
            process.terminate()
            process.wait(timeout=10)

    lines = log.read_text().splitlines()
    api_lines = [line for line in lines if "/subscribe/customers/c_cli" in line]
    assert len(api_lines) == 1 and api_lines[0].startswith("POST /subscribe/customers/c_cli 200")
    assert any(line.startswith("POST /users/getToken 200") for line in lines)
    assert not [line for line in lines if "4242" in line]
