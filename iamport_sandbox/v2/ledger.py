"""PortOne V2 operations over the V1 ledger's store and rules.

A V2 billing key is a row of the V1 `customers` table whose `customer_uid` is the billing key PortOne issued
(`billing-key-sbx-000000000001`, …) and whose extra data carries the V2 facts (store, channel, customer, when
it was issued or deleted). A V2 payment is a row of the `payments` table whose `merchant_uid` is the
`paymentId` the merchant chose; its V2 facts (billing key, store, channel, notice URLs, schedule id) sit in
`meta` under `v2pay:<paymentId>`. A V2 payment schedule is a row of `schedules` (merchant_uid = paymentId)
with its V2 id in its extra data and `meta` `v2sched:<id>` pointing back. So the V1 rules hold for V2 too:
the same test cards decline the same way, a paymentId is paid at most once, the sandbox clock runs the
schedules, and `/__sandbox__/payments` shows both.

Times on the wire are RFC 3339 strings in UTC; the ledger keeps UNIX seconds. Each operation is one short
transaction. Where PortOne's docs leave a behaviour open, the most defensive documented reading is taken
and said so next to the code (and in the README's V2 section).
"""

import datetime as dt
import json
import sqlite3
import time
from dataclasses import dataclass, field

from iamport_sandbox import cards
from iamport_sandbox.errors import ApiError
from iamport_sandbox.ledger import BUYER_LIMITS, PG_ID, Ledger, default_vat
from iamport_sandbox.v2 import signing
from iamport_sandbox.webhooks import Notice

DEFAULT_API_SECRET = "portone-v2-sandbox-api-secret"
DEFAULT_STORE_ID = "store-00000000-0000-0000-0000-000000000000"
DEFAULT_CHANNEL_KEY = "channel-key-sandbox-v2"
MERCHANT_ID = "merchant-00000000-0000-0000-0000-000000000000"
PG_PROVIDER_V2 = "NICEPAY_V2"
LIST_WINDOW_S = 90 * 24 * 3600  # GET /payment-schedules: from/until default to the past 90 days

# The sandbox's own PG codes for the test cards' declines (PortOne passes the PG's code through unchanged).
PG_CODES = {
    cards.FAIL_REASONS[cards.INSUFFICIENT_FUNDS]: "51",
    cards.FAIL_REASONS[cards.LIMIT_EXCEEDED]: "61",
    cards.FAIL_REASONS[cards.LOST_CARD]: "43",
}


class V2Error(Exception):
    """A V2 error answer: `{"type": ..., "message": ...}` (plus `pgCode`/`pgMessage` for PG_PROVIDER)."""

    def __init__(self, status: int, type_: str, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.extra = extra
        self.notices: list[Notice] = []

    def body(self) -> dict:
        return {"type": self.type, "message": self.message, **self.extra}


def invalid(message: str) -> V2Error:
    return V2Error(400, "INVALID_REQUEST", message)


@dataclass
class V2Answer:
    body: dict
    status: int = 200
    notices: list[Notice] = field(default_factory=list)


def iso(ts: int | None) -> str | None:
    if not ts:
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value, name: str) -> int:
    if not isinstance(value, str) or not value:
        raise invalid(f"{name} must be an RFC 3339 date-time string")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"{name} must be an RFC 3339 date-time string") from None
    if moment.tzinfo is None:
        raise invalid(f"{name} must carry a UTC offset")
    return int(moment.timestamp())


