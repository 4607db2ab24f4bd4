"""The web server `make run` starts (the Procfile's `web` line, run as honcho runs it): a burst of concurrent
requests is answered in full, and it never holds more PostgreSQL connections than it serves at once."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)
BURST = 50


def procfile_web_command() -> str:
    [line] = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")]
    return line.removeprefix("web:").strip()


def serving_capacity(command: str) -> int:
    """Requests the server serves at once: gunicorn's workers x threads, as the Procfile gives them."""
    args = shlex.split(command)
    workers = int(args[args.index("--workers") + 1])
    threads = int(args[args.index("--threads") + 1])
    return workers * threads


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, data: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def database_connections() -> int:
    """Sessions on the test database other than this test's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.fixture
def web_server():
    command = procfile_web_command()
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",  # what `make run` uses
        "DATABASE_NAME": connection.settings_dict["NAME"],
        "WEB_PORT": str(port),
    }
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],  # honcho runs each Procfile line through the shell
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if get(f"{base}/healthz") == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"the web server did not start: {process.communicate()[0][-2000:]}")
    yield base, serving_capacity(command)
    os.killpg(process.pid, 15)
    try:
        process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.communicate()


def burst(base: str) -> list[int | str]:
    paths = ["/healthz", "/api/plans/", "/", "/accounts/login/"]
    start = threading.Barrier(BURST)
    statuses: list[int | str] = []

    def one(i: int):
        start.wait()
        try:
            if i % 10 == 9:  # log-in attempts write nothing but read the database
                statuses.append(get(f"{base}/api/auth/token", data=b'{"username": "nobody", "password": "x"}'))
            else:
                statuses.append(get(base + paths[i % len(paths)]))
        except OSError as exc:  # a reset or refused connection
            statuses.append(type(exc).__name__)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_a_burst_of_50_requests_is_answered_in_full_within_a_bounded_number_of_connections(web_server):
    base, capacity = web_server

    first = burst(base)
    after_first = database_connections()
    second = burst(base)
    after_second = database_connections()

    for statuses in (first, second):
        assert len(statuses) == BURST
        assert all(isinstance(s, int) and s < 500 for s in statuses), sorted(map(str, statuses))
        assert statuses.count(400) == sum(1 for i in range(BURST) if i % 10 == 9)  # the failed log-ins
    assert 0 < after_first <= capacity < BURST
    assert after_second <= capacity  # reused, not piled up
