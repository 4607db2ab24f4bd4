"""Iamport (PortOne V1) REST adapter: the only module that speaks Iamport's API.

It joins two parts a second adapter can reuse or mirror: the transport rules of ``transport.py`` (one session
per thread, timeouts, a shared token refreshed once on 401, reads retried, writes never re-sent) and the JSON
mapping of ``iamport_mapping.py``. What is Iamport's own is here: the token exchange (``/users/getToken``, its
expiry measured with Iamport's clock so skew does not matter), the ``{code, message, response}`` envelope and
its error codes, and one method per endpoint. ``code == 0`` is not "paid": charge methods return the payment and
the caller reads ``status`` (docs/iamport-v1.md#tokens and the sections after it).

Logs go to ``billing.gateway``: method, path, HTTP status, Iamport code and elapsed ms, never request bodies.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests

from .base import (
    GatewayBillingKey,
    GatewayPayment,
    GatewayPrepared,
    GatewaySchedule,
    Page,
    ScheduleItem,
)
from .errors import GatewayAuthError, GatewayError, GatewayNotFound, GatewayRejected
from .iamport_mapping import as_list as _as_list
from .iamport_mapping import billing_key as _billing_key
from .iamport_mapping import compact as _compact
from .iamport_mapping import custom_data as _custom_data
from .iamport_mapping import int_or_none as _int_or_none
from .iamport_mapping import page as _page
from .iamport_mapping import payment as _payment
from .iamport_mapping import prepared as _prepared
from .iamport_mapping import schedule as _schedule
from .iamport_mapping import seg as _seg
from .iamport_mapping import to_int as _to_int
from .iamport_mapping import unix as _unix
from .iamport_mapping import won as _won
from .iamport_mapping import won_opt as _won_opt
from .transport import BearerToken, HttpTransport, Kind

logger = logging.getLogger("billing.gateway")

DEFAULT_BASE_URL = "https://api.iamport.kr"
TOKEN_REFRESH_MARGIN = 60.0  # seconds of remaining token life below which we fetch again
FIND_ALL_PAGE_LIMIT = 100
STATUS_PAGE_LIMIT_MAX = 1000  # /payments/status/{status}: `limit` at most 1000 (V1 schema)
STATUS_WINDOW_MAX_SECONDS = 90 * 24 * 3600  # and a window of at most 90 days
USER_AGENT = "kbilling-gateway/1 (+python-requests)"


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
        self.include_sandbox = include_sandbox
        self.channel_key = channel_key
        self.tier_code = tier_code
        self._clock = clock
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if tier_code:
            headers["Tier"] = tier_code
        self._transport = HttpTransport(
            name="Iamport",
            base_url=self.base_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            read_retries=read_retries,
            backoff=backoff,
            headers=headers,
            secrets=(imp_secret,),
        )
        self._token = BearerToken(self._fetch_token, clock=clock, margin=TOKEN_REFRESH_MARGIN)

    def __repr__(self) -> str:  # never show the secret
        return f"IamportGateway(base_url={self.base_url!r}, imp_key={self._imp_key!r})"

    # The transport's knobs, settable on the adapter (operators and tests tune them per instance).
    connect_timeout = property(
        lambda self: self._transport.connect_timeout, lambda self, v: setattr(self._transport, "connect_timeout", v)
    )
    read_timeout = property(
        lambda self: self._transport.read_timeout, lambda self, v: setattr(self._transport, "read_timeout", v)
    )
    read_retries = property(
        lambda self: self._transport.read_retries,
        lambda self, v: setattr(self._transport, "read_retries", max(int(v), 0)),
    )
    backoff = property(lambda self: self._transport.backoff, lambda self, v: setattr(self._transport, "backoff", v))

    def close(self) -> None:
        """Close every per-thread session opened so far."""
        self._transport.close()

    # ------------------------------------------------------------------ token

    def get_token(self) -> str:
        """Return a valid access token, fetching one (once, for all threads) when needed."""
        return self._token.get()

    def authenticate(self) -> None:
        self.get_token()

    def _fetch_token(self) -> tuple[str, float]:
        body = {"imp_key": self._imp_key, "imp_secret": self._imp_secret}
        data = self._call("POST", "/users/getToken", json_body=body, kind="token", auth=False)
        if not isinstance(data, Mapping) or not data.get("access_token"):
            raise GatewayAuthError("getToken returned no access_token", method="POST", path="/users/getToken")
        local_now = self._clock()
        expired_at = _to_int(data.get("expired_at"), "expired_at")
        server_now = data.get("now")
        # Remaining life according to Iamport's clock, mapped onto ours.
        remaining = expired_at - (_to_int(server_now, "now") if server_now is not None else local_now)
        return str(data["access_token"]), local_now + remaining

    # ------------------------------------------------------------------ Iamport's envelope

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
        return self._transport.send(
            method,
            path,
            kind=kind,
            params=params,
            json_body=json_body,
            token=self._token if auth else None,
            interpret=lambda resp, err_kw: _interpret(resp, err_kw, lookup=method == "GET"),
            code_of=lambda resp: (_envelope(resp) or {}).get("code"),
            message_of=lambda resp: (_envelope(resp) or {}).get("message"),
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


def _envelope(resp: requests.Response) -> dict[str, Any] | None:
    """Iamport's ``{code, message, response}``, or None for a body that is not one (parsed once per answer)."""
    cached = getattr(resp, "_iamport_envelope", False)
    if cached is not False:
        return cached
    try:
        data = resp.json()
    except ValueError:
        data = None
    envelope = data if isinstance(data, dict) and "code" in data else None
    resp._iamport_envelope = envelope  # type: ignore[attr-defined]
    return envelope


def _interpret(resp: requests.Response, err_kw: dict, *, lookup: bool) -> Any:
    """What an answer the transport did not retry means in Iamport's terms: the envelope's ``response``, or a
    GatewayError (a 404 or a "not found" text on a lookup is GatewayNotFound; any other code != 0 a refusal)."""
    status = resp.status_code
    envelope = _envelope(resp)
    code = envelope.get("code") if envelope is not None else None
    message = envelope.get("message") if envelope is not None else None
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
        if _is_not_found_message(message, lookup=lookup):
            raise GatewayNotFound(code_int, message, **err_kw)
        raise GatewayRejected(code_int, message, **err_kw)
    if status >= 300:
        raise GatewayError(f"unexpected HTTP {status} from Iamport", **err_kw)
    return envelope.get("response")
