"""Iamport (PortOne V1) REST adapter: the only module that speaks Iamport JSON.

Transport rules (why each holds: ``docs/iamport-v1.md#tokens`` and the sections after it):

* one ``requests.Session`` per thread, explicit ``(connect, read)`` timeouts on every call;
* the access token is cached for all threads, fetched by one thread at a time, and refreshed when less than
  60 s of its life is left (measured with Iamport's own ``now`` so clock skew does not matter);
* a 401 on an API call drops the token, fetches a new one and retries that call once (a 401 means the call
  was not processed, so this is safe for writes too);
* reads (GET) are retried with exponential backoff on connect errors, read timeouts and 5xx; writes are never
  retried: a 5xx or a dropped connection becomes ``GatewayUnavailable(maybe_processed=True)`` and a read
  timeout becomes ``GatewayTimeout`` (outcome unknown: reconcile by merchant_uid);
* ``code == 0`` is not "paid": charge methods return the payment and the caller reads ``status``.

Logs go to ``billing.gateway``: method, path, HTTP status, Iamport code and elapsed ms, never request bodies.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import requests
import urllib3.exceptions as u3

from .base import (
    GatewayBillingKey,
    GatewayCancel,
    GatewayPayment,
    GatewayPrepared,
    GatewaySchedule,
    Page,
    ScheduleItem,
)
from .errors import (
    GatewayAuthError,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    GatewayThrottled,
    GatewayTimeout,
    GatewayUnavailable,
    trim_body,
)

logger = logging.getLogger("billing.gateway")

DEFAULT_BASE_URL = "https://api.iamport.kr"
TOKEN_REFRESH_MARGIN = 60.0  # seconds of remaining token life below which we fetch again
FIND_ALL_PAGE_LIMIT = 100
STATUS_PAGE_LIMIT_MAX = 1000  # /payments/status/{status}: `limit` at most 1000 (V1 schema)
STATUS_WINDOW_MAX_SECONDS = 90 * 24 * 3600  # and a window of at most 90 days
USER_AGENT = "kbilling-gateway/1 (+python-requests)"

Kind = Literal["read", "write", "token"]

# Messages Iamport sends as HTTP 200 + code != 0 when the thing asked for does not exist.
# Lookups (GET) also accept the generic fragments; writes only the specific, known messages, so that e.g.
# "비인증결제모듈 사용정보를 찾을 수 없습니다." (no billing PG configured) is not mistaken for a missing key.
_NOT_FOUND_MESSAGES_ANY = (
    "존재하지 않는 결제정보",
    "등록된 정보를 찾을 수 없습니다",
    "취소할 결제건이 존재하지 않습니다",
    "등록되지 않은 구매자",
    "등록된 고객정보가 없습니다",
    "취소할 예약결제 기록이 존재하지 않습니다",
)
_NOT_FOUND_FRAGMENTS_LOOKUP = ("존재하지 않", "찾을 수 없", "not found", "등록되지 않", "없습니다")


def _is_not_found_message(message: str | None, *, lookup: bool) -> bool:
    if not message:
        return False
    lowered = message.lower()
    if any(m.lower() in lowered for m in _NOT_FOUND_MESSAGES_ANY):
        return True
    return lookup and any(f in lowered for f in _NOT_FOUND_FRAGMENTS_LOOKUP)


class _Token:
    __slots__ = ("expires_at_local", "value")

    def __init__(self, value: str, expires_at_local: float) -> None:
        self.value = value
        self.expires_at_local = expires_at_local


class IamportGateway:
    """A ``PaymentGateway`` talking to Iamport V1 over HTTPS. Thread-safe; share one instance per process."""

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        imp_key: str,
        imp_secret: str,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        include_sandbox: bool = False,
        channel_key: str | None = None,
        tier_code: str | None = None,
        read_retries: int = 2,
        backoff: float = 0.2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not imp_key or not imp_secret:
            raise ValueError("imp_key and imp_secret are required")
        self.base_url = base_url.rstrip("/")
        self._imp_key = imp_key
        self._imp_secret = imp_secret
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.include_sandbox = include_sandbox
        self.channel_key = channel_key
        self.tier_code = tier_code
        self.read_retries = max(int(read_retries), 0)
        self.backoff = backoff
        self._clock = clock
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._token: _Token | None = None
        self._token_lock = threading.Lock()

    def __repr__(self) -> str:  # never show the secret
        return f"IamportGateway(base_url={self.base_url!r}, imp_key={self._imp_key!r})"

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close every per-thread session opened so far."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
            if self.tier_code:
                session.headers["Tier"] = self.tier_code
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    # ------------------------------------------------------------------ token

    def get_token(self) -> str:
        """Return a valid access token, fetching one (once, for all threads) when needed."""
        token = self._token
        if token is not None and token.expires_at_local - self._clock() >= TOKEN_REFRESH_MARGIN:
            return token.value
        with self._token_lock:
            token = self._token
            if token is not None and token.expires_at_local - self._clock() >= TOKEN_REFRESH_MARGIN:
                return token.value
            self._token = self._fetch_token()
            return self._token.value

    def authenticate(self) -> None:
        self.get_token()

    def _drop_token(self, value: str) -> None:
        # Only drop the token that failed: another thread may already have fetched a fresh one.
        with self._token_lock:
            if self._token is not None and self._token.value == value:
                self._token = None

    def _fetch_token(self) -> _Token:
        body = {"imp_key": self._imp_key, "imp_secret": self._imp_secret}
        data = self._call("POST", "/users/getToken", json_body=body, kind="token", auth=False)
        if not isinstance(data, Mapping) or not data.get("access_token"):
            raise GatewayAuthError("getToken returned no access_token", method="POST", path="/users/getToken")
        local_now = self._clock()
        expired_at = _to_int(data.get("expired_at"), "expired_at")
        server_now = data.get("now")
        # Remaining life according to Iamport's clock, mapped onto ours.
        remaining = expired_at - (_to_int(server_now, "now") if server_now is not None else local_now)
        return _Token(str(data["access_token"]), local_now + remaining)

    # ------------------------------------------------------------------ transport

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        json_body: Mapping[str, Any] | None = None,
        kind: Kind,
        auth: bool = True,
    ) -> Any:
        """Send one logical request and return the envelope's ``response``; raise a GatewayError otherwise."""
        url = self.base_url + path
        attempts = 1 if kind == "write" else 1 + self.read_retries
        attempt = 0
        auth_retried = False
        while True:
            attempt += 1
            headers: dict[str, str] = {}
            token_value: str | None = None
            if auth:
                token_value = self.get_token()
                headers["Authorization"] = f"Bearer {token_value}"
            started = time.monotonic()
            try:
                resp = self._session().request(
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
                    f"Iamport connect timeout: {exc.__class__.__name__}",
                    maybe_processed=False,
                    method=method,
                    path=path,
                ) from None
            except requests.exceptions.ReadTimeout:
                self._log(method, path, None, None, started, level=logging.WARNING, note="read timeout")
                if kind == "write":
                    raise GatewayTimeout(
                        "Iamport did not answer in time: outcome unknown", method=method, path=path
                    ) from None
                if attempt < attempts:
                    self._sleep(attempt)
                    continue
                raise GatewayUnavailable(
                    "Iamport read timeout", maybe_processed=False, method=method, path=path
                ) from None
            except requests.exceptions.ConnectionError as exc:
                reached = _request_may_have_been_sent(exc)
                self._log(method, path, None, None, started, level=logging.WARNING, note="connection error")
                if kind != "write" and attempt < attempts:
                    self._sleep(attempt)
                    continue
                raise GatewayUnavailable(
                    "Iamport connection failed" + (" after the request was sent" if reached else ""),
                    maybe_processed=reached and kind == "write",
                    method=method,
                    path=path,
                ) from None
            except requests.exceptions.RequestException as exc:
                self._log(method, path, None, None, started, level=logging.WARNING, note="request error")
                raise GatewayUnavailable(
                    f"Iamport request failed: {exc.__class__.__name__}",
                    maybe_processed=kind == "write",
                    method=method,
                    path=path,
                ) from None

            status = resp.status_code
            envelope = _parse_envelope(resp)
            code = envelope.get("code") if envelope is not None else None
            message = envelope.get("message") if envelope is not None else None
            err_kw = {
                "method": method,
                "path": path,
                "status": status,
                "body": _LazyBody(resp, self._imp_secret, token_value),
            }
            # A "not found" is a normal answer for lookups; auth and server errors deserve attention.
            level = logging.WARNING if status >= 500 or status in (401, 429) else logging.INFO
            self._log(method, path, status, code, started, level=level)

            if status == 401:
                if auth and not auth_retried:
                    auth_retried = True
                    attempt -= 1  # the refresh retry does not consume a read retry
                    if token_value:
                        self._drop_token(token_value)
                    continue
                raise GatewayAuthError(f"Iamport authentication failed: {message or 'unauthorized'}", **err_kw)
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
                reason = message or "too many requests"
                raise GatewayThrottled(f"Iamport is throttling requests: {reason}", retry_after=retry_after, **err_kw)
            if status >= 500:
                if kind != "write" and attempt < attempts:
                    self._sleep(attempt)
                    continue
                raise GatewayUnavailable(
                    f"Iamport server error: {message or status}",
                    maybe_processed=kind == "write",
                    **err_kw,
                )
            if status == 404:
                raise GatewayNotFound(_int_or_none(code), message or "not found", **err_kw)
            if envelope is None:
                if status >= 400:
                    raise GatewayRejected(None, f"HTTP {status}", **err_kw)
                raise GatewayError("Iamport returned a non-JSON response", **err_kw)
            code_int = _int_or_none(code)
            if status == 207:  # partial success on multi-gets: return what was found
                return envelope.get("response")
            if status >= 400 or code_int != 0:
                if _is_not_found_message(message, lookup=method == "GET"):
                    raise GatewayNotFound(code_int, message, **err_kw)
                raise GatewayRejected(code_int, message, **err_kw)
            if status >= 300:
                raise GatewayError(f"unexpected HTTP {status} from Iamport", **err_kw)
            return envelope.get("response")

    def _sleep(self, attempt: int) -> None:
        if self.backoff > 0:
            time.sleep(self.backoff * (2 ** (attempt - 1)))

    @staticmethod
    def _log(
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
            "iamport %s %s status=%s code=%s elapsed_ms=%d%s",
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

    # ------------------------------------------------------------------ billing keys

    def issue_billing_key(
        self,
        *,
        customer_uid: str,
        card_number: str,
        expiry: str,
        birth: str | None = None,
        pwd_2digit: str | None = None,
        customer_name: str | None = None,
        customer_tel: str | None = None,
        customer_email: str | None = None,
        customer_addr: str | None = None,
        customer_postcode: str | None = None,
        customer_id: str | None = None,
        channel_key: str | None = None,
        pg: str | None = None,
    ) -> GatewayBillingKey:
        body = _compact(
            card_number=card_number,
            expiry=expiry,
            birth=birth,
            pwd_2digit=pwd_2digit,
            customer_name=customer_name,
            customer_tel=customer_tel,
            customer_email=customer_email,
            customer_addr=customer_addr,
            customer_postcode=customer_postcode,
            customer_id=customer_id,
            channel_key=channel_key or self.channel_key,
            pg=pg,
        )
        data = self._call("POST", f"/subscribe/customers/{_seg(customer_uid)}", json_body=body, kind="write")
        return _billing_key(data)

    def get_billing_key(self, *, customer_uid: str) -> GatewayBillingKey:
        data = self._call("GET", f"/subscribe/customers/{_seg(customer_uid)}", kind="read")
        return _billing_key(data)

    def get_billing_keys(self, *, customer_uids: Sequence[str]) -> list[GatewayBillingKey]:
        """Keys for the given ids; missing ids are simply absent from the result."""
        if isinstance(customer_uids, str):
            raise TypeError("customer_uids must be a sequence of strings")
        if not customer_uids:
            return []
        params = [("customer_uid[]", uid) for uid in customer_uids]
        try:
            data = self._call("GET", "/subscribe/customers", params=params, kind="read")
        except GatewayNotFound:
            return []
        return [_billing_key(item) for item in _as_list(data)]

    def delete_billing_key(self, *, customer_uid: str, reason: str | None = None) -> GatewayBillingKey:
        params = {"reason": reason} if reason else None
        data = self._call("DELETE", f"/subscribe/customers/{_seg(customer_uid)}", params=params, kind="write")
        return _billing_key(data)

    # ------------------------------------------------------------------ charges

    def charge_billing_key(
        self,
        *,
        customer_uid: str,
        merchant_uid: str,
        amount: int,
        name: str,
        tax_free: int = 0,
        vat_amount: int | None = None,
        notice_url: str | None = None,
        custom_data: str | Mapping[str, Any] | None = None,
        buyer_name: str | None = None,
        buyer_email: str | None = None,
        buyer_tel: str | None = None,
        card_quota: int | None = None,
    ) -> GatewayPayment:
        """Charge a stored key (``/subscribe/payments/again``). A decline returns status ``"failed"``."""
        body = _compact(
            customer_uid=customer_uid,
            merchant_uid=merchant_uid,
            amount=_won(amount, "amount"),
            name=name,
            tax_free=_won(tax_free, "tax_free"),
            vat_amount=_won_opt(vat_amount, "vat_amount"),
            notice_url=notice_url,
            custom_data=_custom_data(custom_data),
            buyer_name=buyer_name,
            buyer_email=buyer_email,
            buyer_tel=buyer_tel,
            card_quota=card_quota,
        )
        data = self._call("POST", "/subscribe/payments/again", json_body=body, kind="write")
        return _payment(data)

    def charge_onetime(
        self,
        *,
        merchant_uid: str,
        amount: int,
        card_number: str,
        expiry: str,
        birth: str | None = None,
        pwd_2digit: str | None = None,
        customer_uid: str | None = None,
        name: str | None = None,
        tax_free: int | None = None,
        vat_amount: int | None = None,
        notice_url: str | None = None,
        custom_data: str | Mapping[str, Any] | None = None,
        buyer_name: str | None = None,
        buyer_email: str | None = None,
        buyer_tel: str | None = None,
        card_quota: int | None = None,
        pg: str | None = None,
    ) -> GatewayPayment:
        """Key-in charge (``/subscribe/payments/onetime``); with ``customer_uid`` the card is also stored."""
        body = _compact(
            merchant_uid=merchant_uid,
            amount=_won(amount, "amount"),
            card_number=card_number,
            expiry=expiry,
            birth=birth,
            pwd_2digit=pwd_2digit,
            customer_uid=customer_uid,
            name=name,
            tax_free=_won_opt(tax_free, "tax_free"),
            vat_amount=_won_opt(vat_amount, "vat_amount"),
            notice_url=notice_url,
            custom_data=_custom_data(custom_data),
            buyer_name=buyer_name,
            buyer_email=buyer_email,
            buyer_tel=buyer_tel,
            card_quota=card_quota,
            pg=pg,
            channel_key=self.channel_key,
        )
        data = self._call("POST", "/subscribe/payments/onetime", json_body=body, kind="write")
        return _payment(data)

    # ------------------------------------------------------------------ schedules

    def schedule_charges(self, *, customer_uid: str, schedules: Sequence[ScheduleItem]) -> list[GatewaySchedule]:
        if not schedules:
            raise ValueError("schedules must not be empty")
        items = []
        for item in schedules:
            items.append(
                _compact(
                    merchant_uid=item.merchant_uid,
                    schedule_at=_unix(item.schedule_at),
                    currency=item.currency,
                    amount=_won(item.amount, "amount"),
                    name=item.name,
                    tax_free=_won_opt(item.tax_free, "tax_free"),
                    vat_amount=_won_opt(item.vat_amount, "vat_amount"),
                    custom_data=_custom_data(item.custom_data),
                    notice_url=item.notice_url,
                    buyer_name=item.buyer_name,
                    buyer_email=item.buyer_email,
                    buyer_tel=item.buyer_tel,
                )
            )
        body = {"customer_uid": customer_uid, "schedules": items}
        data = self._call("POST", "/subscribe/payments/schedule", json_body=body, kind="write")
        return [_schedule(s) for s in _as_list(data)]

    def unschedule_charges(
        self, *, customer_uid: str | None = None, merchant_uids: Sequence[str] | None = None
    ) -> list[GatewaySchedule]:
        """Revoke schedules: all of ``customer_uid``'s, or the listed ``merchant_uids``.

        Raises ``GatewayNotFound`` when there was nothing to revoke.
        """
        if isinstance(merchant_uids, str):
            raise TypeError("merchant_uids must be a sequence of strings")
        if not customer_uid and not merchant_uids:
            raise ValueError("give customer_uid and/or merchant_uids")
        body = _compact(customer_uid=customer_uid, merchant_uid=list(merchant_uids) if merchant_uids else None)
        data = self._call("POST", "/subscribe/payments/unschedule", json_body=body, kind="write")
        return [_schedule(s) for s in _as_list(data)]

    def get_schedule(self, *, merchant_uid: str) -> GatewaySchedule:
        data = self._call("GET", f"/subscribe/payments/schedule/{_seg(merchant_uid)}", kind="read")
        return _schedule(data)

    def find_schedules(
        self,
        *,
        schedule_from: dt.datetime,
        schedule_to: dt.datetime,
        status: str | None = None,
        page: int = 1,
        limit: int = 20,
        sorting: str | None = None,
    ) -> Page[GatewaySchedule]:
        """Schedules with ``schedule_from <= schedule_at < schedule_to`` (window of at most 3 months)."""
        params = _compact(
            schedule_from=_unix(schedule_from),
            schedule_to=_unix(schedule_to),
            schedule_status=status,
            page=page,
            limit=limit,
            sorting=sorting,
        )
        try:
            data = self._call("GET", "/subscribe/payments/schedule", params=params, kind="read")
        except GatewayNotFound:
            return Page(items=(), total=0, page=page)
        return _page(data, _schedule, page)

    def get_customer_schedules(
        self,
        *,
        customer_uid: str,
        from_: dt.datetime,
        to: dt.datetime,
        status: str | None = None,
        page: int = 1,
    ) -> Page[GatewaySchedule]:
        params = _compact(**{"from": _unix(from_), "to": _unix(to), "page": page, "schedule-status": status})
        try:
            data = self._call(
                "GET",
                f"/subscribe/payments/schedule/customers/{_seg(customer_uid)}",
                params=params,
                kind="read",
            )
        except GatewayNotFound:
            return Page(items=(), total=0, page=page)
        return _page(data, _schedule, page)

    # ------------------------------------------------------------------ payments

    def get_payment(self, *, imp_uid: str) -> GatewayPayment:
        params = {"include_sandbox": "true"} if self.include_sandbox else None
        data = self._call("GET", f"/payments/{_seg(imp_uid)}", params=params, kind="read")
        return _payment(data)

    def get_payments(self, *, imp_uids: Sequence[str] = (), merchant_uids: Sequence[str] = ()) -> list[GatewayPayment]:
        """Multi-get (≤100 ids in total); ids that are not found are simply absent."""
        if isinstance(imp_uids, str) or isinstance(merchant_uids, str):
            raise TypeError("imp_uids / merchant_uids must be sequences of strings")
        params = [("imp_uid[]", u) for u in imp_uids] + [("merchant_uid[]", u) for u in merchant_uids]
        if not params:
            return []
        if len(params) > 100:
            raise ValueError("Iamport accepts at most 100 ids per lookup")
        try:
            data = self._call("GET", "/payments", params=params, kind="read")
        except GatewayNotFound:
            return []
        return [_payment(p) for p in _as_list(data)]

    def find_payment(
        self, *, merchant_uid: str, status: str | None = None, sorting: str | None = None
    ) -> GatewayPayment | None:
        """The latest payment for ``merchant_uid`` (optionally in ``status``), or ``None``."""
        path = f"/payments/find/{_seg(merchant_uid)}" + (f"/{_seg(status)}" if status else "")
        params = {"sorting": sorting} if sorting else None
        try:
            data = self._call("GET", path, params=params, kind="read")
        except GatewayNotFound:
            return None
        return _payment(data) if data else None

    def find_payments(self, *, merchant_uid: str, status: str | None = None) -> list[GatewayPayment]:
        """Every payment record for ``merchant_uid`` (all pages of findAll); ``[]`` when there is none."""
        path = f"/payments/findAll/{_seg(merchant_uid)}" + (f"/{_seg(status)}" if status else "")
        result: list[GatewayPayment] = []
        page = 1
        while True:
            try:
                data = self._call("GET", path, params={"page": page, "limit": FIND_ALL_PAGE_LIMIT}, kind="read")
            except GatewayNotFound:
                return result
            parsed = _page(data, _payment, page)
            result.extend(parsed.items)
            if not parsed.next or parsed.next <= page or not parsed.items:
                return result
            page = parsed.next

    def list_payments(
        self,
        *,
        status: str = "all",
        from_: dt.datetime,
        to: dt.datetime,
        page: int = 1,
        limit: int = STATUS_PAGE_LIMIT_MAX,
        sorting: str | None = None,
    ) -> Page[GatewayPayment]:
        """One page of ``GET /payments/status/{status}?from&to&page&limit`` (``from``/``to`` inclusive UNIX
        seconds, at most 90 days apart; ``limit`` at most 1000). A read: retried like the others, and a 429
        waits for its Retry-After before the last try raises ``GatewayThrottled``."""
        if status not in ("all", "ready", "paid", "cancelled", "failed"):
            raise ValueError(f"unknown payment status {status!r}")
        if not 1 <= int(limit) <= STATUS_PAGE_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {STATUS_PAGE_LIMIT_MAX}")
        if page < 1:
            raise ValueError("page starts at 1")
        start, end = _unix(from_), _unix(to)
        if end < start:
            raise ValueError("to must not be before from_")
        if end - start > STATUS_WINDOW_MAX_SECONDS:
            raise ValueError("Iamport searches at most 90 days at a time")
        params = _compact(**{"from": start, "to": end, "page": page, "limit": int(limit), "sorting": sorting})
        try:
            data = self._call("GET", f"/payments/status/{_seg(status)}", params=params, kind="read")
        except GatewayNotFound:
            return Page(items=(), total=0, page=page)
        return _page(data, _payment, page)

    def cancel_payment(
        self,
        *,
        imp_uid: str | None = None,
        merchant_uid: str | None = None,
        amount: int | None = None,
        checksum: int | None = None,
        reason: str | None = None,
        tax_free: int | None = None,
        vat_amount: int | None = None,
        enable_webhook: bool = False,
    ) -> GatewayPayment:
        """Refund ``amount`` (``None``: all that is left); ``checksum``: the balance you expect."""
        if not imp_uid and not merchant_uid:
            raise ValueError("give imp_uid or merchant_uid")
        if amount is not None and _won(amount, "amount") <= 0:
            raise ValueError("amount must be positive (None cancels the whole balance)")
        body = _compact(
            imp_uid=imp_uid,
            merchant_uid=merchant_uid,
            amount=amount,
            checksum=_won_opt(checksum, "checksum"),
            reason=reason,
            tax_free=_won_opt(tax_free, "tax_free"),
            vat_amount=_won_opt(vat_amount, "vat_amount"),
            enable_webhook=True if enable_webhook else None,
        )
        data = self._call("POST", "/payments/cancel", json_body=body, kind="write")
        return _payment(data)

    def prepare_payment(self, *, merchant_uid: str, amount: int, currency: str | None = None) -> GatewayPrepared:
        body = _compact(merchant_uid=merchant_uid, amount=_won(amount, "amount"), currency=currency)
        data = self._call("POST", "/payments/prepare", json_body=body, kind="write")
        return _prepared(data)

    def get_prepared_payment(self, *, merchant_uid: str) -> GatewayPrepared:
        data = self._call("GET", f"/payments/prepare/{_seg(merchant_uid)}", kind="read")
        return _prepared(data)


# ---------------------------------------------------------------------- helpers: transport


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


def _parse_envelope(resp: requests.Response) -> dict[str, Any] | None:
    try:
        data = resp.json()
    except ValueError:
        return None
    if isinstance(data, dict) and "code" in data:
        return data
    return None


def _seg(value: str) -> str:
    if not value:
        raise ValueError("path identifiers must be non-empty")
    return quote(str(value), safe="")


def _compact(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _custom_data(value: str | Mapping[str, Any] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _unix(value: dt.datetime) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetimes sent to Iamport must be timezone-aware")
    return int(value.timestamp())


# ---------------------------------------------------------------------- helpers: money


def _won(value: Any, field: str) -> int:
    """Validate an outgoing amount: a non-negative int of won (bools and floats refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an int of won, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{field} must not be negative")
    return value


def _won_opt(value: Any, field: str) -> int | None:
    return None if value is None else _won(value, field)


def _to_int(value: Any, field: str) -> int:
    """Convert an Iamport number to int, refusing anything that is not integral."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise GatewayError(f"Iamport sent a boolean for {field}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise GatewayError(f"Iamport sent a non-integral {field}: {value!r}")
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise GatewayError(f"Iamport sent a non-numeric {field}: {value[:40]!r}") from None
        return _to_int(number, field)
    raise GatewayError(f"Iamport sent an unexpected type for {field}: {type(value).__name__}")


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not used by APIs like this one: treated as absent)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < 3600 else None


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------- helpers: parsing


def _ts(value: Any) -> dt.datetime | None:
    seconds = _to_int(value, "timestamp") if value not in (None, "") else 0
    if seconds == 0:
        return None
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _json_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _require(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise GatewayError(f"Iamport returned no {what} object")
    return data


def _as_list(data: Any) -> list[Any]:
    if data is None:
        return []
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping) and isinstance(data.get("list"), list):
        return data["list"]
    raise GatewayError("Iamport returned an unexpected list shape")


def _payment(data: Any) -> GatewayPayment:
    p = _require(data, "payment")
    history = tuple(
        GatewayCancel(
            amount=_to_int(c.get("amount"), "cancel_history.amount"),
            cancelled_at=_ts(c.get("cancelled_at")),
            reason=_str(c.get("reason")),
            pg_tid=_str(c.get("pg_tid")),
            cancellation_id=_str(c.get("cancellation_id")),
            receipt_url=_str(c.get("receipt_url")),
        )
        for c in (p.get("cancel_history") or ())
        if isinstance(c, Mapping)
    )
    return GatewayPayment(
        imp_uid=str(p.get("imp_uid") or ""),
        merchant_uid=str(p.get("merchant_uid") or ""),
        status=str(p.get("status") or ""),
        amount=_to_int(p.get("amount"), "amount"),
        cancel_amount=_to_int(p.get("cancel_amount"), "cancel_amount"),
        currency=str(p.get("currency") or "KRW"),
        name=_str(p.get("name")),
        fail_reason=_str(p.get("fail_reason")),
        cancel_reason=_str(p.get("cancel_reason")),
        paid_at=_ts(p.get("paid_at")),
        failed_at=_ts(p.get("failed_at")),
        cancelled_at=_ts(p.get("cancelled_at")),
        started_at=_ts(p.get("started_at")),
        customer_uid=_str(p.get("customer_uid")),
        customer_uid_usage=_str(p.get("customer_uid_usage")),
        pay_method=_str(p.get("pay_method")),
        pg_provider=_str(p.get("pg_provider")),
        pg_id=_str(p.get("pg_id")),
        pg_tid=_str(p.get("pg_tid")),
        apply_num=_str(p.get("apply_num")),
        card_name=_str(p.get("card_name")),
        card_number=_str(p.get("card_number")),
        receipt_url=_str(p.get("receipt_url")),
        sandbox=bool(p.get("sandbox", False)),
        custom_data=_json_str(p.get("custom_data")),
        cancel_history=history,
    )


def _billing_key(data: Any) -> GatewayBillingKey:
    k = _require(data, "billing key")
    card_type = k.get("card_type")
    return GatewayBillingKey(
        customer_uid=str(k.get("customer_uid") or ""),
        pg_provider=_str(k.get("pg_provider")),
        pg_id=_str(k.get("pg_id")),
        card_name=_str(k.get("card_name")),
        card_code=_str(k.get("card_code")),
        card_number=_str(k.get("card_number")),
        card_type=None if card_type in (None, "") else _to_int(card_type, "card_type"),
        sandbox=bool(k.get("sandbox", False)),
        customer_id=_str(k.get("customer_id")),
        customer_name=_str(k.get("customer_name")),
        customer_tel=_str(k.get("customer_tel")),
        customer_email=_str(k.get("customer_email")),
        customer_addr=_str(k.get("customer_addr")),
        customer_postcode=_str(k.get("customer_postcode")),
        inserted=_ts(k.get("inserted")),
        updated=_ts(k.get("updated")),
    )


def _schedule(data: Any) -> GatewaySchedule:
    s = _require(data, "schedule")
    return GatewaySchedule(
        customer_uid=str(s.get("customer_uid") or ""),
        merchant_uid=str(s.get("merchant_uid") or ""),
        imp_uid=_str(s.get("imp_uid")),
        schedule_at=_ts(s.get("schedule_at")),
        executed_at=_ts(s.get("executed_at")),
        revoked_at=_ts(s.get("revoked_at")),
        amount=_to_int(s.get("amount"), "amount"),
        currency=str(s.get("currency") or "KRW"),
        name=_str(s.get("name")),
        schedule_status=str(s.get("schedule_status") or ""),
        payment_status=_str(s.get("payment_status")),
        fail_reason=_str(s.get("fail_reason")),
        custom_data=_json_str(s.get("custom_data")),
    )


def _prepared(data: Any) -> GatewayPrepared:
    d = _require(data, "prepared payment")
    return GatewayPrepared(
        merchant_uid=str(d.get("merchant_uid") or ""),
        amount=_to_int(d.get("amount"), "amount"),
        currency=_str(d.get("currency")),
    )


def _page(data: Any, parse: Callable[[Any], Any], page: int) -> Page[Any]:
    if isinstance(data, list) or data is None:
        items = tuple(parse(x) for x in (data or ()))
        return Page(items=items, total=len(items), page=page)
    d = _require(data, "page")
    raw: Iterable[Any] = d.get("list") or ()
    items = tuple(parse(x) for x in raw)
    previous = _to_int(d.get("previous"), "previous") or None
    nxt = _to_int(d.get("next"), "next") or None
    total = _to_int(d.get("total"), "total") if d.get("total") is not None else len(items)
    return Page(items=items, total=total, page=page, previous=previous, next=nxt)
