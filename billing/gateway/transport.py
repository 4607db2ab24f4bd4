"""What every gateway adapter needs from HTTP, whatever the gateway's JSON: the transport rules.

* one ``requests.Session`` per thread, explicit ``(connect, read)`` timeouts on every call;
* a bearer token (``BearerToken``) cached for all threads, fetched by one thread at a time, refreshed when
  little of its life is left, and dropped and fetched again once when a call answers 401 (a 401 means the call
  was not processed, so this is safe for writes too);
* reads are retried with exponential backoff on connect errors, read timeouts, 5xx and 429 (``Retry-After``
  honoured up to 5 s); writes are never re-sent: a 5xx or a dropped connection after the request left is
  ``GatewayUnavailable(maybe_processed=True)`` and a read timeout is ``GatewayTimeout`` (outcome unknown);
* logs name the gateway, method, path, HTTP status, the gateway's code and elapsed ms, never bodies or secrets.

The adapter hands ``send`` a function that reads the answer in the gateway's own terms (its envelope, its error
types) and returns data or raises a ``GatewayError``: see ``iamport.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import requests
import urllib3.exceptions as u3

from .errors import GatewayAuthError, GatewayThrottled, GatewayTimeout, GatewayUnavailable, trim_body

logger = logging.getLogger("billing.gateway")

Kind = Literal["read", "write", "token"]


class BearerToken:
    """An access token shared by every thread of an adapter: fetched by one thread at a time with `fetch`
    (which returns the token and its expiry on `clock`'s scale), and fetched again when less than `margin`
    seconds of its life are left or after `drop`."""

    def __init__(self, fetch: Callable[[], tuple[str, float]], *, clock: Callable[[], float], margin: float):
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        self._lock = threading.Lock()
        self._value: str | None = None
        self._expires_at = 0.0

    def get(self) -> str:
        value = self._value
        if value is not None and self._expires_at - self._clock() >= self._margin:
            return value
        with self._lock:
            if self._value is not None and self._expires_at - self._clock() >= self._margin:
                return self._value
            self._value, self._expires_at = self._fetch()
            return self._value

    def drop(self, value: str) -> None:
        """Forget `value` (it was refused); another thread may already have fetched a fresh one."""
        with self._lock:
            if self._value == value:
                self._value = None


class HttpTransport:
    """One gateway's HTTP client. Thread-safe; one per adapter instance."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        connect_timeout: float,
        read_timeout: float,
        read_retries: int,
        backoff: float,
        headers: Mapping[str, str],
        secrets: Sequence[str | None] = (),
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.read_retries = max(int(read_retries), 0)
        self.backoff = backoff
        self._headers = dict(headers)
        self._secrets = tuple(secrets)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def close(self) -> None:
        """Close every per-thread session opened so far."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update(self._headers)
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def send(
        self,
        method: str,
        path: str,
        *,
        kind: Kind,
        interpret: Callable[[requests.Response, dict], Any],
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        json_body: Mapping[str, Any] | None = None,
        token: BearerToken | None = None,
        auth_scheme: str = "Bearer",
        code_of: Callable[[requests.Response], Any] = lambda resp: None,
        message_of: Callable[[requests.Response], str | None] = lambda resp: None,
    ) -> Any:
        """Send one logical request (retried as the rules above allow) and return what `interpret` makes of
        the final answer. `interpret(resp, err_kw)` sees every answer that is not a 401, a retried 429 or 5xx;
        `err_kw` carries method, path, status and a lazily scrubbed body for the errors it raises."""
        url = self.base_url + path
        attempts = 1 if kind == "write" else 1 + self.read_retries
        attempt = 0
        auth_retried = False
        name = self.name
        while True:
            attempt += 1
            headers: dict[str, str] = {}
            token_value: str | None = None
            if token is not None:
                token_value = token.get()
                headers["Authorization"] = f"{auth_scheme} {token_value}"
            started = time.monotonic()
            try:
                resp = self.session().request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers=headers,
                    timeout=(self.connect_timeout, self.read_timeout),
                    allow_redirects=False,
                )
            except requests.exceptions.ConnectTimeout as exc:
                self._log(method, path, None, None, started, level=logging.WARNING, note="connect timeout")
                if attempt < attempts:
                    self._sleep(attempt)
                    continue
                raise GatewayUnavailable(
                    f"{name} connect timeout: {exc.__class__.__name__}", maybe_processed=False, method=method, path=path
                ) from None
            except requests.exceptions.ReadTimeout:
                self._log(method, path, None, None, started, level=logging.WARNING, note="read timeout")
                if kind == "write":
                    raise GatewayTimeout(
                        f"{name} did not answer in time: outcome unknown", method=method, path=path
                    ) from None
                if attempt < attempts:
                    self._sleep(attempt)
                    continue
                raise GatewayUnavailable(
                    f"{name} read timeout", maybe_processed=False, method=method, path=path
                ) from None
            except requests.exceptions.ConnectionError as exc:
                reached = _request_may_have_been_sent(exc)
                self._log(method, path, None, None, started, level=logging.WARNING, note="connection error")
                if kind != "write" and attempt < attempts:
                    self._sleep(attempt)
                    continue
                raise GatewayUnavailable(
                    f"{name} connection failed" + (" after the request was sent" if reached else ""),
                    maybe_processed=reached and kind == "write",
                    method=method,
                    path=path,
                ) from None
            except requests.exceptions.RequestException as exc:
                self._log(method, path, None, None, started, level=logging.WARNING, note="request error")
                raise GatewayUnavailable(
                    f"{name} request failed: {exc.__class__.__name__}",
                    maybe_processed=kind == "write",
                    method=method,
                    path=path,
                ) from None

            status = resp.status_code
            err_kw = {
                "method": method,
                "path": path,
                "status": status,
                "body": _LazyBody(resp, *self._secrets, token_value),
            }
            # A "not found" is a normal answer for lookups; auth and server errors deserve attention.
            level = logging.WARNING if status >= 500 or status in (401, 429) else logging.INFO
            self._log(method, path, status, code_of(resp), started, level=level)

            if status == 401:
                if token is not None and not auth_retried:
                    auth_retried = True
                    attempt -= 1  # the refresh retry does not consume a read retry
                    if token_value:
                        token.drop(token_value)
                    continue
                raise GatewayAuthError(f"{name} authentication failed: {message_of(resp) or 'unauthorized'}", **err_kw)
            if status == 429:
                retry_after = _retry_after(resp.headers.get("Retry-After"))
                if kind != "write" and attempt < attempts:
                    # A read may wait and go again; a write never does here, its caller decides
                    # (docs/architecture.md#gateway-sandbox-and-payment-states).
                    if retry_after is None:
                        self._sleep(attempt)
                    else:
                        time.sleep(min(retry_after, 5.0))
                    continue
                reason = message_of(resp) or "too many requests"
                raise GatewayThrottled(f"{name} is throttling requests: {reason}", retry_after=retry_after, **err_kw)
            if status >= 500:
                if kind != "write" and attempt < attempts:
                    self._sleep(attempt)
                    continue
                raise GatewayUnavailable(
                    f"{name} server error: {message_of(resp) or status}", maybe_processed=kind == "write", **err_kw
                )
            return interpret(resp, err_kw)

    def _sleep(self, attempt: int) -> None:
        if self.backoff > 0:
            time.sleep(self.backoff * (2 ** (attempt - 1)))

    def _log(
        self,
        method: str,
        path: str,
        status: int | None,
        code: Any,
        started: float,
        *,
        level: int,
        note: str | None = None,
    ) -> None:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        logger.log(
            level,
            "%s %s %s status=%s code=%s elapsed_ms=%d%s",
            self.name.lower(),
            method,
            path,
            status,
            code,
            elapsed_ms,
            f" ({note})" if note else "",
            extra={
                "gateway_method": method,
                "gateway_path": path,
                "gateway_status": status,
                "gateway_code": code,
                "gateway_elapsed_ms": elapsed_ms,
            },
        )


class _LazyBody:
    """Trimmed, scrubbed response text, computed only when an error is actually raised."""

    __slots__ = ("_resp", "_secrets")

    def __init__(self, resp: requests.Response, *secrets: str | None) -> None:
        self._resp = resp
        self._secrets = secrets

    def __str__(self) -> str:
        return trim_body(self._resp.text, secrets=self._secrets) or ""


def _request_may_have_been_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """False only when the TCP connection could not be opened (nothing reached Iamport)."""
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, u3.NewConnectionError | u3.NameResolutionError | u3.ConnectTimeoutError):
            return False
        if isinstance(cur, u3.MaxRetryError) and cur.reason is not None:
            cur = cur.reason
            continue
        nxt = cur.args[0] if cur.args and isinstance(cur.args[0], BaseException) else None
        cur = nxt or cur.__cause__ or cur.__context__
    return True


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not used by APIs like this one: treated as absent)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < 3600 else None
