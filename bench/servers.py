"""A PostgreSQL server and a Redis server that a benchmark owns, so it can stop and start them (bench/chaos.py).

- `PostgresCluster`: a fresh cluster in a temp dir, initialised by pgserver (which ships the binaries and runs
  them as its own system user when we are root), then served by `pg_ctl` on 127.0.0.1 and a free TCP port.
  `stop("fast")` is a clean shutdown (sessions closed, checkpoint); `stop("immediate")` is a crash (no
  checkpoint: the next start replays the WAL). Never the machine's own PostgreSQL service.
- `RedisServer`: `redis-server` on a free port with its files in a temp dir and `appendonly yes`
  (`appendfsync everysec`, the production setting): a restart keeps the queues. `stop(crash=True)` is SIGKILL,
  which can lose the last second of writes; without append-only persistence a restart loses every queued
  and unacknowledged task.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, *, up: bool, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not go {'up' if up else 'down'} within {timeout:.0f}s")


class PostgresCluster:
    def __init__(self, workdir: Path | None = None):
        import logging
        import warnings

        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        logging.getLogger("pgserver").setLevel(logging.WARNING)
        import pgserver
        from pgserver import _commands

        self._pg_ctl = _commands.pg_ctl
        self.root = Path(tempfile.mkdtemp(prefix="kbilling-pg-", dir=workdir))
        # pgserver runs PostgreSQL as its own system user when we are root: it must reach the data directory.
        os.chmod(self.root, 0o755)  # noqa: S103 - a temp dir of the benchmark's, no secrets
        self.pgdata = self.root / "pgdata"
        server = pgserver.get_server(str(self.pgdata), cleanup_mode=None)  # initdb + a socket-only start
        self.user = server.system_user  # None, or pgserver's own user when we are root
        self._pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.user, timeout=60)
        self.port = _free_port()
        self.log = self.pgdata / "server.log"
        self.running = False
        self.start()

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} -c max_connections=200"
        self._pg_ctl(
            ["-w", "-t", "60", "-o", options, "-l", str(self.log), "start"], pgdata=self.pgdata, user=self.user
        )
        _wait_port(self.port, up=True)
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """mode: "fast" (clean shutdown) or "immediate" (a crash: recovery on the next start)."""
        self._pg_ctl(["-w", "-t", "60", "-m", mode, "stop"], pgdata=self.pgdata, user=self.user)
        self.running = False

    def destroy(self) -> None:
        if self.running:
            try:
                self.stop("immediate")
            except subprocess.CalledProcessError as exc:  # already gone
                sys.stderr.write(f"PostgreSQL stop at cleanup: {exc}\n")
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    def __init__(self, workdir: Path | None = None, *, appendonly: bool = True):
        self.dir = Path(tempfile.mkdtemp(prefix="kbilling-redis-", dir=workdir))
        self.port = _free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        args += ["--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec", "--save", ""]
        args += ["--logfile", str(self.dir / "redis.log")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, up=True)

    def stop(self, *, crash: bool = False) -> None:
        """SIGTERM: Redis flushes the append-only file and exits; `crash`: SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
        self.process.wait(timeout=30)
        _wait_port(self.port, up=False)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
