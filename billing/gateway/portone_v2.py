"""PortOne V2 REST adapter: the only module that speaks PortOne V2 JSON.

It talks to `https://api.portone.io` (or the sandbox's `/v2`) with `requests`, not with `portone-server-sdk`'s
clients, because the SDK's clients are worse on the three things our V1 client guarantees (README, "PortOne
V2"): its `httpx.Client(timeout=60)` cannot be given our connect/read timeouts; it never reads the HTTP
status (a 5xx or 429 whose body is not one of the endpoint's documented error types becomes `UnknownError`,
and a non-JSON body from a proxy raises `JSONDecodeError`), so "refused before processing" (429) cannot be
told from "may have charged" (5xx, dropped connection). The SDK's `webhook.verify` is used for incoming
webhooks (billing.views), and the contract suite drives the SDK against the sandbox.

Ids on the port: a V2 billing key is the port's `customer_uid`; our `merchant_uid` is V2's `paymentId`, and
since V2 looks payments up by `paymentId` it is also the port's `imp_uid`.

Outcomes (docs/architecture.md#errors): 200 on a charge is paid for the amount sent; `PG_PROVIDER` (502 with that type)
on a charge is a decline, returned as a failed payment; `ALREADY_PAID` means this paymentId was charged by an
earlier call, so the outcome is to be reconciled, never re-sent; 401/403 are auth errors; 429 is throttled;
other 5xx, dropped connections and read timeouts on writes may have been processed. Reads are retried with
backoff; writes never are.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import requests

from .base import GatewayBillingKey, GatewayCancel, GatewayPayment, GatewayPrepared, GatewaySchedule, Page, ScheduleItem
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
from .iamport_mapping import won as _won
from .iamport_mapping import won_opt as _won_opt
from .transport import HttpTransport, _request_may_have_been_sent, _retry_after

logger = logging.getLogger("billing.gateway")

DEFAULT_BASE_URL = "https://api.portone.io"
USER_AGENT = "kbilling-gateway/1 (+python-requests; portone-v2)"
V2_BILLING_KEY_PREFIX = "billing-key-"  # what PortOne's (and the sandbox's) billing keys start with
_FAR_PAST = "2000-01-01T00:00:00Z"
_FAR_FUTURE = "2100-01-01T00:00:00Z"
_NOT_FOUND = {"BILLING_KEY_NOT_FOUND", "PAYMENT_NOT_FOUND", "PAYMENT_SCHEDULE_NOT_FOUND", "BILLING_KEY_ALREADY_DELETED"}
_STATUS = {
    "PAID": "paid",
    "PARTIAL_CANCELLED": "paid",  # the port's (V1's) reading: a partial refund keeps the payment paid
    "CANCELLED": "cancelled",
    "FAILED": "failed",
}
_SCHEDULE_STATUS = {"SCHEDULED": "scheduled", "REVOKED": "revoked", "SUCCEEDED": "executed", "FAILED": "executed"}

Kind = Literal["read", "write"]


class PortOneV2Gateway:
    """A ``PaymentGateway`` talking to PortOne V2. Thread-safe; share one instance per process."""

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_secret: str,
        store_id: str | None = None,
        channel_key: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        notice_url: str | None = None,
        read_retries: int = 2,
        backoff: float = 0.2,
    ) -> None:
        if not api_secret:
            raise ValueError("api_secret is required")
        self.base_url = base_url.rstrip("/")
        self._secret = api_secret
        self.store_id = store_id
        self.channel_key = channel_key
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        # Our V2 webhook endpoint: V2 webhooks are verified there, so a charge asks for them to go there
        # whatever (V1) notice URL the payments service passes.
        self.notice_url = notice_url
        self.read_retries = max(int(read_retries), 0)
        self.backoff = backoff
        # Sessions per thread come from the shared transport (billing/gateway/transport.py); V2's request loop
        # stays here because V2 answers in its own typed errors.
        self._transport = HttpTransport(
            name="PortOne",
            base_url=self.base_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            read_retries=read_retries,
            backoff=backoff,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT, "Authorization": f"PortOne {api_secret}"},
            secrets=(api_secret,),
        )

    def __repr__(self) -> str:  # never show the secret
        return f"PortOneV2Gateway(base_url={self.base_url!r}, store_id={self.store_id!r})"

    def close(self) -> None:
        """Close every per-thread session opened so far."""
        self._transport.close()

    def _session(self) -> requests.Session:
        return self._transport.session()

    def authenticate(self) -> None:
        """V2 sends the API secret on every call: there is no token to fetch."""

    # ------------------------------------------------------------------ transport

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        kind: Kind,
    ) -> Any:
        url = self.base_url + path
        params = dict(query or {})
        if self.store_id and method in ("GET", "DELETE") and "storeId" not in params and "requestBody" not in params:
            params["storeId"] = self.store_id
        attempts = 1 if kind == "write" else 1 + self.read_retries
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                resp = self._session().request(
                    method,
                    url,
                    params=params or None,
                    json=body if method == "POST" else None,
                    timeout=(self.connect_timeout, self.read_timeout),
                    allow_redirects=False,
                )
            except requests.exceptions.ConnectTimeout:
                self._log(method, path, None, None, started, note="connect timeout")
                if attempt < attempts:
                    self._sleep(attempt)
                    continue
                raise GatewayUnavailable(
                    "PortOne connect timeout", maybe_processed=False, method=method, path=path
                ) from None
            except requests.exceptions.ReadTimeout:
                self._log(method, path, None, None, started, note="read timeout")
                if kind == "write":
                    raise GatewayTimeout(
                        "PortOne did not answer in time: outcome unknown", method=method, path=path
                    ) from None
                if attempt < attempts:
                    self._sleep(attempt)
                    continue
                raise GatewayUnavailable(
                    "PortOne read timeout", maybe_processed=False, method=method, path=path
                ) from None
            except requests.exceptions.ConnectionError as exc:
                reached = _request_may_have_been_sent(exc)
                self._log(method, path, None, None, started, note="connection error")
                if kind != "write" and attempt < attempts:
                    self._sleep(attempt)
                    continue
                raise GatewayUnavailable(
                    "PortOne connection failed" + (" after the request was sent" if reached else ""),
                    maybe_processed=reached and kind == "write",
                    method=method,
                    path=path,
                ) from None
            except requests.exceptions.RequestException as exc:
                self._log(method, path, None, None, started, note="request error")
                raise GatewayUnavailable(
                    f"PortOne request failed: {exc.__class__.__name__}",
                    maybe_processed=kind == "write",
                    method=method,
                    path=path,
                ) from None

            status = resp.status_code
            data = _json(resp)
            error_type = data.get("type") if isinstance(data, dict) and status >= 400 else None
            self._log(method, path, status, error_type, started)
            if status < 300:
                if data is None:
                    raise GatewayError("PortOne returned a non-JSON response", method=method, path=path, status=status)
                return data
            err = {
                "method": method,
                "path": path,
                "status": status,
                "body": trim_body(resp.text, secrets=(self._secret,)),
            }
            message = str(data.get("message") or "") if isinstance(data, dict) else ""
            if status in (401, 403) or error_type in ("UNAUTHORIZED", "FORBIDDEN"):
                raise GatewayAuthError(f"PortOne refused the credentials: {error_type or status} {message}", **err)
            if status == 429:
                retry_after = _retry_after(resp.headers.get("Retry-After"))
                if kind != "write" and attempt < attempts:
                    time.sleep(min(retry_after, 5.0) if retry_after is not None else self.backoff * attempt)
                    continue
                raise GatewayThrottled(f"PortOne is throttling requests: {message}", retry_after=retry_after, **err)
            if error_type == "PG_PROVIDER" or error_type == "CHANNEL_SPECIFIC":
                # A documented answer from the PG (card company): not a server failure. Callers decide.
                raise _PgProvider(data, **err)
            if status >= 500 or error_type is None:
                if kind != "write" and attempt < attempts:
                    self._sleep(attempt)
                    continue
                raise GatewayUnavailable(
                    f"PortOne server error: {message or status}", maybe_processed=kind == "write", **err
                )
            if error_type in _NOT_FOUND:
                raise GatewayNotFound(error_type, message, **err)
            raise GatewayRejected(error_type, message, **err)

    def _sleep(self, attempt: int) -> None:
        if self.backoff > 0:
            time.sleep(self.backoff * (2 ** (attempt - 1)))

    @staticmethod
    def _log(method: str, path: str, status: int | None, error_type: Any, started: float, note: str = "") -> None:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        level = logging.WARNING if status is None or status >= 500 or status in (401, 403, 429) else logging.INFO
        logger.log(
            level,
            "portone_v2 %s %s status=%s type=%s elapsed_ms=%d%s",
            method,
            path,
            status,
            error_type,
            elapsed_ms,
            f" ({note})" if note else "",
            extra={
                "gateway_method": method,
                "gateway_path": path,
                "gateway_status": status,
                "gateway_code": error_type,
                "gateway_elapsed_ms": elapsed_ms,
            },
        )

    def _with_store(self, body: dict) -> dict:
        if self.store_id:
            body["storeId"] = self.store_id
        return body

    # ------------------------------------------------------------------ billing keys

    def issue_billing_key(
        self,
        *,
        customer_uid: str | None = None,
        card_number: str,
        expiry: str,
        birth: str | None = None,
        pwd_2digit: str | None = None,
        customer_name: str | None = None,
        customer_tel: str | None = None,
        customer_email: str | None = None,
        customer_id: str | None = None,
    ) -> GatewayBillingKey:
        """Issue a key from card data (server-side issuance; the browser SDK is the usual way). PortOne names
        the key: the returned ``customer_uid`` is it, whatever ``customer_uid`` was passed."""
        year, _, month = expiry.partition("-")
        credential = _compact(
            number=card_number.replace("-", "").replace(" ", ""),
            expiryYear=year[-2:],
            expiryMonth=month,
            birthOrBusinessRegistrationNumber=birth,
            passwordTwoDigits=pwd_2digit,
        )
        body = self._with_store(
            _compact(
                method={"card": {"credential": credential}},
                channelKey=self.channel_key,
                customer=_customer(customer_id, customer_name, customer_email, customer_tel) or None,
            )
        )
        try:
            data = self._call("POST", "/billing-keys", body=body, kind="write")
        except _PgProvider as exc:
            raise GatewayRejected(exc.pg_code, exc.pg_message or exc.gateway_message, **exc.where) from None
        return self.get_billing_key(customer_uid=data["billingKeyInfo"]["billingKey"])

    def get_billing_key(self, *, customer_uid: str) -> GatewayBillingKey:
        data = self._call("GET", f"/billing-keys/{_seg(customer_uid)}", kind="read")
        if data.get("status") == "DELETED":
            raise GatewayNotFound("BILLING_KEY_ALREADY_DELETED", "the billing key was deleted", method="GET")
        return _billing_key(data)

    def get_billing_keys(self, *, customer_uids: Sequence[str]) -> list[GatewayBillingKey]:
        found = []
        for uid in customer_uids:
            try:
                found.append(self.get_billing_key(customer_uid=uid))
            except GatewayNotFound:
                continue
        return found

    def delete_billing_key(self, *, customer_uid: str, reason: str | None = None) -> GatewayBillingKey:
        query = {"reason": reason} if reason else {}
        try:
            self._call("DELETE", f"/billing-keys/{_seg(customer_uid)}", query=query, kind="write")
        except _PgProvider as exc:
            raise GatewayRejected(exc.pg_code, exc.pg_message or exc.gateway_message, **exc.where) from None
        return GatewayBillingKey(customer_uid=customer_uid)

    # ------------------------------------------------------------------ payments

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
        custom_data: str | None = None,
        buyer_name: str | None = None,
        buyer_email: str | None = None,
        buyer_tel: str | None = None,
        card_quota: int | None = None,
    ) -> GatewayPayment:
        total = _won(amount, "amount")
        body = self._with_store(
            _compact(
                billingKey=customer_uid,
                channelKey=self.channel_key,
                orderName=name,
                amount=_compact(total=total, taxFree=_won_opt(tax_free, "tax_free"), vat=_won_opt(vat_amount, "vat")),
                currency="KRW",
                customer=_customer(None, buyer_name, buyer_email, buyer_tel) or None,
                customData=custom_data,
                installmentMonth=card_quota,
                noticeUrls=[self.notice_url or notice_url] if (self.notice_url or notice_url) else None,
            )
        )
        path = f"/payments/{_seg(merchant_uid)}/billing-key"
        try:
            data = self._call("POST", path, body=body, kind="write")
        except _PgProvider as exc:
            # The card company declined: PortOne recorded a FAILED payment under this paymentId.
            return GatewayPayment(
                imp_uid=merchant_uid,
                merchant_uid=merchant_uid,
                status="failed",
                amount=total,
                name=name,
                fail_reason=exc.pg_message or exc.gateway_message,
                customer_uid=customer_uid,
                pay_method="card",
            )
        except GatewayRejected as exc:
            if exc.code == "ALREADY_PAID":
                # An earlier call with this paymentId was charged: never book or retry blindly, reconcile.
                raise GatewayUnavailable(
                    "PortOne says this paymentId is already paid: reconcile it",
                    maybe_processed=True,
                    method=exc.method,
                    path=exc.path,
                    status=exc.status,
                    body=exc.body,
                ) from None
            raise
        summary = data.get("payment") or {}
        return GatewayPayment(
            imp_uid=merchant_uid,
            merchant_uid=merchant_uid,
            status="paid",
            amount=total,
            name=name,
            paid_at=_time(summary.get("paidAt")),
            pg_tid=summary.get("pgTxId"),
            customer_uid=customer_uid,
            customer_uid_usage="payment",
            pay_method="card",
        )

    def charge_onetime(self, **kwargs) -> GatewayPayment:
        raise GatewayRejected("NOT_SUPPORTED", "one-off card charges are not used on PortOne V2")

    def get_payment(self, *, imp_uid: str) -> GatewayPayment:
        return _payment(self._call("GET", f"/payments/{_seg(imp_uid)}", kind="read"))

    def get_payments(self, *, imp_uids: Sequence[str] = (), merchant_uids: Sequence[str] = ()) -> list[GatewayPayment]:
        if isinstance(imp_uids, str) or isinstance(merchant_uids, str):
            raise TypeError("imp_uids / merchant_uids must be sequences of strings")
        found = []
        for payment_id in dict.fromkeys([*imp_uids, *merchant_uids]):
            try:
                found.append(self.get_payment(imp_uid=payment_id))
            except GatewayNotFound:
                continue
        return found

    def find_payment(self, *, merchant_uid: str, status: str | None = None) -> GatewayPayment | None:
        found = self.find_payments(merchant_uid=merchant_uid, status=status)
        return found[0] if found else None

    def find_payments(self, *, merchant_uid: str, status: str | None = None) -> list[GatewayPayment]:
        """V2 keeps one payment per paymentId: ``[]`` or that one (in ``status`` when given)."""
        try:
            payment = self.get_payment(imp_uid=merchant_uid)
        except GatewayNotFound:
            return []
        return [payment] if status is None or payment.status == status else []

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
        """Refund ``amount`` (``None``: the rest); ``checksum`` is sent as ``currentCancellableAmount``."""
        payment_id = imp_uid or merchant_uid
        if not payment_id:
            raise ValueError("give imp_uid or merchant_uid")
        if amount is not None and _won(amount, "amount") <= 0:
            raise ValueError("amount must be positive (None cancels the whole balance)")
        body = self._with_store(
            _compact(
                amount=amount,
                taxFreeAmount=_won_opt(tax_free, "tax_free"),
                vatAmount=_won_opt(vat_amount, "vat_amount"),
                currentCancellableAmount=_won_opt(checksum, "checksum"),
                reason=reason or "취소",
                skipWebhook=None if enable_webhook else True,
            )
        )
        try:
            self._call("POST", f"/payments/{_seg(payment_id)}/cancel", body=body, kind="write")
        except _PgProvider as exc:
            raise GatewayRejected(exc.pg_code, exc.pg_message or exc.gateway_message, **exc.where) from None
        try:
            return self.get_payment(imp_uid=payment_id)
        except GatewayError as exc:
            # Cancelled, but we cannot see the result: the refund is settled by reconciliation.
            raise GatewayUnavailable(
                f"cancelled, then the payment could not be read: {exc}", maybe_processed=True, method="GET"
            ) from None

    def prepare_payment(self, *, merchant_uid: str, amount: int) -> GatewayPrepared:
        raise GatewayRejected("NOT_SUPPORTED", "amount pre-registration is not used on PortOne V2")

    def get_prepared_payment(self, *, merchant_uid: str) -> GatewayPrepared:
        raise GatewayRejected("NOT_SUPPORTED", "amount pre-registration is not used on PortOne V2")

    # ------------------------------------------------------------------ schedules

    def schedule_charges(self, *, customer_uid: str, schedules: Sequence[ScheduleItem]) -> list[GatewaySchedule]:
        """One V2 schedule per item (V2 has no batch call); stops at the first refusal."""
        created = []
        for item in schedules:
            payment = self._with_store(
                _compact(
                    billingKey=customer_uid,
                    channelKey=self.channel_key,
                    orderName=item.name,
                    amount=_compact(
                        total=_won(item.amount, "amount"),
                        taxFree=_won_opt(item.tax_free, "tax_free"),
                        vat=_won_opt(item.vat_amount, "vat_amount"),
                    ),
                    currency=item.currency,
                    customer=_customer(None, item.buyer_name, item.buyer_email, item.buyer_tel) or None,
                    customData=item.custom_data,
                    noticeUrls=[self.notice_url or item.notice_url] if (self.notice_url or item.notice_url) else None,
                )
            )
            body = {"payment": payment, "timeToPay": _rfc3339(item.schedule_at)}
            self._call("POST", f"/payments/{_seg(item.merchant_uid)}/schedule", body=body, kind="write")
            created.append(
                GatewaySchedule(
                    customer_uid=customer_uid,
                    merchant_uid=item.merchant_uid,
                    schedule_at=item.schedule_at,
                    amount=item.amount,
                    schedule_status="scheduled",
                    name=item.name,
                    custom_data=item.custom_data,
                )
            )
        return created

    def _schedules(self, flt: dict, *, number: int = 0, size: int = 100) -> tuple[list[GatewaySchedule], int, dict]:
        request = {"page": {"number": number, "size": size}, "filter": self._with_store(flt)}
        query = {"requestBody": json.dumps(request, separators=(",", ":"))}
        data = self._call("GET", "/payment-schedules", query=query, kind="read")
        raw = data.get("items") or []
        return [_schedule(s) for s in raw], int((data.get("page") or {}).get("totalCount") or len(raw)), data

    def unschedule_charges(
        self, *, customer_uid: str | None = None, merchant_uids: Sequence[str] | None = None
    ) -> list[GatewaySchedule]:
        if customer_uid is None and not merchant_uids:
            raise ValueError("give customer_uid or merchant_uids")
        flt: dict = {"from": _FAR_PAST, "until": _FAR_FUTURE, "status": ["SCHEDULED"]}
        if customer_uid:
            flt["billingKey"] = customer_uid
        pending, _, data = self._schedules(flt, size=1000)
        ids = [
            s["id"] for s in (data.get("items") or []) if not merchant_uids or s.get("paymentId") in set(merchant_uids)
        ]
        if not ids:
            raise GatewayNotFound("PAYMENT_SCHEDULE_NOT_FOUND", "no pending schedule to revoke", method="DELETE")
        request = self._with_store({"scheduleIds": ids})
        if customer_uid:
            request["billingKey"] = customer_uid
        self._call(
            "DELETE",
            "/payment-schedules",
            query={"requestBody": json.dumps(request, separators=(",", ":"))},
            kind="write",
        )
        revoked = [s for s in pending if not merchant_uids or s.merchant_uid in set(merchant_uids)]
        now = dt.datetime.now(dt.UTC)
        return [
            GatewaySchedule(
                customer_uid=s.customer_uid,
                merchant_uid=s.merchant_uid,
                schedule_at=s.schedule_at,
                amount=s.amount,
                schedule_status="revoked",
                revoked_at=now,
                name=s.name,
            )
            for s in revoked
        ]

    def get_schedule(self, *, merchant_uid: str) -> GatewaySchedule:
        items, _, _ = self._schedules({"from": _FAR_PAST, "until": _FAR_FUTURE}, size=1000)
        for item in items:
            if item.merchant_uid == merchant_uid:
                return item
        raise GatewayNotFound("PAYMENT_SCHEDULE_NOT_FOUND", "no schedule for this paymentId", method="GET")

    def find_schedules(
        self,
        *,
        schedule_from: dt.datetime,
        schedule_to: dt.datetime,
        status: str | None = None,
        page: int = 1,
        limit: int = 20,
    ) -> Page[GatewaySchedule]:
        flt: dict = {"from": _rfc3339(schedule_from), "until": _rfc3339(schedule_to)}
        if status:
            flt["status"] = [k for k, v in _SCHEDULE_STATUS.items() if v == status]
        items, total, _ = self._schedules(flt, number=page - 1, size=limit)
        return Page(
            items=tuple(items),
            total=total,
            page=page,
            previous=page - 1 if page > 1 else None,
            next=page + 1 if page * limit < total else None,
        )

    def get_customer_schedules(
        self,
        *,
        customer_uid: str,
        from_: dt.datetime,
        to: dt.datetime,
        status: str | None = None,
        page: int = 1,
    ) -> Page[GatewaySchedule]:
        flt: dict = {"billingKey": customer_uid, "from": _rfc3339(from_), "until": _rfc3339(to)}
        if status:
            flt["status"] = [k for k, v in _SCHEDULE_STATUS.items() if v == status]
        items, total, _ = self._schedules(flt, number=page - 1, size=20)
        return Page(items=tuple(items), total=total, page=page, next=page + 1 if page * 20 < total else None)


# ---------------------------------------------------------------------- helpers


class _PgProvider(GatewayRejected):
    """PG_PROVIDER / CHANNEL_SPECIFIC: the PG itself answered (a decline on a charge)."""

    def __init__(self, data: Mapping[str, Any], **where) -> None:
        self.pg_code = str(data.get("pgCode") or "") or None
        self.pg_message = str(data.get("pgMessage") or "") or None
        self.where = where
        super().__init__(str(data.get("type")), str(data.get("message") or ""), **where)


def _json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _seg(value: str) -> str:
    if not value:
        raise ValueError("path identifiers must be non-empty")
    return quote(str(value), safe="")


def _compact(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _customer(customer_id, name, email, tel) -> dict:
    return _compact(id=customer_id, name={"full": name} if name else None, email=email, phoneNumber=tel)


def _rfc3339(value: dt.datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetimes sent to PortOne must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(value: Any) -> dt.datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise GatewayError(f"PortOne sent an unreadable time: {value[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _amount(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GatewayError(f"PortOne sent a non-integral {field}: {value!r}")
    return value


def _payment(data: Mapping[str, Any]) -> GatewayPayment:
    v2_status = str(data.get("status") or "")
    amount = data.get("amount") or {}
    card = (data.get("method") or {}).get("card") or {}
    channel = data.get("channel") or {}
    failure = data.get("failure") or {}
    history = tuple(
        GatewayCancel(
            amount=_amount(c.get("totalAmount"), "cancellation.totalAmount"),
            cancelled_at=_time(c.get("cancelledAt") or c.get("requestedAt")),
            reason=c.get("reason") or None,
            pg_tid=c.get("pgCancellationId"),
            cancellation_id=c.get("id"),
            receipt_url=c.get("receiptUrl"),
        )
        for c in (data.get("cancellations") or ())
        if isinstance(c, Mapping) and c.get("status") == "SUCCEEDED"
    )
    cancellations = data.get("cancellations") or []
    return GatewayPayment(
        imp_uid=str(data.get("id") or ""),
        merchant_uid=str(data.get("id") or ""),
        status=_STATUS.get(v2_status, "ready"),
        amount=_amount(amount.get("total", 0), "amount.total"),
        cancel_amount=_amount(amount.get("cancelled", 0), "amount.cancelled"),
        currency=str(data.get("currency") or "KRW"),
        name=data.get("orderName"),
        fail_reason=failure.get("pgMessage") or failure.get("reason"),
        cancel_reason=(cancellations[-1].get("reason") if cancellations else None) or None,
        paid_at=_time(data.get("paidAt")),
        failed_at=_time(data.get("failedAt")),
        cancelled_at=_time(data.get("cancelledAt")) if v2_status == "CANCELLED" else None,
        started_at=_time(data.get("requestedAt")),
        customer_uid=data.get("billingKey"),
        customer_uid_usage=("payment.scheduled" if data.get("scheduleId") else "payment")
        if data.get("billingKey")
        else None,
        pay_method="card" if card or data.get("billingKey") else None,
        pg_provider=channel.get("pgProvider"),
        pg_id=channel.get("pgMerchantId"),
        pg_tid=data.get("pgTxId"),
        card_name=card.get("name"),
        card_number=card.get("number"),
        receipt_url=data.get("receiptUrl"),
        sandbox=channel.get("type") == "TEST",
        custom_data=data.get("customData"),
        cancel_history=history,
    )


def _billing_key(data: Mapping[str, Any]) -> GatewayBillingKey:
    methods = data.get("methods") or []
    card = next((m.get("card") or {} for m in methods if m.get("type") == "BillingKeyPaymentMethodCard"), {})
    channels = data.get("channels") or [{}]
    customer = data.get("customer") or {}
    return GatewayBillingKey(
        customer_uid=str(data.get("billingKey") or ""),
        pg_provider=channels[0].get("pgProvider"),
        pg_id=channels[0].get("pgMerchantId"),
        card_name=card.get("name"),
        card_number=card.get("number"),
        sandbox=channels[0].get("type") == "TEST",
        customer_id=customer.get("id"),
        customer_name=customer.get("name") if isinstance(customer.get("name"), str) else None,
        customer_email=customer.get("email"),
        customer_tel=customer.get("phoneNumber"),
        inserted=_time(data.get("issuedAt")),
    )


def _schedule(data: Mapping[str, Any]) -> GatewaySchedule:
    status = str(data.get("status") or "")
    return GatewaySchedule(
        customer_uid=str(data.get("billingKey") or ""),
        merchant_uid=str(data.get("paymentId") or ""),
        imp_uid=str(data.get("paymentId")) if status in ("SUCCEEDED", "FAILED") else None,
        schedule_at=_time(data.get("timeToPay")),
        executed_at=_time(data.get("completedAt")),
        revoked_at=_time(data.get("revokedAt")),
        amount=_amount(data.get("totalAmount", 0), "totalAmount"),
        currency=str(data.get("currency") or "KRW"),
        name=data.get("orderName"),
        schedule_status=_SCHEDULE_STATUS.get(status, status.lower()),
        payment_status={"SUCCEEDED": "paid", "FAILED": "failed"}.get(status),
        custom_data=data.get("customData") or None,
    )
