"""The sandbox HTTP server: threads, keep-alive, auth, latency, rate caps and faults around the Iamport routes.

`SandboxServer(...).start()` serves in background threads (tests, dev runs); `serve_forever()` serves in
the foreground (the CLI). Besides the request threads it runs a scheduler thread (executes due schedules
about every 0.2 s of real time) and the webhook delivery workers. It counts API requests in flight per
endpoint (`inflight`) and refuses starts beyond a configured per-endpoint cap (`rate_limits`).
"""

import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from iamport_sandbox.admin import AdminApi, Reply
from iamport_sandbox.api import Answer, Call, IamportApi
from iamport_sandbox.clock import SandboxClock
from iamport_sandbox.errors import ApiError
from iamport_sandbox.faults import DEFAULT_RETRY_AFTER_S, FaultBoard
from iamport_sandbox.forms import parse_body, parse_query
from iamport_sandbox.ledger import Ledger
from iamport_sandbox.sdk import SDK_PATHS, render_sdk
from iamport_sandbox.store import Store
from iamport_sandbox.traffic import InflightCounter, RateLimiter
from iamport_sandbox.v2.api import V2Surface
from iamport_sandbox.webhooks import WebhookOutbox

DEFAULT_IMP_KEY = "imp_apikey"
DEFAULT_IMP_SECRET = "ekKoeW8RyKuT0zgaZsUtXXTLQ4AhPFW3ZGseDA6bkA5lamv9OqDMnxyeB9wqOsuO9W3Mx9YSJ4dTqJ3f"
DEFAULT_MERCHANT_CODE = "imp00000000"
SCHEDULER_TICK_S = 0.2
MAX_REQUEST_LOG = 100_000

UNAUTHORIZED = {"code": -1, "message": "Unauthorized", "response": None}


def _too_many_requests(retry_after: int, reason: str) -> tuple[dict, dict]:
    """The envelope and headers of a refused request (the `throttle` fault and the rate cap).

    Iamport publishes no rate limit and no 429 shape for api.iamport.kr
    (docs/iamport-v1.md#rate-limits-and-timeouts; PGs such as Daou ask merchants to stay at or under 50
    billing-key charges/s). This is the defensive assumption a client must survive: a refusal before any
    processing (nothing charged), HTTP 429, the usual envelope with code -1, and a Retry-After in whole seconds.
    """
    envelope = {
        "code": -1,
        "message": f"Too Many Requests (sandbox throttle): {reason}; retry after {retry_after} s",
        "response": None,
    }
    return envelope, {"Retry-After": str(retry_after)}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, app: "SandboxServer"):
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_open_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
            self._open.clear()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        if not self.app.stopping:
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "IamportSandbox/1.0"
    sys_version = ""
    timeout = 300  # idle keep-alive connections are closed after this
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle + delayed ACK adds ~40 ms.
    disable_nagle_algorithm = True

    def _dispatch(self) -> None:
        self.server.app.handle(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _dispatch

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format, *args):  # the app writes its own one-line log
        pass


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def _tokens_from(headers) -> list[str]:
    tokens = []
    auth = (headers.get("Authorization") or "").strip()
    if auth:
        tokens.append(auth[7:].strip() if auth.lower().startswith("bearer ") else auth)
    legacy = (headers.get("X-ImpTokenHeader") or "").strip()
    if legacy:
        tokens.append(legacy)
    return tokens


def _merchant_uids(body: dict, args: dict) -> list[str]:
    found = []
    for source in (args, body):
        value = source.get("merchant_uid")
        values = value if isinstance(value, list) else [value]
        found.extend(str(v) for v in values if isinstance(v, str | int) and v != "")
    schedules = body.get("schedules")
    if isinstance(schedules, dict):
        schedules = [schedules]
    if isinstance(schedules, list):
        found.extend(
            str(item["merchant_uid"]) for item in schedules if isinstance(item, dict) and item.get("merchant_uid")
        )
    return found


class SandboxServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        data_path=None,
        imp_key: str = DEFAULT_IMP_KEY,
        imp_secret: str = DEFAULT_IMP_SECRET,
        merchant_code: str = DEFAULT_MERCHANT_CODE,
        default_notice_url: str | None = None,
        log_requests: bool = False,
        v2: dict | None = None,
    ):
        self.host = host
        self.port = port
        self.merchant_code = merchant_code
        self.log_requests = log_requests
        self.store = Store(data_path)
        self.clock = SandboxClock(self.store)
        self.ledger = Ledger(self.store, imp_key=imp_key, imp_secret=imp_secret, merchant_code=merchant_code)
        self.api = IamportApi(self.ledger)
        self.admin = AdminApi(self)
        self.faults = FaultBoard()
        self.inflight = InflightCounter()
        self.rate_limits = RateLimiter()
        self.outbox = WebhookOutbox(self.store, self.clock, default_notice_url=default_notice_url)
        self.initial_notice_url = default_notice_url
        self.v2 = V2Surface(self, **(v2 or {}))  # PortOne V2 under /v2 (iamport_sandbox/v2)
        self.stopping = False
        self._httpd: _HTTPServer | None = None
        self._serving = False
        self._stop_event = threading.Event()
        self._executor_lock = threading.Lock()
        self._requests: list[dict] = []
        self._requests_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------------------------------

    def _bind(self) -> None:
        if self._httpd is None:
            self._httpd = _HTTPServer((self.host, self.port), self)
            self.ledger.base_url = self.url

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def _start_background(self) -> None:
        self.outbox.start()
        scheduler = threading.Thread(target=self._scheduler_loop, name="sandbox-scheduler", daemon=True)
        scheduler.start()
        self._threads.append(scheduler)

    def start(self) -> "SandboxServer":
        self._bind()
        self._start_background()
        self._serving = True
        serve = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="sandbox-http", daemon=True
        )
        serve.start()
        self._threads.append(serve)
        return self

    def serve_forever(self) -> None:
        self._bind()
        self._start_background()
        self._serving = True
        sys.stderr.write(f"iamport_sandbox listening on {self.url} (merchant code {self.merchant_code})\n")
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop accepting, release every held response, close open connections. Returns promptly."""
        if self.stopping:
            return
        self.stopping = True
        self._stop_event.set()
        self.faults.stop()
        self.outbox.stop()
        if self._httpd is not None:
            if self._serving:
                self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.drop_open_connections()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2)
        self.store.close()

    # -- schedules and clock -------------------------------------------------------------------------------

    def _scheduler_loop(self) -> None:
        while not self._stop_event.wait(SCHEDULER_TICK_S):
            try:
                self.run_due_schedules(synchronous=False)
            except Exception:
                if not self.stopping:
                    traceback.print_exc()

    def run_due_schedules(self, *, synchronous: bool, move_clock=None) -> tuple[list[dict], list[dict]]:
        """Optionally move the clock, then execute every due schedule in schedule_at order.

        One lock around "move + execute" so the background thread cannot execute (and deliver
        asynchronously) a schedule that fell due because of this clock move.
        """
        notices, executed = [], []
        with self._executor_lock:
            if move_clock is not None:
                move_clock()
            now = self.clock.now()
            while True:
                result = self.ledger.execute_next_due(now)
                if result is None:
                    break
                payment, notice = result
                notice = self.v2.ledger.adapt_schedule_notice(payment, notice)
                executed.append(payment)
                if notice is not None:
                    notices.append(notice)
                if notice is not None and not synchronous:
                    self.outbox.submit([notice])
        deliveries = self.outbox.submit(notices, synchronous=True) if synchronous else []
        return executed, deliveries

    def reset(self) -> None:
        self.faults.reset()
        self.rate_limits.clear()
        self.inflight.reset_peaks()
        with self._executor_lock:
            self.outbox.reset()
            self.store.wipe()
            self.clock.reset()
            self.v2.reset()
            self.outbox.default_notice_url = self.initial_notice_url
            self.outbox.content_type = "application/json"
            self.clear_request_log()

    # -- request log ---------------------------------------------------------------------------------------

    def _log_request(self, entry: dict) -> None:
        with self._requests_lock:
            entry["seq"] = len(self._requests) + 1
            if len(self._requests) < MAX_REQUEST_LOG:
                self._requests.append(entry)

    def request_log(self) -> list[dict]:
        with self._requests_lock:
            return [dict(entry) for entry in self._requests]

    def clear_request_log(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    # -- HTTP ----------------------------------------------------------------------------------------------

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        parts = urlsplit(handler.path)
        path, query = parts.path or "/", parse_query(parts.query)
        method = handler.command
        status, endpoint = 500, None
        try:
            raw = _read_body(handler)
            if self.v2.owns(path):
                status, endpoint = self.v2.handle(handler, method, path, query, raw)
            elif path == "/__sandbox__" or path.startswith("/__sandbox__/"):
                reply = self.admin.handle(method, path, query, raw, handler.headers)
                status, endpoint = reply.status, "sandbox"
                self._send(handler, reply)
            elif path in SDK_PATHS:
                status, endpoint = 200, "sdk.js"
                body = render_sdk(f"http://{handler.headers.get('Host') or self.url[7:]}")
                self._send(
                    handler,
                    Reply(200, body, "application/javascript; charset=utf-8", {"Cache-Control": "no-store"}),
                )
            else:
                status, endpoint = self._handle_api(handler, method, path, query, raw)
        except Exception as exc:
            if self.stopping:
                handler.close_connection = True
                return
            traceback.print_exc()
            status = 500
            envelope = {
                "code": -1,
                "message": f"sandbox internal error: {type(exc).__name__}",
                "response": None,
            }
            try:
                self._send(handler, Reply.json(500, envelope))
            except OSError:
                handler.close_connection = True
        finally:
            if self.log_requests:
                elapsed = (time.monotonic() - started) * 1000
                # Never the query string or the body: those may carry card data.
                sys.stderr.write(f"{method} {path} {status or '-'} {endpoint or '-'} {elapsed:.0f}ms\n")
                sys.stderr.flush()

    def _send(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(reply.body)

    def _handle_api(self, handler, method: str, path: str, query: dict, raw: bytes) -> tuple[int | None, str | None]:
        # Read before counting the request in flight: once a test sees it in flight, a release it sends
        # then must free it, even if the request has not reached its gate yet.
        arrived_epoch = self.faults.hold_epoch
        resolved = self.api.resolve(method, path)
        endpoint = resolved[0].endpoint if resolved[0] else None
        if endpoint is None:  # 404/405 have no endpoint name to count under
            return self._serve_api(handler, method, path, query, raw, resolved, arrived_epoch)
        self.inflight.enter(endpoint)
        try:
            return self._serve_api(handler, method, path, query, raw, resolved, arrived_epoch)
        finally:
            self.inflight.leave(endpoint)

    def _serve_api(
        self, handler, method: str, path: str, query: dict, raw: bytes, resolved: tuple, arrived_epoch: int
    ) -> tuple[int | None, str | None]:
        route, args, path_known = resolved
        if self.faults.latency_ms:
            self.faults.sleep(self.faults.latency_ms)
        endpoint = route.endpoint if route else None
        entry = {
            "method": method,
            "path": path,
            "endpoint": endpoint,
            "status": None,
            "merchant_uid": None,
            "merchant_uids": [],
            "customer_uid": args.get("customer_uid"),
            "fault": None,
            "at": self.clock.now(),
        }

        def answer(status: int, envelope: dict, headers: dict | None = None) -> tuple[int, str | None]:
            entry["status"] = status
            self._log_request(entry)
            self._send(handler, Reply.json(status, envelope, headers))
            return status, endpoint

        if endpoint != "getToken" and not any(
            self.ledger.token_valid(token, self.clock.now()) for token in _tokens_from(handler.headers)
        ):
            return answer(401, UNAUTHORIZED)
        if route is None:
            if path_known:
                return answer(405, {"code": -1, "message": "Method Not Allowed", "response": None})
            return answer(
                404,
                {
                    "code": -1,
                    "message": f"요청하신 API({method} {path})를 찾을 수 없습니다.",
                    "response": None,
                },
            )
        try:
            body = parse_body(raw, handler.headers.get("Content-Type", ""))
        except ApiError as exc:
            return answer(exc.http_status, exc.envelope())
        merchant_uids = _merchant_uids(body, args)
        entry.update(merchant_uids=merchant_uids, merchant_uid=merchant_uids[0] if merchant_uids else None)
        if entry["customer_uid"] is None and isinstance(body.get("customer_uid"), str):
            entry["customer_uid"] = body["customer_uid"]

        # The cap comes before faults: a refused request never started, so it must not use one up.
        refusal = self.rate_limits.admit(endpoint)
        if refusal is not None:
            retry_after, cap = refusal
            entry["fault"] = "rate_limit"
            envelope, headers = _too_many_requests(retry_after, f"more than {cap} {endpoint} requests in one second")
            return answer(429, envelope, headers)

        fault = self.faults.take(endpoint)
        if fault is not None:
            entry["fault"] = fault.mode
            if fault.mode == "delay":
                self.faults.sleep(fault.delay_ms or 0)
            elif fault.mode == "gate":
                # Then served normally: the gate only proves that calls overlap (see `inflight`).
                self.faults.hold(fault, arrived_epoch)
            elif fault.mode == "throttle":
                envelope, headers = _too_many_requests(
                    DEFAULT_RETRY_AFTER_S if fault.retry_after is None else fault.retry_after, "injected fault"
                )
                return answer(429, envelope, headers)
            elif fault.mode in ("http_500", "http_503"):
                status = 500 if fault.mode == "http_500" else 503
                message = "Internal Server Error" if status == 500 else "Service Unavailable"
                return answer(status, {"code": -1, "message": message, "response": None})
            elif fault.mode == "code_error":
                return answer(
                    200,
                    {
                        "code": -1,
                        "message": "[sandbox fault] 일시적인 오류가 발생했습니다. 잠시 후 다시 시도해주세요.",
                        "response": None,
                    },
                )
            elif fault.mode == "timeout_before_commit":
                return self._hold(handler, entry, fault, arrived_epoch)

        call = Call(method=method, args=args, query=query, body=body, now=self.clock.now())
        try:
            result = route.handler(call)
        except ApiError as exc:
            result = Answer(exc.response, status=exc.http_status, code=exc.code, message=exc.message)
        if result.notices:
            self.outbox.submit(result.notices)
        if fault is not None and fault.mode == "timeout_after_commit":
            return self._hold(handler, entry, fault, arrived_epoch)
        return answer(result.status, result.envelope())

    def _hold(self, handler, entry: dict, fault, arrived_epoch: int) -> tuple[None, str | None]:
        """A simulated timeout: nothing is answered; the connection is dropped after the hold."""
        self._log_request(entry)
        self.faults.hold(fault, arrived_epoch)
        handler.close_connection = True
        return None, entry["endpoint"]