def _str(body: dict, name: str, *, required: bool = False, limit: int | None = None) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise invalid(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string")
    if limit is not None and len(value) > limit:
        raise invalid(f"{name} must be at most {limit} characters")
    return value


def _int(body: dict, name: str, *, required: bool = False, minimum: int = 0) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{name} must be an integer")
    if value < minimum:
        raise invalid(f"{name} must be at least {minimum}")
    return value


def _customer_in(value) -> dict:
    """CustomerInput -> the V1 buyer_* fields the ledger keeps (name.full, email, phoneNumber)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid("customer must be an object")
    name = value.get("name")
    full = name.get("full") if isinstance(name, dict) else None
    return {
        "id": value.get("id") if isinstance(value.get("id"), str) else None,
        "name": full if isinstance(full, str) else None,
        "email": value.get("email") if isinstance(value.get("email"), str) else None,
        "phoneNumber": value.get("phoneNumber") if isinstance(value.get("phoneNumber"), str) else None,
    }


def _customer_out(customer: dict | None) -> dict:
    return {k: v for k, v in (customer or {}).items() if v is not None}


class V2Ledger:
    def __init__(self, ledger: Ledger, *, api_secret: str, store_id: str, channel_keys: tuple[str, ...]):
        self.ledger = ledger
        self.store = ledger.store
        self.api_secret = api_secret
        self.store_id = store_id
        self.channel_keys = channel_keys

    # == helpers ===========================================================================================

    @staticmethod
    def _meta(db: sqlite3.Connection, key: str) -> dict | None:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"]) if row else None

    @staticmethod
    def _put_meta(db: sqlite3.Connection, key: str, value: dict) -> None:
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value, ensure_ascii=False))
        )

    def _channel(self, channel_key: str | None) -> dict:
        return {
            "type": "TEST",
            "id": "channel-id-sandbox-v2",
            "key": channel_key or self.channel_keys[0],
            "name": "iamport_sandbox (NICE 테스트)",
            "pgProvider": PG_PROVIDER_V2,
            "pgMerchantId": PG_ID,
        }

    def _check_channel(self, channel_key: str | None) -> None:
        if channel_key is not None and channel_key not in self.channel_keys:
            raise V2Error(404, "CHANNEL_NOT_FOUND", f"channel {channel_key} not found")

    def _v2_key(self, db: sqlite3.Connection, billing_key: str) -> tuple[dict, dict]:
        found = self.ledger._key(db, billing_key)
        if found is None:
            # A deleted V2 key leaves the customers table (as a V1 deletion does) and is kept here, DELETED.
            deleted = self._meta(db, f"v2deleted:{billing_key}")
            found = (deleted["key"], deleted["extra"]) if deleted else None
        if found is None or "v2" not in found[1]:
            raise V2Error(404, "BILLING_KEY_NOT_FOUND", "빌링키가 존재하지 않습니다.")
        return found

    def _scheduled_on_key(self, db: sqlite3.Connection, billing_key: str) -> bool:
        return (
            db.execute(
                "SELECT 1 FROM schedules WHERE customer_uid = ? AND schedule_status = 'scheduled' LIMIT 1",
                (billing_key,),
            ).fetchone()
            is not None
        )

    def is_v2_payment(self, payment_id: str) -> bool:
        with self.store.read() as db:
            return self._meta(db, f"v2pay:{payment_id}") is not None

    # == billing keys ======================================================================================

    def issue_billing_key(self, body: dict, now: int, *, source: str = "v2_api") -> dict:
        self._check_channel(_str(body, "channelKey"))
        if _str(body, "channelKey") is None and _str(body, "channelGroupId") is None:
            # PortOne picks the store's default channel when neither is given; the sandbox has no console
            # to set one, so it refuses (the stricter reading).
            raise invalid("channelKey or channelGroupId is required")
        method = body.get("method")
        card = method.get("card") if isinstance(method, dict) else None
        credential = card.get("credential") if isinstance(card, dict) else None
        if not isinstance(credential, dict):
            raise invalid("method.card.credential is required (only card billing keys are simulated)")
        number = (_str(credential, "number", required=True) or "").replace("-", "").replace(" ", "")
        year = _str(credential, "expiryYear", required=True) or ""
        month = _str(credential, "expiryMonth", required=True) or ""
        if not (number.isdigit() and len(number) == 16):
            raise V2Error(
                502, "PG_PROVIDER", "PG사에서 오류가 발생했습니다.", pgCode="F113", pgMessage=cards.MSG_INVALID_NUMBER
            )
        if not (len(year) == 2 and year.isdigit() and len(month) == 2 and month.isdigit()):
            raise invalid("expiryYear and expiryMonth must be two digits each")
        customer = _customer_in(body.get("customer"))
        channel_key = _str(body, "channelKey") or self.channel_keys[0]
        try:
            profile = cards.inspect_card(
                card_number="-".join(number[i : i + 4] for i in range(0, 16, 4)),
                expiry=f"20{year}-{month}",
                birth=_str(credential, "birthOrBusinessRegistrationNumber"),
                pwd_2digit=_str(credential, "passwordTwoDigits"),
                now=now,
            )
        except ApiError as exc:
            # The card company refused the card: V2 answers 502 PG_PROVIDER with the PG's code and message.
            raise V2Error(
                502, "PG_PROVIDER", "PG사에서 오류가 발생했습니다.", pgCode="F0005", pgMessage=exc.message
            ) from None
        with self.store.tx() as db:
            seq = self.store.next_seq(db, "v2key")
            billing_key = f"billing-key-sbx-{seq:012d}"
            self.ledger._upsert_key(
                db,
                customer_uid=billing_key,
                profile=profile,
                customer={
                    "customer_name": customer.get("name"),
                    "customer_email": customer.get("email"),
                    "customer_tel": customer.get("phoneNumber"),
                },
                customer_id=customer.get("id"),
                now=now,
                source=source,
                channel_key=channel_key,
            )
            key, extra = self.ledger._key(db, billing_key)
            extra["v2"] = {
                "storeId": self.store_id,
                "channelKey": channel_key,
                "customer": customer,
                "issuedAt": now,
                "deletedAt": None,
                "customData": _str(body, "customData"),
            }
            self.ledger._save_key(db, key, extra)
        return {
            "billingKeyInfo": {
                "billingKey": billing_key,
                "issuedAt": iso(now),
                "channels": [self._channel(channel_key)],
            }
        }

    def _key_json(self, key: dict, extra: dict) -> dict:
        v2 = extra["v2"]
        data = {
            "status": "DELETED" if v2.get("deletedAt") else "ISSUED",
            "billingKey": key["customer_uid"],
            "merchantId": MERCHANT_ID,
            "storeId": v2["storeId"],
            "methods": [
                {
                    "type": "BillingKeyPaymentMethodCard",
                    "card": {
                        "name": key.get("card_name"),
                        "number": key.get("card_number"),
                        "type": "CREDIT",
                        "ownerType": "PERSONAL",
                        "bin": (key.get("card_number") or "")[:4] + (key.get("card_number") or "")[5:7],
                    },
                }
            ],
            "channels": [self._channel(v2.get("channelKey"))],
            "customer": _customer_out(v2.get("customer")),
            "issuedAt": iso(v2["issuedAt"]),
            "isForTest": True,
        }
        if v2.get("customData") is not None:
            data["customData"] = v2["customData"]
        if v2.get("deletedAt"):
            data["deletedAt"] = iso(v2["deletedAt"])
        return data

    def get_billing_key(self, billing_key: str) -> dict:
        with self.store.read() as db:
            key, extra = self._v2_key(db, billing_key)
        return self._key_json(key, extra)

    def delete_billing_key(self, billing_key: str, now: int) -> dict:
        with self.store.tx() as db:
            key, extra = self._v2_key(db, billing_key)
            if extra["v2"].get("deletedAt"):
                raise V2Error(409, "BILLING_KEY_ALREADY_DELETED", "이미 삭제된 빌링키입니다.")
            # PortOne documents PAYMENT_SCHEDULE_ALREADY_EXISTS for this call: a key with pending schedules is
            # not deleted (revoke them first). The sandbox refuses rather than leave schedules on a dead key.
            if self._scheduled_on_key(db, billing_key):
                raise V2Error(409, "PAYMENT_SCHEDULE_ALREADY_EXISTS", "결제 예약건이 존재하는 빌링키입니다.")
            extra["v2"]["deletedAt"] = now
            db.execute("DELETE FROM customers WHERE customer_uid = ?", (billing_key,))
            self._put_meta(db, f"v2deleted:{billing_key}", {"key": key, "extra": extra})
        return {"deletedAt": iso(now)}

    # == payments ==========================================================================================

    def _order(self, payment: dict) -> tuple[int, dict, dict]:
        """(amount, V1 order, customer) from a V2 payment body (pay or schedule)."""
        amount_in = payment.get("amount")
        if not isinstance(amount_in, dict):
            raise invalid("amount is required")
        total = _int(amount_in, "total", required=True, minimum=1)
        if payment.get("currency") != "KRW":
            raise invalid("currency must be KRW (the sandbox simulates KRW only)")
        customer = _customer_in(payment.get("customer"))
        params = {
            "name": _str(payment, "orderName", required=True),
            "tax_free": _int(amount_in, "taxFree"),
            "vat_amount": _int(amount_in, "vat"),
            "card_quota": _int(payment, "installmentMonth"),
            "custom_data": _str(payment, "customData"),
            "buyer_name": (customer.get("name") or "")[:16] or None,
            "buyer_email": customer.get("email"),
            "buyer_tel": customer.get("phoneNumber"),
        }
        try:
            order = self.ledger._order(params, total, name_required=True)
        except ApiError as exc:
            raise invalid(exc.message) from None
        notice_urls = payment.get("noticeUrls")
        if notice_urls is not None and not (
            isinstance(notice_urls, list) and all(isinstance(u, str) for u in notice_urls)
        ):
            raise invalid("noticeUrls must be a list of strings")
        order["notice_url"] = notice_urls or None
        return total, order, customer

    def _scheduled_payment_exists(self, db: sqlite3.Connection, payment_id: str) -> bool:
        return db.execute("SELECT 1 FROM schedules WHERE merchant_uid = ?", (payment_id,)).fetchone() is not None

    def pay_with_billing_key(self, payment_id: str, body: dict, now: int) -> V2Answer:
        if len(payment_id) > 40:
            # PortOne allows longer ids; the shared ledger keeps V1's 40-character merchant_uid limit.
            raise invalid("paymentId must be at most 40 characters in the sandbox")
        billing_key = _str(body, "billingKey", required=True)
        channel_key = _str(body, "channelKey")
        self._check_channel(channel_key)
        amount, order, customer = self._order(body)
        with self.store.tx() as db:
            key, key_extra = self._v2_key(db, billing_key)
            if key_extra["v2"].get("deletedAt"):
                raise V2Error(409, "BILLING_KEY_ALREADY_DELETED", "이미 삭제된 빌링키입니다.")
            if self.ledger._paid_exists(db, payment_id):
                raise V2Error(409, "ALREADY_PAID", "이미 결제가 완료된 결제건입니다.")
            if self._scheduled_payment_exists(db, payment_id):
                raise V2Error(409, "PAYMENT_SCHEDULE_ALREADY_EXISTS", "결제 예약건이 이미 존재합니다.")
            status, fail_reason = cards.charge_outcome(key_extra["behaviour"])
            payment = self.ledger._new_payment(
                db,
                now,
                merchant_uid=payment_id,
                amount=amount,
                order=order,
                card=self.ledger._card_of_key(key),
                customer_uid=billing_key,
                usage="payment",
                channel="api",
                status=status,
                fail_reason=fail_reason,
            )
            self._put_meta(
                db,
                f"v2pay:{payment_id}",
                {
                    "billingKey": billing_key,
                    "storeId": self.store_id,
                    "channelKey": channel_key or key_extra["v2"].get("channelKey"),
                    "customer": customer or key_extra["v2"].get("customer"),
                    "noticeUrls": order["notice_url"],
                    "scheduleId": None,
                    "skipWebhook": bool(body.get("skipWebhook")),
                },
            )
        notice = self.notice(payment_id, "Transaction.Paid" if status == "paid" else "Transaction.Failed", now)
        notices = [notice] if notice else []
        if status != "paid":
            # A decline: the payment is recorded FAILED and the call answers 502 PG_PROVIDER.
            error = V2Error(
                502,
                "PG_PROVIDER",
                "PG사에서 오류가 발생했습니다.",
                pgCode=PG_CODES.get(fail_reason or "", "F0005"),
                pgMessage=fail_reason or "",
            )
            error.notices = notices
            raise error
        return V2Answer({"payment": {"pgTxId": payment["pg_tid"], "paidAt": iso(payment["paid_at"])}}, notices=notices)

    def _payment_rows(self, db: sqlite3.Connection, payment_id: str) -> tuple[dict, dict] | None:
        row = db.execute(
            "SELECT imp_uid FROM payments WHERE merchant_uid = ? ORDER BY"
            " CASE status WHEN 'paid' THEN 0 WHEN 'cancelled' THEN 1 ELSE 2 END, seq DESC LIMIT 1",
            (payment_id,),
        ).fetchone()
        return self.ledger._payment_row(db, row["imp_uid"]) if row else None

    def get_payment(self, payment_id: str) -> dict:
        with self.store.read() as db:
            found = self._payment_rows(db, payment_id)
            meta = self._meta(db, f"v2pay:{payment_id}")
        if found is None:
            raise V2Error(404, "PAYMENT_NOT_FOUND", "결제건이 존재하지 않습니다.")
        return self.payment_json(found[0], found[1], meta)

    def _cancellation_json(self, entry: dict, tax_free: int, vat: int) -> dict:
        return {
            "status": "SUCCEEDED",
            "id": entry["cancellation_id"],
            "pgCancellationId": entry["pg_tid"],
            "totalAmount": entry["amount"],
            "taxFreeAmount": tax_free,
            "vatAmount": vat,
            "reason": entry.get("reason") or "",
            "cancelledAt": iso(entry["cancelled_at"]),
            "requestedAt": iso(entry["cancelled_at"]),
            "receiptUrl": entry.get("receipt_url"),
            "trigger": "API",
        }

    def payment_json(self, payment: dict, extra: dict, meta: dict | None) -> dict:
        meta = meta or {}
        status = payment["status"]
        if status == "paid" and payment["cancel_amount"]:
            v2_status = "PARTIAL_CANCELLED"
        else:
            v2_status = {"paid": "PAID", "cancelled": "CANCELLED", "failed": "FAILED", "ready": "READY"}[status]
        updated = max(payment["started_at"], payment["paid_at"], payment["failed_at"], extra.get("updated_at") or 0)
        customer = meta.get("customer") or {
            "name": payment.get("buyer_name"),
            "email": payment.get("buyer_email"),
            "phoneNumber": payment.get("buyer_tel"),
        }
        data = {
            "status": v2_status,
            "id": payment["merchant_uid"],
            "transactionId": payment["imp_uid"],
            "merchantId": MERCHANT_ID,
            "storeId": meta.get("storeId") or self.store_id,
            "channel": self._channel(meta.get("channelKey")),
            "version": "V2" if meta else "V1",
            "requestedAt": iso(payment["started_at"]),
            "updatedAt": iso(updated),
            "statusChangedAt": iso(updated),
            "orderName": payment["name"] or "",
            "amount": {
                "total": payment["amount"],
                "taxFree": extra["tax_free"],
                "vat": extra["vat_amount"],
                "supply": payment["amount"] - extra["tax_free"] - extra["vat_amount"],
                "discount": 0,
                "paid": payment["amount"] if status in ("paid", "cancelled") else 0,
                "cancelled": payment["cancel_amount"],
                "cancelledTaxFree": extra["cancelled_tax_free"],
            },
            "currency": "KRW",
            "customer": _customer_out(customer),
            "origin": {"platformType": "API", "ipAddress": "127.0.0.1"},
            "isCulturalExpense": False,
            "disputes": [],
        }
        if payment.get("customer_uid"):
            data["billingKey"] = payment["customer_uid"]
        if meta.get("scheduleId"):
            data["scheduleId"] = meta["scheduleId"]
        if payment.get("custom_data") is not None:
            data["customData"] = payment["custom_data"]
        if payment.get("card_number"):
            data["method"] = {
                "type": "PaymentMethodCard",
                "card": {"name": payment.get("card_name"), "number": payment.get("card_number")},
                "installment": {"month": payment.get("card_quota") or 0, "isInterestFree": False},
            }
        if status in ("paid", "cancelled"):
            data.update(
                pgTxId=payment["pg_tid"],
                paidAt=iso(payment["paid_at"]),
                receiptUrl=payment.get("receipt_url"),
            )
        if status == "failed":
            reason = payment.get("fail_reason") or ""
            data.update(
                failedAt=iso(payment["failed_at"]),
                failure={"reason": reason, "pgCode": PG_CODES.get(reason, "F0005"), "pgMessage": reason},
            )
        if payment["cancel_history"]:
            # The V1 ledger keeps only the totals of cancelled tax-free/VAT; each cancellation's share is
            # derived the way the V1 ledger derives it (VAT = round(taxable / 11)).
            data["cancellations"] = [
                self._cancellation_json(entry, 0, default_vat(entry["amount"])) for entry in payment["cancel_history"]
            ]
            data["cancelledAt"] = iso(payment["cancel_history"][-1]["cancelled_at"])
        return data

    _CANCEL_ERRORS = (
        ("[checksum 불일치]", 409, "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN"),
        ("취소 요청금액", 409, "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT"),
        ("이미 전액취소된", 409, "PAYMENT_ALREADY_CANCELLED"),
        ("결제완료(paid) 상태가 아닌", 409, "PAYMENT_NOT_PAID"),
        ("취소 면세금액", 409, "CANCEL_TAX_FREE_AMOUNT_EXCEEDS_CANCELLABLE_TAX_FREE_AMOUNT"),
    )

    def cancel_payment(self, payment_id: str, body: dict, now: int) -> V2Answer:
        reason = _str(body, "reason", required=True)
        amount = _int(body, "amount", minimum=1)
        tax_free = _int(body, "taxFreeAmount")
        vat = _int(body, "vatAmount")
        checksum = _int(body, "currentCancellableAmount")
        with self.store.read() as db:
            found = self._payment_rows(db, payment_id)
        if found is None:
            raise V2Error(404, "PAYMENT_NOT_FOUND", "결제건이 존재하지 않습니다.")
        params = {"imp_uid": found[0]["imp_uid"], "reason": reason, "amount": amount, "tax_free": tax_free}
        if vat is not None:
            params["vat_amount"] = vat
        if checksum is not None:
            params["checksum"] = checksum
        try:
            payment, _ = self.ledger.cancel({k: v for k, v in params.items() if v is not None}, now)
        except ApiError as exc:
            for prefix, status, type_ in self._CANCEL_ERRORS:
                if exc.message.startswith(prefix):
                    raise V2Error(status, type_, exc.message) from None
            raise invalid(exc.message) from None
        entry = payment["cancel_history"][-1]
        cancelled_vat = default_vat(entry["amount"] - (tax_free or 0)) if vat is None else vat
        notices = []
        if not body.get("skipWebhook"):
            kind = "Transaction.Cancelled" if payment["status"] == "cancelled" else "Transaction.PartialCancelled"
            notice = self.notice(payment_id, kind, now, cancellation_id=entry["cancellation_id"])
            notices = [notice] if notice else []
        return V2Answer({"cancellation": self._cancellation_json(entry, tax_free or 0, cancelled_vat)}, notices=notices)

    # == payment schedules =================================================================================

    def create_schedule(self, payment_id: str, body: dict, now: int) -> V2Answer:
        payment = body.get("payment")
        if not isinstance(payment, dict):
            raise invalid("payment is required")
        time_to_pay = parse_time(body.get("timeToPay"), "timeToPay")
        if time_to_pay <= now:
            # The docs do not say whether a past timeToPay runs at once; refusing is the stricter reading.
            raise invalid("timeToPay must be in the future")
        billing_key = _str(payment, "billingKey", required=True)
        channel_key = _str(payment, "channelKey")
        self._check_channel(channel_key)
        store_id = _str(payment, "storeId")
        if store_id is not None and store_id != self.store_id:
            raise V2Error(403, "FORBIDDEN", "요청된 상점에 접근할 수 없습니다.")
        amount, order, customer = self._order(payment)
        with self.store.tx() as db:
            key, key_extra = self._v2_key(db, billing_key)
            if key_extra["v2"].get("deletedAt"):
                raise V2Error(409, "BILLING_KEY_ALREADY_DELETED", "이미 삭제된 빌링키입니다.")
            if self.ledger._paid_exists(db, payment_id):
                raise V2Error(409, "ALREADY_PAID_OR_WAITING", "이미 결제되었거나 결제 대기중인 결제건입니다.")
            if self._scheduled_payment_exists(db, payment_id):
                # Also for a revoked or executed schedule of this paymentId: the stricter reading.
                raise V2Error(409, "PAYMENT_SCHEDULE_ALREADY_EXISTS", "결제 예약건이 이미 존재합니다.")
            seq = self.store.next_seq(db, "v2schedule")
            schedule_id = f"payment-schedule-sbx-{seq:012d}"
            schedule = {
                "customer_uid": billing_key,
                "merchant_uid": payment_id,
                "imp_uid": None,
                "pg_provider": key.get("pg_provider"),
                "pg_id": key.get("pg_id"),
                "customer_id": key.get("customer_id"),
                "schedule_at": time_to_pay,
                "executed_at": 0,
                "revoked_at": 0,
                "amount": amount,
                "currency": "KRW",
                "name": order["name"],
                **{name: order.get(name) for name, _ in BUYER_LIMITS},
                "custom_data": order["custom_data"],
                "schedule_status": "scheduled",
                "payment_status": None,
                "fail_reason": None,
                "promotion_id": None,
            }
            extra = {
                "tax_free": order["tax_free"],
                "vat_amount": order["vat_amount"],
                "card_quota": order["card_quota"],
                "notice_url": order["notice_url"],
                "registered_at": now,
                "v2": {"id": schedule_id, "storeId": self.store_id, "customer": customer},
            }
            self.ledger._write_schedule(db, schedule, extra, insert=True)
            self._put_meta(db, f"v2sched:{schedule_id}", {"paymentId": payment_id})
            self._put_meta(
                db,
                f"v2pay:{payment_id}",
                {
                    "billingKey": billing_key,
                    "storeId": self.store_id,
                    "channelKey": channel_key or key_extra["v2"].get("channelKey"),
                    "customer": customer or key_extra["v2"].get("customer"),
                    "noticeUrls": order["notice_url"],
                    "scheduleId": schedule_id,
                    "skipWebhook": False,
                },
            )
        return V2Answer({"schedule": {"id": schedule_id}})

    def _schedule_json(self, schedule: dict, extra: dict) -> dict:
        v2 = extra["v2"]
        status = schedule["schedule_status"]
        if status == "executed":
            v2_status = "FAILED" if schedule["payment_status"] == "failed" else "SUCCEEDED"
        else:
            v2_status = {"scheduled": "SCHEDULED", "revoked": "REVOKED"}[status]
        data = {
            "status": v2_status,
            "id": v2["id"],
            "merchantId": MERCHANT_ID,
            "storeId": v2["storeId"],
            "paymentId": schedule["merchant_uid"],
            "billingKey": schedule["customer_uid"],
            "orderName": schedule["name"] or "",
            "isCulturalExpense": False,
            "isEscrow": False,
            "customer": _customer_out(v2.get("customer")),
            "customData": schedule.get("custom_data") or "",
            "totalAmount": schedule["amount"],
            "taxFreeAmount": extra["tax_free"],
            "vatAmount": extra["vat_amount"],
            "currency": "KRW",
            "installmentMonth": extra.get("card_quota") or 0,
            "noticeUrls": extra.get("notice_url") or [],
            "createdAt": iso(extra["registered_at"]),
            "timeToPay": iso(schedule["schedule_at"]),
        }
        if status == "revoked":
            data["revokedAt"] = iso(schedule["revoked_at"])
        if status == "executed":
            data["startedAt"] = iso(schedule["executed_at"])
            data["completedAt"] = iso(schedule["executed_at"])
        return data

    def _schedule_by_id(self, db: sqlite3.Connection, schedule_id: str) -> tuple[dict, dict]:
        meta = self._meta(db, f"v2sched:{schedule_id}")
        found = self.ledger._schedule_row(db, meta["paymentId"]) if meta else None
        if found is None:
            raise V2Error(404, "PAYMENT_SCHEDULE_NOT_FOUND", "결제 예약건이 존재하지 않습니다.")
        return found

    def get_schedule(self, schedule_id: str) -> dict:
        with self.store.read() as db:
            schedule, extra = self._schedule_by_id(db, schedule_id)
        return self._schedule_json(schedule, extra)

    _STATUS_SQL = {
        "SCHEDULED": ("scheduled", None),
        "REVOKED": ("revoked", None),
        "SUCCEEDED": ("executed", "ok"),
        "FAILED": ("executed", "failed"),
    }

    def list_schedules(self, body: dict, now: int) -> dict:
        flt = body.get("filter") or {}
        page = body.get("page") or {}
        if not isinstance(flt, dict) or not isinstance(page, dict):
            raise invalid("filter and page must be objects")
        until = parse_time(flt["until"], "filter.until") if flt.get("until") else now
        start = parse_time(flt["from"], "filter.from") if flt.get("from") else now - LIST_WINDOW_S
        number = _int(page, "number") or 0
        size = _int(page, "size", minimum=1) or 10
        where, args = "schedule_at >= ? AND schedule_at <= ?", [start, until]
        if flt.get("billingKey"):
            where += " AND customer_uid = ?"
            args.append(flt["billingKey"])
        statuses = flt.get("status") or []
        if not isinstance(statuses, list) or any(s not in self._STATUS_SQL for s in statuses):
            raise invalid(f"filter.status must be a list of {', '.join(self._STATUS_SQL)}")
        with self.store.read() as db:
            rows = db.execute(f"SELECT data FROM schedules WHERE {where} ORDER BY schedule_at, seq", args).fetchall()
        items = []
        for row in rows:
            data = json.loads(row["data"])
            if "v2" not in data["extra"]:
                continue
            item = self._schedule_json(data["schedule"], data["extra"])
            if statuses and item["status"] not in statuses:
                continue
            items.append(item)
        return {
            "items": items[number * size : (number + 1) * size],
            "page": {"number": number, "size": size, "totalCount": len(items)},
        }

    def revoke_schedules(self, body: dict, now: int) -> dict:
        billing_key = _str(body, "billingKey")
        ids = body.get("scheduleIds")
        if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            raise invalid("scheduleIds must be a list of strings")
        if billing_key is None and not ids:
            raise invalid("billingKey or scheduleIds is required")
        with self.store.tx() as db:
            targets: list[tuple[dict, dict]] = []
            if ids:
                for schedule_id in ids:
                    schedule, extra = self._schedule_by_id(db, schedule_id)
                    if billing_key is not None and schedule["customer_uid"] != billing_key:
                        raise V2Error(404, "PAYMENT_SCHEDULE_NOT_FOUND", "결제 예약건이 존재하지 않습니다.")
                    if schedule["schedule_status"] == "revoked":
                        raise V2Error(409, "PAYMENT_SCHEDULE_ALREADY_REVOKED", "이미 취소된 결제 예약건입니다.")
                    if schedule["schedule_status"] == "executed":
                        raise V2Error(409, "PAYMENT_SCHEDULE_ALREADY_PROCESSED", "이미 처리된 결제 예약건입니다.")
                    targets.append((schedule, extra))
            else:
                self._v2_key(db, billing_key)
                rows = db.execute(
                    "SELECT data FROM schedules WHERE customer_uid = ? AND schedule_status = 'scheduled'"
                    " ORDER BY schedule_at, seq",
                    (billing_key,),
                ).fetchall()
                for row in rows:
                    data = json.loads(row["data"])
                    if "v2" in data["extra"]:
                        targets.append((data["schedule"], data["extra"]))
            for schedule, extra in targets:
                schedule.update(schedule_status="revoked", revoked_at=now)
                self.ledger._write_schedule(db, schedule, extra, insert=False)
        return {"revokedScheduleIds": [extra["v2"]["id"] for _, extra in targets], "revokedAt": iso(now)}

    # == webhooks ==========================================================================================

    webhook_url: str | None = None
    webhook_secret: str = ""

    def notice(self, payment_id: str, kind: str, now: int, *, cancellation_id: str | None = None) -> Notice | None:
        """The V2 webhook for one transaction event, or None when nothing would be sent.

        Body as PortOne V2 sends it: `{"type", "timestamp", "data": {"paymentId", "storeId", "transactionId"}}`,
        posted to the payment's `noticeUrls` or else the store's (console) webhook URL, signed at send time.
        """
        with self.store.read() as db:
            meta = self._meta(db, f"v2pay:{payment_id}")
            found = self._payment_rows(db, payment_id)
        if meta is None or found is None or meta.get("skipWebhook"):
            return None
        urls = meta.get("noticeUrls") or ([self.webhook_url] if self.webhook_url else None)
        if not urls:
            return None
        data = {"paymentId": payment_id, "storeId": meta["storeId"], "transactionId": found[0]["imp_uid"]}
        if cancellation_id:
            data["cancellationId"] = cancellation_id
        body = {"type": kind, "timestamp": iso(now), "data": data}
        return Notice(urls, body, f"v2:{kind}", signer=self.sign_delivery)

    def sign_delivery(self, seq: int, text: str) -> dict:
        # The wall clock, not the sandbox clock: receivers refuse timestamps more than 5 minutes off theirs.
        return signing.headers(self.webhook_secret, f"msg_sbx_{seq:012d}", int(time.time()), text)

    def adapt_schedule_notice(self, payment: dict, notice: Notice) -> Notice | None:
        """A schedule the clock executed: a V2 payment gets its V2 webhook instead of the V1 one."""
        if not self.is_v2_payment(payment["merchant_uid"]):
            return notice
        kind = "Transaction.Paid" if payment["status"] == "paid" else "Transaction.Failed"
        return self.notice(payment["merchant_uid"], kind, payment["started_at"])
