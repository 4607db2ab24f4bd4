"""The ledger: every Iamport V1 rule the sandbox enforces, over the SQLite store.

Methods take parsed request parameters and an explicit `now` (sandbox clock, UNIX seconds). They return
objects shaped like Iamport's (field names from the V1 schema) and the webhook notices the operation
triggers; the HTTP layer wraps them in the `{code, message, response}` envelope. Each operation is one
short transaction, so concurrent requests for the same merchant_uid cannot both be paid.

Where Iamport's behaviour is not confirmed (see docs/iamport-v1.md#unconfirmed), the sandbox does the most
defensive documented thing and says so next to the code.
"""

import hashlib
import json
import sqlite3

from iamport_sandbox import cards
from iamport_sandbox.clock import add_months_kst
from iamport_sandbox.errors import ApiError, bad_request, business_error, not_found
from iamport_sandbox.forms import opt_bool, opt_int, opt_str, q_int, q_one, req_int, req_str, to_int
from iamport_sandbox.store import Store
from iamport_sandbox.webhooks import Notice

PG_PROVIDER = "nice"
PG_ID = "nictest04m"
IMP_UID_BASE = 100_000_000_000
TOKEN_TTL_S = 30 * 60
TOKEN_GRACE_S = 60
TOKEN_EXTENSION_S = 5 * 60
STATUS_WINDOW_S = 90 * 24 * 3600
SCHEDULE_WINDOW_MAX_DAYS = 90
MAX_LIMIT = 1000
MAX_MULTI_IDS = 100

MSG_AUTH_FAILED = "imp_key, imp_secret 파라미터가 올바르지 않습니다."
MSG_UNKNOWN_BUYER = "등록되지 않은 구매자입니다."
MSG_NO_CUSTOMER_FOR_SCHEDULE = "등록된 고객정보가 없습니다."
MSG_NOTHING_TO_UNSCHEDULE = "취소할 예약결제 기록이 존재하지 않습니다."
MSG_PAYMENT_NOT_FOUND = "존재하지 않는 결제정보입니다."
MSG_CANCEL_NOT_FOUND = "취소할 결제건이 존재하지 않습니다."
MSG_ALREADY_CANCELLED = "이미 전액취소된 주문입니다."
# Unconfirmed (docs/iamport-v1.md#order-ids): the real code/message for re-using a paid merchant_uid was not found.
# The sandbox refuses with code 1 and this text; clients must branch on `code != 0`, never on the words.
MSG_MERCHANT_UID_PAID = "이미 결제완료된 주문번호(merchant_uid)입니다. 새로운 merchant_uid로 요청해주세요."
MSG_KEY_DELETED = "등록되지 않은 구매자입니다. (빌링키가 삭제되었거나 존재하지 않습니다)"

BUYER_LIMITS = (
    ("buyer_name", 16),
    ("buyer_email", 64),
    ("buyer_tel", 16),
    ("buyer_addr", 128),
    ("buyer_postcode", 8),
)
CUSTOMER_LIMITS = (
    ("customer_name", 20),
    ("customer_tel", 20),
    ("customer_email", 200),
    ("customer_addr", 200),
    ("customer_postcode", 8),
)
PAYMENT_STATUSES = ("ready", "paid", "cancelled", "failed")
SCHEDULE_STATUSES = ("scheduled", "executed", "revoked")
PAYMENT_SORTS = {
    "-started": ("started_at", "DESC"),
    "started": ("started_at", "ASC"),
    "-paid": ("paid_at", "DESC"),
    "paid": ("paid_at", "ASC"),
    "-updated": ("updated_at", "DESC"),
    "updated": ("updated_at", "ASC"),
}
STATUS_TIME_FIELD = {"paid": "paid_at", "failed": "failed_at", "cancelled": "cancelled_at"}
STATUS_TIME_OF_ANY = (
    "(CASE status WHEN 'paid' THEN paid_at WHEN 'cancelled' THEN cancelled_at WHEN 'failed' THEN failed_at"
    " ELSE started_at END)"
)


def _console_card() -> dict:
    """The card of payments the controls create outside the merchant's app (a 신한카드 test number)."""
    return {
        "card_code": cards.SHINHAN.code,
        "card_name": cards.SHINHAN.name,
        "card_number": cards.mask("4242424242424242"),
        "card_type": 0,
    }


def customer_not_found(customer_uid: str) -> ApiError:
    # The V1 schema declares 404 here; two client codebases observed HTTP 200 + code 1 instead
    # (docs/iamport-v1.md#http-statuses). 404 with the envelope is the stricter reading, so the sandbox answers that.
    return not_found(f"요청하신 customer_uid({customer_uid})로 등록된 정보를 찾을 수 없습니다.")


def default_vat(taxable: int) -> int:
    """round(taxable / 11), half up (an integer over 11 never lands exactly on .5)."""
    return (taxable + 5) // 11


def _custom_data(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _notice_url(value) -> str | list | None:
    if value is None or value == "":
        return None
    if isinstance(value, list):
        urls = [str(url) for url in value if url]
        return urls or None
    return str(value)


def _page(total: int, page: int, limit: int, items: list) -> dict:
    return {
        "total": total,
        "previous": page - 1 if page > 1 else 0,
        "next": page + 1 if page * limit < total else 0,
        "list": items,
    }


def _paging(query: dict, *, default_limit: int = 20) -> tuple[int, int]:
    page = q_int(query, "page", default=1, minimum=1)
    limit = q_int(query, "limit", default=default_limit, minimum=1)
    if limit > MAX_LIMIT:
        raise bad_request(f"limit 파라미터는 최대 {MAX_LIMIT}까지 지정할 수 있습니다.")
    return page, limit


def _check_schedule_window(start: int, end: int) -> None:
    """`from <= schedule_at < to`, at most 3 months.

    Unconfirmed whether "3 months" means calendar months or a day count; the sandbox enforces both
    (calendar months in KST *and* 90 days) so a window it accepts is accepted under either reading.
    """
    if end < start:
        raise bad_request("조회 종료시각은 시작시각보다 빠를 수 없습니다.")
    if end > add_months_kst(start, 3) or end - start > SCHEDULE_WINDOW_MAX_DAYS * 24 * 3600:
        raise bad_request("예약결제 조회 기간은 최대 3개월입니다.")


class Ledger:
    def __init__(self, store: Store, *, imp_key: str, imp_secret: str, merchant_code: str):
        self.store = store
        self.imp_key = imp_key
        self.imp_secret = imp_secret
        self.merchant_code = merchant_code
        self.base_url = ""

    # == tokens ============================================================================================

    def get_token(self, params: dict, now: int) -> dict:
        if params.get("imp_key") != self.imp_key or params.get("imp_secret") != self.imp_secret:
            raise ApiError(MSG_AUTH_FAILED, code=-1, http_status=401)
        with self.store.tx() as db:
            row = db.execute(
                "SELECT token, expired_at FROM tokens WHERE expired_at > ? ORDER BY expired_at DESC LIMIT 1",
                (now,),
            ).fetchone()
            if row:
                token, expired_at = row["token"], row["expired_at"]
                # Same token until expiry; in its last minute the expiry moves 5 minutes on (V1 auth docs).
                if expired_at - now <= TOKEN_GRACE_S:
                    expired_at += TOKEN_EXTENSION_S
                    db.execute("UPDATE tokens SET expired_at = ? WHERE token = ?", (expired_at, token))
            else:
                seq = self.store.next_seq(db, "token")
                token = hashlib.sha1(f"{self.imp_key}:{seq}".encode(), usedforsecurity=False).hexdigest()
                expired_at = now + TOKEN_TTL_S
                db.execute(
                    "INSERT INTO tokens (token, issued_at, expired_at) VALUES (?, ?, ?)",
                    (token, now, expired_at),
                )
        return {"access_token": token, "now": now, "expired_at": expired_at}

    def token_valid(self, token: str | None, now: int) -> bool:
        if not token:
            return False
        with self.store.read() as db:
            row = db.execute("SELECT expired_at FROM tokens WHERE token = ?", (token,)).fetchone()
        return bool(row) and row["expired_at"] > now

    # == billing keys ======================================================================================

    def _key(self, db: sqlite3.Connection, customer_uid: str) -> tuple[dict, dict] | None:
        row = db.execute("SELECT data FROM customers WHERE customer_uid = ?", (customer_uid,)).fetchone()
        if row is None:
            return None
        data = json.loads(row["data"])
        return data["key"], data["extra"]

    def _save_key(self, db: sqlite3.Connection, key: dict, extra: dict) -> None:
        db.execute(
            "INSERT OR REPLACE INTO customers (customer_uid, data) VALUES (?, ?)",
            (key["customer_uid"], json.dumps({"key": key, "extra": extra}, ensure_ascii=False)),
        )

    def _upsert_key(
        self,
        db: sqlite3.Connection,
        *,
        customer_uid: str,
        profile: cards.CardProfile,
        customer: dict,
        customer_id: str | None,
        now: int,
        source: str,
        channel_key: str | None = None,
        pg: str | None = None,
    ) -> dict:
        # Issuing again under the same customer_uid replaces the card (the old PG key is not revoked).
        existing = self._key(db, customer_uid)
        key = {
            "customer_uid": customer_uid,
            "pg_provider": PG_PROVIDER,
            "pg_id": PG_ID,
            "sandbox": True,
            "customer_id": customer_id,
            "card_name": profile.card_name,
            "card_code": profile.card_code,
            "card_issuer_code": None,
            "card_issuer_name": None,
            "card_publisher_code": None,
            "card_publisher_name": None,
            "card_number": profile.masked_number,
            "card_type": profile.card_type,
            **{name: customer.get(name) for name, _ in CUSTOMER_LIMITS},
            "inserted": existing[0]["inserted"] if existing else now,
            "updated": now,
        }
        extra = {"behaviour": profile.behaviour, "source": source, "channel_key": channel_key, "pg": pg}
        self._save_key(db, key, extra)
        return key

    def issue_key(self, customer_uid: str, params: dict, now: int) -> dict:
        if len(customer_uid) > 80:
            raise bad_request("customer_uid 파라미터는 최대 80자까지 입력할 수 있습니다.")
        channel_key = opt_str(params, "channel_key", 55)
        pg = opt_str(params, "pg", 80)
        # Unconfirmed (docs/iamport-v1.md#billing-keys): channel_key is required by the 2026-05 schema, but whether
        # legacy pg-only calls still work is unknown. The sandbox accepts either one and refuses a call with neither.
        if channel_key is None and pg is None and opt_str(params, "channel_group_id") is None:
            raise bad_request("channel_key 파라미터가 누락되었습니다.")
        card_number = req_str(params, "card_number")
        expiry = req_str(params, "expiry")
        customer = {name: opt_str(params, name, limit) for name, limit in CUSTOMER_LIMITS}
        customer_id = opt_str(params, "customer_id")
        profile = cards.inspect_card(
            card_number=card_number,
            expiry=expiry,
            birth=opt_str(params, "birth"),
            pwd_2digit=opt_str(params, "pwd_2digit"),
            now=now,
        )
        with self.store.tx() as db:
            return self._upsert_key(
                db,
                customer_uid=customer_uid,
                profile=profile,
                customer=customer,
                customer_id=customer_id,
                now=now,
                source="api",
                channel_key=channel_key,
                pg=pg,
            )

    def get_key(self, customer_uid: str) -> dict:
        with self.store.read() as db:
            found = self._key(db, customer_uid)
        if found is None:
            raise customer_not_found(customer_uid)
        return found[0]

    def get_keys(self, customer_uids: list[str]) -> tuple[list[dict], list[str]]:
        if not customer_uids:
            raise bad_request("customer_uid[] 파라미터가 누락되었습니다.")
        if len(customer_uids) > MAX_MULTI_IDS:
            raise bad_request(f"한 번에 최대 {MAX_MULTI_IDS}개까지 조회할 수 있습니다.")
        found, missing = [], []
        with self.store.read() as db:
            for customer_uid in customer_uids:
                key = self._key(db, customer_uid)
                if key is None:
                    missing.append(customer_uid)
                else:
                    found.append(key[0])
        return found, missing

    def delete_key(self, customer_uid: str) -> dict:
        # Unconfirmed whether deleting a key revokes its schedules (docs/iamport-v1.md#billing-keys). The sandbox leaves
        # them scheduled; when they come due they execute as failed charges ("등록되지 않은 구매자입니다.").
        with self.store.tx() as db:
            found = self._key(db, customer_uid)
            if found is None:
                raise customer_not_found(customer_uid)
            db.execute("DELETE FROM customers WHERE customer_uid = ?", (customer_uid,))
        return found[0]

    def key_payments(self, customer_uid: str, query: dict) -> dict:
        page = q_int(query, "page", default=1, minimum=1)
        limit = 20
        with self.store.read() as db:
            if self._key(db, customer_uid) is None:
                raise customer_not_found(customer_uid)
            total = db.execute("SELECT COUNT(*) FROM payments WHERE customer_uid = ?", (customer_uid,)).fetchone()[0]
            rows = db.execute(
                "SELECT data FROM payments WHERE customer_uid = ? ORDER BY started_at DESC, seq DESC LIMIT ? OFFSET ?",
                (customer_uid, limit, (page - 1) * limit),
            ).fetchall()
        return _page(total, page, limit, [json.loads(row["data"])["payment"] for row in rows])

    def set_behaviour(self, customer_uid: str, behaviour: str) -> dict:
        if behaviour not in cards.BEHAVIOURS:
            raise bad_request(f"behaviour must be one of {', '.join(cards.BEHAVIOURS)}")
        with self.store.tx() as db:
            found = self._key(db, customer_uid)
            if found is None:
                raise customer_not_found(customer_uid)
            key, extra = found
            extra["behaviour"] = behaviour
            self._save_key(db, key, extra)
        return {**key, "_sandbox": extra}

    def dump_keys(self) -> list[dict]:
        with self.store.read() as db:
            rows = db.execute("SELECT data FROM customers ORDER BY customer_uid").fetchall()
        result = []
        for row in rows:
            data = json.loads(row["data"])
            result.append({**data["key"], "_sandbox": data["extra"]})
        return result

    # == payments: storage =================================================================================

    def _order(self, params: dict, amount: int, *, name_required: bool) -> dict:
        """The order-level fields shared by again, onetime, schedules and the SDK."""
        name = req_str(params, "name", 40) if name_required else opt_str(params, "name", 40)
        currency = opt_str(params, "currency") or "KRW"
        if currency != "KRW":
            raise bad_request("sandbox는 KRW 결제만 지원합니다.")
        tax_free = opt_int(params, "tax_free", minimum=0) or 0
        if tax_free > amount:
            raise bad_request("tax_free 파라미터는 amount보다 클 수 없습니다.")
        vat_amount = opt_int(params, "vat_amount", minimum=0)
        if vat_amount is None:
            vat_amount = default_vat(amount - tax_free)
        elif vat_amount > amount - tax_free:
            raise bad_request("vat_amount 파라미터는 과세금액(amount - tax_free)보다 클 수 없습니다.")
        card_quota = opt_int(params, "card_quota", minimum=0) or 0
        if card_quota >= 2 and amount < 50_000:
            raise bad_request("할부(card_quota)는 50,000원 이상 결제에만 지정할 수 있습니다.")
        order = {
            "name": name,
            "tax_free": tax_free,
            "vat_amount": vat_amount,
            "card_quota": card_quota,
            "custom_data": _custom_data(params.get("custom_data")),
            "notice_url": _notice_url(params.get("notice_url")),
        }
        order.update({name: opt_str(params, name, limit) for name, limit in BUYER_LIMITS})
        return order

    @staticmethod
    def _amount(params: dict, key: str = "amount") -> int:
        amount = req_int(params, key)
        if amount <= 0:
            raise bad_request(f"{key} 파라미터는 0보다 커야 합니다.")
        return amount

    def _payment_row(self, db: sqlite3.Connection, imp_uid: str) -> tuple[dict, dict] | None:
        row = db.execute("SELECT data FROM payments WHERE imp_uid = ?", (imp_uid,)).fetchone()
        if row is None:
            return None
        data = json.loads(row["data"])
        return data["payment"], data["extra"]

    def _paid_exists(self, db: sqlite3.Connection, merchant_uid: str) -> bool:
        # A cancelled payment was paid first, so its merchant_uid is spent too.
        row = db.execute(
            "SELECT 1 FROM payments WHERE merchant_uid = ? AND status IN ('paid', 'cancelled') LIMIT 1",
            (merchant_uid,),
        ).fetchone()
        return row is not None

    def _write_payment(self, db: sqlite3.Connection, payment: dict, extra: dict, *, insert: bool) -> None:
        data = json.dumps({"payment": payment, "extra": extra}, ensure_ascii=False)
        values = (
            payment["status"],
            payment["paid_at"],
            payment["failed_at"],
            payment["cancelled_at"],
            extra["updated_at"],
            data,
        )
        if insert:
            db.execute(
                "INSERT INTO payments (seq, imp_uid, merchant_uid, customer_uid, started_at, status, paid_at,"
                " failed_at, cancelled_at, updated_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    extra["seq"],
                    payment["imp_uid"],
                    payment["merchant_uid"],
                    payment["customer_uid"],
                    payment["started_at"],
                    *values,
                ),
            )
        else:
            db.execute(
                "UPDATE payments SET status = ?, paid_at = ?, failed_at = ?, cancelled_at = ?,"
                " updated_at = ?, data = ? WHERE imp_uid = ?",
                (*values, payment["imp_uid"]),
            )

    def _new_payment(
        self,
        db: sqlite3.Connection,
        now: int,
        *,
        merchant_uid: str,
        amount: int,
        order: dict,
        card: dict | None,
        customer_uid: str | None,
        usage: str | None,
        channel: str,
        status: str,
        fail_reason: str | None,
    ) -> dict:
        seq = self.store.next_seq(db, "imp")
        imp_uid = f"imp_{IMP_UID_BASE + seq:012d}"
        paid = status == "paid"
        card = card or {}
        payment = {
            "imp_uid": imp_uid,
            "merchant_uid": merchant_uid,
            "pay_method": "card",
            "channel": channel,
            "pg_provider": PG_PROVIDER,
            "emb_pg_provider": None,
            "pg_tid": f"sbx{seq:012d}",
            "pg_id": PG_ID,
            "sandbox": True,
            "escrow": False,
            "apply_num": f"{seq:08d}" if paid else None,
            "bank_code": None,
            "bank_name": None,
            "card_code": card.get("card_code"),
            "card_name": card.get("card_name"),
            "card_issuer_code": None,
            "card_issuer_name": None,
            "card_publisher_code": None,
            "card_publisher_name": None,
            "card_quota": order["card_quota"],
            "card_number": card.get("card_number"),
            "card_type": card.get("card_type"),
            "vbank_code": None,
            "vbank_name": None,
            "vbank_num": None,
            "vbank_holder": None,
            "vbank_date": 0,
            "vbank_issued_at": 0,
            "name": order["name"],
            "amount": amount,
            "cancel_amount": 0,
            "currency": "KRW",
            **{name: order.get(name) for name, _ in BUYER_LIMITS},
            "custom_data": order["custom_data"],
            "user_agent": "sorry_not_supported",
            "status": status,
            "started_at": now,
            "paid_at": now if paid else 0,
            "failed_at": 0 if paid else now,
            "cancelled_at": 0,
            "fail_reason": fail_reason,
            "cancel_reason": None,
            "receipt_url": f"{self.base_url}/__sandbox__/receipts/{imp_uid}" if paid else None,
            "cancel_history": [],
            "cancel_receipt_urls": [],
            "cash_receipt_issued": False,
            "customer_uid": customer_uid,
            "customer_uid_usage": usage,
            "promotion": None,
        }
        extra = {
            "seq": seq,
            "tax_free": order["tax_free"],
            "vat_amount": order["vat_amount"],
            "notice_url": order["notice_url"],
            "cancelled_tax_free": 0,
            "cancelled_vat_amount": 0,
            "updated_at": now,
        }
        self._write_payment(db, payment, extra, insert=True)
        return payment

    @staticmethod
    def _card_of_key(key: dict) -> dict:
        return {name: key[name] for name in ("card_code", "card_name", "card_number", "card_type")}

    @staticmethod
    def _card_of_profile(profile: cards.CardProfile) -> dict:
        return {
            "card_code": profile.card_code,
            "card_name": profile.card_name,
            "card_number": profile.masked_number,
            "card_type": profile.card_type,
        }

    @staticmethod
    def _paid_notice(payment: dict, notice_url, trigger: str) -> Notice:
        body = {
            "imp_uid": payment["imp_uid"],
            "merchant_uid": payment["merchant_uid"],
            "status": payment["status"],
        }
        return Notice(notice_url, body, trigger)

    # == charges ===========================================================================================

    def again(self, params: dict, now: int) -> tuple[dict, list[Notice]]:
        customer_uid = req_str(params, "customer_uid", 80)
        merchant_uid = req_str(params, "merchant_uid", 40)
        amount = self._amount(params)
        order = self._order(params, amount, name_required=True)
        with self.store.tx() as db:
            found = self._key(db, customer_uid)
            if found is None:
                raise business_error(MSG_UNKNOWN_BUYER)
            if self._paid_exists(db, merchant_uid):
                raise business_error(MSG_MERCHANT_UID_PAID)
            key, key_extra = found
            status, fail_reason = cards.charge_outcome(key_extra["behaviour"])
            payment = self._new_payment(
                db,
                now,
                merchant_uid=merchant_uid,
                amount=amount,
                order=order,
                card=self._card_of_key(key),
                customer_uid=customer_uid,
                usage="payment",
                channel="api",
                status=status,
                fail_reason=fail_reason,
            )
        # A declined one-off charge fires no webhook (docs/iamport-v1.md#webhooks).
        notices = [self._paid_notice(payment, order["notice_url"], "again")] if status == "paid" else []
        return payment, notices

    def onetime(self, params: dict, now: int) -> tuple[dict, list[Notice]]:
        merchant_uid = req_str(params, "merchant_uid", 40)
        amount = self._amount(params)
        card_number = req_str(params, "card_number")
        expiry = req_str(params, "expiry")
        customer_uid = opt_str(params, "customer_uid", 80)
        opt_str(params, "pg", 80)
        order = self._order(params, amount, name_required=False)
        profile = cards.inspect_card(
            card_number=card_number,
            expiry=expiry,
            birth=opt_str(params, "birth"),
            pwd_2digit=opt_str(params, "pwd_2digit"),
            now=now,
            onetime=True,
        )
        with self.store.tx() as db:
            if self._paid_exists(db, merchant_uid):
                raise business_error(MSG_MERCHANT_UID_PAID)
            if customer_uid is not None:
                # buyer_* are copied to customer_* when the card is saved as a key.
                customer = {f"customer_{name[6:]}": order.get(name) for name, _ in BUYER_LIMITS}
                self._upsert_key(
                    db,
                    customer_uid=customer_uid,
                    profile=profile,
                    customer=customer,
                    customer_id=opt_str(params, "customer_id"),
                    now=now,
                    source="onetime",
                )
            status, fail_reason = cards.charge_outcome(profile.behaviour)
            payment = self._new_payment(
                db,
                now,
                merchant_uid=merchant_uid,
                amount=amount,
                order=order,
                card=self._card_of_profile(profile),
                customer_uid=customer_uid,
                usage="payment",
                channel="api",
                status=status,
                fail_reason=fail_reason,
            )
        notices = [self._paid_notice(payment, order["notice_url"], "onetime")] if status == "paid" else []
        return payment, notices

    # == schedules =========================================================================================

    def _schedule_row(self, db: sqlite3.Connection, merchant_uid: str) -> tuple[dict, dict] | None:
        row = db.execute("SELECT data FROM schedules WHERE merchant_uid = ?", (merchant_uid,)).fetchone()
        if row is None:
            return None
        data = json.loads(row["data"])
        return data["schedule"], data["extra"]

    def _write_schedule(self, db: sqlite3.Connection, schedule: dict, extra: dict, *, insert: bool) -> None:
        data = json.dumps({"schedule": schedule, "extra": extra}, ensure_ascii=False)
        if insert:
            db.execute(
                "INSERT INTO schedules (merchant_uid, customer_uid, schedule_at, schedule_status, data)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    schedule["merchant_uid"],
                    schedule["customer_uid"],
                    schedule["schedule_at"],
                    schedule["schedule_status"],
                    data,
                ),
            )
        else:
            db.execute(
                "UPDATE schedules SET schedule_at = ?, schedule_status = ?, data = ? WHERE merchant_uid = ?",
                (schedule["schedule_at"], schedule["schedule_status"], data, schedule["merchant_uid"]),
            )

    def _schedule_item(self, item, now: int) -> dict:
        if not isinstance(item, dict):
            raise bad_request("schedules 파라미터의 형식이 올바르지 않습니다.")
        merchant_uid = req_str(item, "merchant_uid", 40)
        schedule_at = req_int(item, "schedule_at")
        amount = self._amount(item)
        # Unconfirmed whether a past schedule_at is refused on creation; PUT/reschedule refuse it with 400,
        # so creation does too.
        if schedule_at <= now:
            raise bad_request(f"schedule_at({schedule_at})은 현재 시각 이후여야 합니다.")
        return {
            "merchant_uid": merchant_uid,
            "schedule_at": schedule_at,
            "amount": amount,
            **self._order(item, amount, name_required=True),
        }

    def schedule(self, params: dict, now: int) -> list[dict]:
        customer_uid = req_str(params, "customer_uid", 80)
        raw = params.get("schedules")
        if isinstance(raw, dict):
            raw = [raw]
        if not isinstance(raw, list) or not raw:
            raise bad_request("schedules 파라미터가 누락되었습니다.")
        items = [self._schedule_item(item, now) for item in raw]
        seen = set()
        for item in items:
            if item["merchant_uid"] in seen:
                raise business_error(f"중복된 merchant_uid({item['merchant_uid']})가 요청에 포함되어 있습니다.")
            seen.add(item["merchant_uid"])
        checking_amount = opt_int(params, "checking_amount", minimum=0) or 0
        card_number = opt_str(params, "card_number")
        opt_str(params, "channel_key", 55)
        with self.store.tx() as db:
            found = self._key(db, customer_uid)
            if found is None:
                if card_number is None:
                    raise business_error(MSG_NO_CUSTOMER_FOR_SCHEDULE)
                profile = cards.inspect_card(
                    card_number=card_number,
                    expiry=req_str(params, "expiry"),
                    birth=opt_str(params, "birth"),
                    pwd_2digit=opt_str(params, "pwd_2digit"),
                    now=now,
                )
                customer = {name: opt_str(params, name, limit) for name, limit in CUSTOMER_LIMITS}
                key = self._upsert_key(
                    db,
                    customer_uid=customer_uid,
                    profile=profile,
                    customer=customer,
                    customer_id=opt_str(params, "customer_id"),
                    now=now,
                    source="schedule",
                )
                behaviour = profile.behaviour
            else:
                # With an existing key, card fields are optional and ignored (the key is not re-issued).
                key, key_extra = found
                behaviour = key_extra["behaviour"]
            for item in items:
                if self._schedule_row(db, item["merchant_uid"]) is not None or self._paid_exists(
                    db, item["merchant_uid"]
                ):
                    raise business_error(
                        f"이미 등록된 merchant_uid({item['merchant_uid']})입니다. "
                        "동일한 주문번호로 중복 예약할 수 없습니다."
                    )
            if checking_amount > 0 and behaviour != cards.PAID:
                _, reason = cards.charge_outcome(behaviour)
                raise ApiError(f"카드 확인 결제(checking_amount)에 실패하였습니다. {reason}", code=-1)
            created = []
            for item in items:
                schedule = {
                    "customer_uid": customer_uid,
                    "merchant_uid": item["merchant_uid"],
                    "imp_uid": None,
                    "pg_provider": PG_PROVIDER,
                    "pg_id": PG_ID,
                    "customer_id": key.get("customer_id"),
                    "schedule_at": item["schedule_at"],
                    "executed_at": 0,
                    "revoked_at": 0,
                    "amount": item["amount"],
                    "currency": "KRW",
                    "name": item["name"],
                    # buyer_* fall back to the key's customer_* when omitted (schema).
                    **{name: item.get(name) or key.get(f"customer_{name[6:]}") for name, _ in BUYER_LIMITS},
                    "custom_data": item["custom_data"],
                    "schedule_status": "scheduled",
                    "payment_status": None,
                    "fail_reason": None,
                    "promotion_id": None,
                }
                extra = {
                    "tax_free": item["tax_free"],
                    "vat_amount": item["vat_amount"],
                    "card_quota": item["card_quota"],
                    "notice_url": item["notice_url"],
                    "registered_at": now,
                }
                self._write_schedule(db, schedule, extra, insert=True)
                created.append(schedule)
        return created

    def unschedule(self, params: dict, now: int) -> list[dict]:
        customer_uid = opt_str(params, "customer_uid", 80)
        raw = params.get("merchant_uid")
        merchant_uids = [str(m) for m in (raw if isinstance(raw, list) else [raw]) if m not in (None, "")]
        if customer_uid is None and not merchant_uids:
            raise bad_request("customer_uid 또는 merchant_uid 파라미터가 필요합니다.")
        sql = "SELECT data FROM schedules WHERE schedule_status = 'scheduled'"
        args: list = []
        if customer_uid is not None:
            sql += " AND customer_uid = ?"
            args.append(customer_uid)
        if merchant_uids:
            sql += f" AND merchant_uid IN ({', '.join('?' * len(merchant_uids))})"
            args.extend(merchant_uids)
        with self.store.tx() as db:
            rows = db.execute(sql + " ORDER BY schedule_at, seq", args).fetchall()
            if not rows:
                raise business_error(MSG_NOTHING_TO_UNSCHEDULE)
            revoked = []
            for row in rows:
                data = json.loads(row["data"])
                schedule, extra = data["schedule"], data["extra"]
                schedule.update(schedule_status="revoked", revoked_at=now)
                self._write_schedule(db, schedule, extra, insert=False)
                revoked.append(schedule)
        return revoked

    def get_schedule(self, merchant_uid: str) -> dict:
        with self.store.read() as db:
            found = self._schedule_row(db, merchant_uid)
        if found is None:
            raise self._schedule_not_found(merchant_uid)
        return found[0]

    @staticmethod
    def _schedule_not_found(merchant_uid: str) -> ApiError:
        return not_found(f"요청하신 merchant_uid({merchant_uid})로 등록된 예약결제 정보를 찾을 수 없습니다.")

    @staticmethod
    def _future_schedule_at(params: dict, now: int) -> int:
        schedule_at = req_int(params, "schedule_at")
        if schedule_at <= now:
            raise bad_request(f"schedule_at({schedule_at})은 현재 시각 이후여야 합니다.")
        return schedule_at

    def update_schedule(self, merchant_uid: str, params: dict, now: int) -> dict:
        schedule_at = self._future_schedule_at(params, now)
        with self.store.tx() as db:
            found = self._schedule_row(db, merchant_uid)
            if found is None:
                raise self._schedule_not_found(merchant_uid)
            schedule, extra = found
            if schedule["schedule_status"] != "scheduled":
                raise bad_request("이미 실행되었거나 취소된 예약결제는 변경할 수 없습니다.")
            schedule["schedule_at"] = schedule_at
            self._write_schedule(db, schedule, extra, insert=False)
        return schedule

    @staticmethod
    def _check_retryable(schedule: dict) -> None:
        if schedule["schedule_status"] == "scheduled":
            raise bad_request("아직 실행되지 않은 예약결제입니다.")
        if schedule["payment_status"] in ("paid", "cancelled"):
            raise bad_request("이미 결제가 완료된 예약결제입니다.")

    def reschedule(self, merchant_uid: str, params: dict, now: int) -> dict:
        schedule_at = self._future_schedule_at(params, now)
        with self.store.tx() as db:
            found = self._schedule_row(db, merchant_uid)
            if found is None:
                raise self._schedule_not_found(merchant_uid)
            schedule, extra = found
            self._check_retryable(schedule)
            schedule.update(
                schedule_at=schedule_at,
                schedule_status="scheduled",
                executed_at=0,
                revoked_at=0,
                imp_uid=None,
                payment_status=None,
                fail_reason=None,
            )
            self._write_schedule(db, schedule, extra, insert=False)
        return schedule

    def retry_schedule(self, merchant_uid: str, now: int) -> tuple[dict, list[Notice]]:
        with self.store.tx() as db:
            found = self._schedule_row(db, merchant_uid)
            if found is None:
                raise self._schedule_not_found(merchant_uid)
            schedule, extra = found
            self._check_retryable(schedule)
            if self._key(db, schedule["customer_uid"]) is None:
                raise customer_not_found(schedule["customer_uid"])
            payment, notice = self._execute_schedule(db, schedule, extra, now)
        return payment, [notice]

    def _execute_schedule(self, db: sqlite3.Connection, schedule: dict, extra: dict, now: int) -> tuple[dict, Notice]:
        """The billing-key charge PortOne runs at schedule_at; paid or failed, it fires a webhook."""
        found = self._key(db, schedule["customer_uid"])
        card = self._card_of_key(found[0]) if found else None
        if self._paid_exists(db, schedule["merchant_uid"]):
            status, fail_reason = "failed", MSG_MERCHANT_UID_PAID
        elif found is None:
            status, fail_reason = "failed", MSG_KEY_DELETED
        else:
            status, fail_reason = cards.charge_outcome(found[1]["behaviour"])
        order = {
            "name": schedule["name"],
            "tax_free": extra["tax_free"],
            "vat_amount": extra["vat_amount"],
            "card_quota": extra["card_quota"],
            "custom_data": schedule["custom_data"],
            "notice_url": extra["notice_url"],
            **{name: schedule[name] for name, _ in BUYER_LIMITS},
        }
        payment = self._new_payment(
            db,
            now,
            merchant_uid=schedule["merchant_uid"],
            amount=schedule["amount"],
            order=order,
            card=card,
            customer_uid=schedule["customer_uid"],
            usage="payment.scheduled",
            channel="api",
            status=status,
            fail_reason=fail_reason,
        )
        schedule.update(
            schedule_status="executed",
            executed_at=now,
            imp_uid=payment["imp_uid"],
            payment_status=status,
            fail_reason=fail_reason,
        )
        self._write_schedule(db, schedule, extra, insert=False)
        return payment, self._paid_notice(payment, extra["notice_url"], "schedule")

    def execute_next_due(self, now: int) -> tuple[dict, Notice] | None:
        """Execute the earliest due schedule (schedule_at order), if any. One short transaction each."""
        with self.store.tx() as db:
            row = db.execute(
                "SELECT data FROM schedules WHERE schedule_status = 'scheduled' AND schedule_at <= ?"
                " ORDER BY schedule_at, seq LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            data = json.loads(row["data"])
            return self._execute_schedule(db, data["schedule"], data["extra"], now)

    def _schedule_page(self, where: str, args: list, query: dict, *, ascending: bool) -> dict:
        page, limit = _paging(query)
        order = "ASC" if ascending else "DESC"
        with self.store.read() as db:
            total = db.execute(f"SELECT COUNT(*) FROM schedules WHERE {where}", args).fetchone()[0]
            rows = db.execute(
                f"SELECT data FROM schedules WHERE {where} ORDER BY schedule_at {order}, seq {order} LIMIT ? OFFSET ?",
                [*args, limit, (page - 1) * limit],
            ).fetchall()
        return _page(total, page, limit, [json.loads(row["data"])["schedule"] for row in rows])

    @staticmethod
    def _schedule_status_filter(value: str | None) -> str | None:
        if value is not None and value not in SCHEDULE_STATUSES:
            raise bad_request(f"schedule_status 파라미터는 {', '.join(SCHEDULE_STATUSES)} 중 하나여야 합니다.")
        return value

    def list_schedules(self, query: dict) -> dict:
        start = q_int(query, "schedule_from")
        end = q_int(query, "schedule_to")
        if start is None or end is None:
            raise bad_request("schedule_from, schedule_to 파라미터가 필요합니다.")
        _check_schedule_window(start, end)
        status = self._schedule_status_filter(q_one(query, "schedule_status"))
        sorting = q_one(query, "sorting") or "-scheduled"
        if sorting not in ("scheduled", "-scheduled"):
            raise bad_request("sorting 파라미터는 scheduled 또는 -scheduled 이어야 합니다.")
        where, args = "schedule_at >= ? AND schedule_at < ?", [start, end]
        if status:
            where += " AND schedule_status = ?"
            args.append(status)
        return self._schedule_page(where, args, query, ascending=sorting == "scheduled")

    def customer_schedules(self, customer_uid: str, query: dict) -> dict:
        start = q_int(query, "from")
        end = q_int(query, "to")
        if start is None or end is None:
            raise bad_request("from, to 파라미터가 필요합니다.")
        _check_schedule_window(start, end)
        # The hyphenated name is what the V1 schema declares for this endpoint.
        status = self._schedule_status_filter(q_one(query, "schedule-status"))
        with self.store.read() as db:
            known = (
                self._key(db, customer_uid) is not None
                or db.execute("SELECT 1 FROM schedules WHERE customer_uid = ? LIMIT 1", (customer_uid,)).fetchone()
            )
        if not known:
            raise customer_not_found(customer_uid)
        where, args = "customer_uid = ? AND schedule_at >= ? AND schedule_at < ?", [customer_uid, start, end]
        if status:
            where += " AND schedule_status = ?"
            args.append(status)
        return self._schedule_page(where, args, query, ascending=False)

    def dump_schedules(self) -> list[dict]:
        with self.store.read() as db:
            rows = db.execute("SELECT data FROM schedules ORDER BY seq").fetchall()
        result = []
        for row in rows:
            data = json.loads(row["data"])
            result.append({**data["schedule"], "_sandbox": data["extra"]})
        return result

    # == payment lookups ===================================================================================

    def get_payment(self, imp_uid: str, *, include_sandbox: bool) -> dict:
        with self.store.read() as db:
            found = self._payment_row(db, imp_uid)
        # Since 2026-01-26 test-channel payments are hidden unless include_sandbox=true; every sandbox
        # payment is a test-channel payment.
        if found is None or (found[0]["sandbox"] and not include_sandbox):
            raise not_found(MSG_PAYMENT_NOT_FOUND)
        return found[0]

    def _latest_for_merchant_uid(self, db, merchant_uid: str, status: str | None, sorting: str) -> dict | None:
        column, direction = self._sort(sorting)
        sql = "SELECT data FROM payments WHERE merchant_uid = ?"
        args: list = [merchant_uid]
        if status:
            sql += " AND status = ?"
            args.append(status)
        row = db.execute(f"{sql} ORDER BY {column} {direction}, seq {direction} LIMIT 1", args).fetchone()
        return json.loads(row["data"])["payment"] if row else None

    @staticmethod
    def _sort(sorting: str | None) -> tuple[str, str]:
        if sorting is None:
            return PAYMENT_SORTS["-started"]
        if sorting not in PAYMENT_SORTS:
            raise bad_request(f"sorting 파라미터는 {', '.join(PAYMENT_SORTS)} 중 하나여야 합니다.")
        return PAYMENT_SORTS[sorting]

    @staticmethod
    def _status_filter(status: str | None) -> str | None:
        if status is not None and status not in PAYMENT_STATUSES:
            raise bad_request(f"payment_status는 {', '.join(PAYMENT_STATUSES)} 중 하나여야 합니다.")
        return status

    def get_payments(self, imp_uids: list[str], merchant_uids: list[str]) -> tuple[list[dict], list[str]]:
        if not imp_uids and not merchant_uids:
            raise bad_request("imp_uid[] 또는 merchant_uid[] 파라미터가 필요합니다.")
        if len(imp_uids) + len(merchant_uids) > MAX_MULTI_IDS:
            raise bad_request(f"한 번에 최대 {MAX_MULTI_IDS}개까지 조회할 수 있습니다.")
        found, missing = [], []
        with self.store.read() as db:
            for imp_uid in imp_uids:
                row = self._payment_row(db, imp_uid)
                if row is None:
                    missing.append(imp_uid)
                else:
                    found.append(row[0])
            for merchant_uid in merchant_uids:
                payment = self._latest_for_merchant_uid(db, merchant_uid, None, "-started")
                if payment is None:
                    missing.append(merchant_uid)
                else:
                    found.append(payment)
        return found, missing

    def find_payment(self, merchant_uid: str, status: str | None, query: dict) -> dict:
        status = self._status_filter(status)
        with self.store.read() as db:
            payment = self._latest_for_merchant_uid(db, merchant_uid, status, q_one(query, "sorting"))
        if payment is None:
            raise not_found(MSG_PAYMENT_NOT_FOUND)
        return payment

    def find_all_payments(self, merchant_uid: str, status: str | None, query: dict) -> dict:
        status = self._status_filter(status)
        column, direction = self._sort(q_one(query, "sorting"))
        page, limit = _paging(query)
        where, args = "merchant_uid = ?", [merchant_uid]
        if status:
            where += " AND status = ?"
            args.append(status)
        with self.store.read() as db:
            total = db.execute(f"SELECT COUNT(*) FROM payments WHERE {where}", args).fetchone()[0]
            rows = db.execute(
                f"SELECT data FROM payments WHERE {where} ORDER BY {column} {direction}, seq {direction}"
                " LIMIT ? OFFSET ?",
                [*args, limit, (page - 1) * limit],
            ).fetchall()
        if total == 0:
            raise not_found(MSG_PAYMENT_NOT_FOUND)
        return _page(total, page, limit, [json.loads(row["data"])["payment"] for row in rows])

    def payments_by_status(self, status: str, query: dict, now: int) -> dict:
        if status != "all":
            self._status_filter(status)
        column, direction = self._sort(q_one(query, "sorting"))
        page, limit = _paging(query)
        end = q_int(query, "to", default=now)
        start = q_int(query, "from", default=end - STATUS_WINDOW_S)
        if end < start:
            raise bad_request("to 파라미터는 from보다 커야 합니다.")
        if end - start > STATUS_WINDOW_S:
            raise bad_request("조회 기간은 최대 90일입니다.")
        # `from`/`to` apply to "the time of the payment's final status" (V1 schema; see README): paid_at for
        # a paid one (a partial refund keeps it paid), cancelled_at once fully refunded, failed_at, and
        # started_at while ready. For `all` each payment is matched on the field of its own status.
        time_field = STATUS_TIME_FIELD.get(status, STATUS_TIME_OF_ANY)
        where, args = f"{time_field} >= ? AND {time_field} <= ?", [start, end]
        if status != "all":
            where += " AND status = ?"
            args.append(status)
        with self.store.read() as db:
            total = db.execute(f"SELECT COUNT(*) FROM payments WHERE {where}", args).fetchone()[0]
            rows = db.execute(
                f"SELECT data FROM payments WHERE {where} ORDER BY {column} {direction}, seq {direction}"
                " LIMIT ? OFFSET ?",
                [*args, limit, (page - 1) * limit],
            ).fetchall()
        return _page(total, page, limit, [json.loads(row["data"])["payment"] for row in rows])

    def dump_payments(self) -> list[dict]:
        with self.store.read() as db:
            rows = db.execute("SELECT data FROM payments ORDER BY seq").fetchall()
        result = []
        for row in rows:
            data = json.loads(row["data"])
            result.append({**data["payment"], "_sandbox": data["extra"]})
        return result

    # == refunds ===========================================================================================

    def cancel(self, params: dict, now: int) -> tuple[dict, list[Notice]]:
        imp_uid = opt_str(params, "imp_uid")
        merchant_uid = opt_str(params, "merchant_uid")
        if imp_uid is None and merchant_uid is None:
            raise bad_request("imp_uid 또는 merchant_uid 파라미터가 필요합니다.")
        requested = opt_int(params, "amount", minimum=0) or 0
        tax_free = opt_int(params, "tax_free", minimum=0) or 0
        vat_amount = opt_int(params, "vat_amount", minimum=0)
        checksum_raw = params.get("checksum")
        checksum = None if checksum_raw in (None, "") else to_int(checksum_raw, "checksum")
        reason = opt_str(params, "reason", 256)
        enable_webhook = opt_bool(params, "enable_webhook")
        with self.store.tx() as db:
            if imp_uid is not None:
                # imp_uid takes precedence: a wrong imp_uid fails even when merchant_uid is right.
                found = self._payment_row(db, imp_uid)
            else:
                row = db.execute(
                    "SELECT imp_uid FROM payments WHERE merchant_uid = ? ORDER BY"
                    " CASE status WHEN 'paid' THEN 0 WHEN 'cancelled' THEN 1 ELSE 2 END, seq DESC LIMIT 1",
                    (merchant_uid,),
                ).fetchone()
                found = self._payment_row(db, row["imp_uid"]) if row else None
            if found is None:
                raise business_error(MSG_CANCEL_NOT_FOUND)
            payment, extra = found
            if payment["status"] == "cancelled":
                raise business_error(MSG_ALREADY_CANCELLED)
            if payment["status"] != "paid":
                raise business_error("결제완료(paid) 상태가 아닌 결제건은 취소할 수 없습니다.")
            balance = payment["amount"] - payment["cancel_amount"]
            # Unconfirmed wording (docs/iamport-v1.md#refunds-and-checksum): the real texts for a checksum mismatch
            # and for an amount above the balance were not found. Both are refused with code 1 and a clear message.
            if checksum is not None and checksum != balance:
                raise business_error(
                    f"[checksum 불일치] 요청하신 checksum({checksum}원)이 취소 가능 잔액({balance}원)과 "
                    "일치하지 않습니다."
                )
            amount = requested or balance
            if amount > balance:
                raise business_error(f"취소 요청금액({amount}원)이 취소 가능 잔액({balance}원)을 초과합니다.")
            if tax_free > amount:
                raise bad_request("tax_free 파라미터는 취소 요청금액보다 클 수 없습니다.")
            if tax_free > extra["tax_free"] - extra["cancelled_tax_free"]:
                raise business_error("취소 면세금액(tax_free)이 취소 가능한 면세금액을 초과합니다.")
            seq = self.store.next_seq(db, "cancel")
            cancellation_id = f"sbx_cancel_{seq:012d}"
            receipt_url = f"{self.base_url}/__sandbox__/receipts/{payment['imp_uid']}?cancellation_id={cancellation_id}"
            payment["cancel_history"].append(
                {
                    "pg_tid": f"sbxc{seq:012d}",
                    "amount": amount,
                    "cancelled_at": now,
                    "reason": reason,
                    "cancellation_id": cancellation_id,
                    "receipt_url": receipt_url,
                }
            )
            payment["cancel_receipt_urls"].append(receipt_url)
            payment["cancel_amount"] += amount
            payment["cancel_reason"] = reason
            extra["cancelled_tax_free"] += tax_free
            extra["cancelled_vat_amount"] += default_vat(amount - tax_free) if vat_amount is None else vat_amount
            extra["updated_at"] = now
            # Unconfirmed (docs/iamport-v1.md#refunds-and-checksum): V1 has no partial-cancel status; the usual
            # reading is that a partial refund keeps `paid` (cancel_amount > 0) and only a full refund becomes
            # `cancelled`.
            if payment["cancel_amount"] == payment["amount"]:
                payment["status"] = "cancelled"
                payment["cancelled_at"] = now
                self._mark_schedule_cancelled(db, payment["imp_uid"])
            self._write_payment(db, payment, extra, insert=False)
        notices = []
        if enable_webhook:
            body = {
                "imp_uid": payment["imp_uid"],
                "merchant_uid": payment["merchant_uid"],
                "status": "cancelled",
                "cancellation_id": cancellation_id,
            }
            notices.append(Notice(extra["notice_url"], body, "cancel"))
        return payment, notices

    def _mark_schedule_cancelled(self, db: sqlite3.Connection, imp_uid: str) -> None:
        for row in db.execute("SELECT data FROM schedules WHERE schedule_status = 'executed'").fetchall():
            data = json.loads(row["data"])
            if data["schedule"]["imp_uid"] == imp_uid:
                data["schedule"]["payment_status"] = "cancelled"
                self._write_schedule(db, data["schedule"], data["extra"], insert=False)

    # == controls: Iamport disagreeing with the merchant's books (대사 tests) ===============================

    def console_refund(self, imp_uid: str, params: dict, now: int) -> dict:
        """A refund made by hand in the PortOne console: the same cancellation as the API, no webhook."""
        body = {"imp_uid": imp_uid, "reason": params.get("reason") or "관리자 콘솔 취소"}
        if params.get("amount") not in (None, "", 0):
            body["amount"] = params["amount"]
        payment, _notices = self.cancel(body, now)
        return payment

    def direct_payment(self, params: dict, now: int) -> dict:
        """A paid card payment made outside the merchant's app (e.g. a console key-in under one of its
        merchant_uid patterns): no webhook. `paid_at` (default now) may lie in the past."""
        merchant_uid = req_str(params, "merchant_uid", 40)
        amount = self._amount(params)
        at = opt_int(params, "paid_at", minimum=1) or now
        order = self._order(
            {"name": params.get("name") or "콘솔 결제", "tax_free": params.get("tax_free")}, amount, name_required=False
        )
        with self.store.tx() as db:
            if self._paid_exists(db, merchant_uid):
                raise business_error(MSG_MERCHANT_UID_PAID)
            return self._new_payment(
                db,
                at,
                merchant_uid=merchant_uid,
                amount=amount,
                order=order,
                card=_console_card(),
                customer_uid=opt_str(params, "customer_uid", 80),
                usage=None,
                channel="api",
                status="paid",
                fail_reason=None,
            )

    def bulk_payments(self, params: dict, now: int) -> dict:
        """`count` paid payments `{prefix}{i}` of `amount` won, `paid_at` spread over [`from`, `to`], in one
        transaction (benchmarks: a day of 100,000 payments in seconds, not an hour of HTTP calls)."""
        count = req_int(params, "count", minimum=1)
        prefix = req_str(params, "prefix", 30)
        amount = self._amount(params)
        start = req_int(params, "from", minimum=1)
        end = req_int(params, "to", minimum=start)
        first = opt_int(params, "start", minimum=0) or 0
        order = self._order({"name": "bench"}, amount, name_required=False)
        card = _console_card()
        span = end - start
        with self.store.tx() as db:
            for i in range(first, first + count):
                at = start + (span * (i - first)) // max(count - 1, 1)
                self._new_payment(
                    db,
                    at,
                    merchant_uid=f"{prefix}{i}",
                    amount=amount,
                    order=order,
                    card=card,
                    customer_uid=opt_str(params, "customer_uid", 80),
                    usage="payment",
                    channel="api",
                    status="paid",
                    fail_reason=None,
                )
        return {"ok": True, "count": count}

    def set_payment_amount(self, imp_uid: str, params: dict, now: int) -> dict:
        """Change a payment's amount at the PG (a corrected or tampered charge): what 대사 must catch."""
        amount = self._amount(params)
        with self.store.tx() as db:
            found = self._payment_row(db, imp_uid)
            if found is None:
                raise not_found(MSG_PAYMENT_NOT_FOUND)
            payment, extra = found
            if amount < payment["cancel_amount"]:
                raise bad_request("amount는 이미 취소된 금액보다 작을 수 없습니다.")
            payment["amount"] = amount
            extra["updated_at"] = now
            self._write_payment(db, payment, extra, insert=False)
        return payment

    # == prepare (browser checkout amount pre-registration) ================================================

    def prepare(self, params: dict, *, update: bool) -> dict:
        merchant_uid = req_str(params, "merchant_uid", 40)
        amount = req_int(params, "amount", minimum=0)
        currency = opt_str(params, "currency")
        record = {"merchant_uid": merchant_uid, "amount": amount, "currency": currency}
        with self.store.tx() as db:
            exists = db.execute("SELECT 1 FROM prepares WHERE merchant_uid = ?", (merchant_uid,)).fetchone()
            if update and not exists:
                raise not_found(f"사전등록된 결제정보가 없습니다. (merchant_uid: {merchant_uid})")
            if not update and exists:
                raise business_error(f"이미 사전등록된 merchant_uid({merchant_uid})입니다.")
            db.execute(
                "INSERT OR REPLACE INTO prepares (merchant_uid, data) VALUES (?, ?)",
                (merchant_uid, json.dumps(record, ensure_ascii=False)),
            )
        return record

    def get_prepare(self, merchant_uid: str) -> dict:
        with self.store.read() as db:
            row = db.execute("SELECT data FROM prepares WHERE merchant_uid = ?", (merchant_uid,)).fetchone()
        if row is None:
            raise not_found(f"사전등록된 결제정보가 없습니다. (merchant_uid: {merchant_uid})")
        return json.loads(row["data"])

    # == browser SDK stand-in ==============================================================================

    def sdk_request_pay(self, payload: dict, now: int) -> tuple[dict, list[Notice]]:
        """What the payment window does: issue the key (and charge `amount` > 0, as Danal does)."""
        params = payload.get("params") if isinstance(payload.get("params"), dict) else {}
        card = payload.get("card") if isinstance(payload.get("card"), dict) else {}

        def refuse(code: str, message: str, payment: dict | None = None) -> tuple[dict, list[Notice]]:
            return self._sdk_answer(params, payment, code, message), []

        if payload.get("imp_code") != self.merchant_code:
            return refuse("F400", "등록되지 않은 가맹점 식별코드입니다. IMP.init()의 인자를 확인해주세요.")
        try:
            merchant_uid = req_str(params, "merchant_uid", 40)
            amount = req_int(params, "amount", minimum=0)
            customer_uid = opt_str(params, "customer_uid", 80)
            if (opt_str(params, "pay_method") or "card") != "card":
                raise bad_request("sandbox 결제창은 카드(pay_method: card)만 지원합니다.")
            if amount == 0 and customer_uid is None:
                raise bad_request("amount 파라미터는 0보다 커야 합니다.")
            order = self._order(params, amount, name_required=False)
        except ApiError as exc:
            return refuse("F400", exc.message)
        with self.store.tx() as db:
            prepared = db.execute("SELECT data FROM prepares WHERE merchant_uid = ?", (merchant_uid,)).fetchone()
            if prepared and json.loads(prepared["data"])["amount"] != amount:
                return refuse("F400", "사전 등록된 결제금액과 요청 결제금액이 일치하지 않습니다.")
            if self._paid_exists(db, merchant_uid):
                # SDK: a merchant_uid already paid is pre-rejected ("사전거절") before any window opens.
                return refuse("F400", MSG_MERCHANT_UID_PAID)
            usage = "issue" if customer_uid else None
            try:
                profile = cards.inspect_card(
                    card_number=cards.format_card_number(str(card.get("card_number") or "")),
                    expiry=str(card.get("expiry") or ""),
                    birth=opt_str(card, "birth"),
                    pwd_2digit=opt_str(card, "pwd_2digit"),
                    now=now,
                )
            except ApiError as exc:
                payment = self._new_payment(
                    db,
                    now,
                    merchant_uid=merchant_uid,
                    amount=amount,
                    order=order,
                    card=None,
                    customer_uid=customer_uid,
                    usage=usage,
                    channel="pc",
                    status="failed",
                    fail_reason=exc.message,
                )
                return refuse("F0005", exc.message, payment)
            if customer_uid:
                customer = {f"customer_{name[6:]}": order.get(name) for name, _ in BUYER_LIMITS}
                self._upsert_key(
                    db,
                    customer_uid=customer_uid,
                    profile=profile,
                    customer=customer,
                    customer_id=None,
                    now=now,
                    source="sdk",
                )
            status, fail_reason = ("paid", None) if amount == 0 else cards.charge_outcome(profile.behaviour)
            payment = self._new_payment(
                db,
                now,
                merchant_uid=merchant_uid,
                amount=amount,
                order=order,
                card=self._card_of_profile(profile),
                customer_uid=customer_uid,
                usage=usage,
                channel="pc",
                status=status,
                fail_reason=fail_reason,
            )
        if status != "paid":
            return refuse("F0005", fail_reason, payment)
        # Undocumented whether a billing-key issuance window fires a webhook (docs/iamport-v1.md#webhooks).
        # Defensive: send one (status paid; re-fetching shows customer_uid_usage "issue"), so the app
        # must recognise and skip it.
        return self._sdk_answer(params, payment, None, None), [self._paid_notice(payment, order["notice_url"], "sdk")]

    @staticmethod
    def _sdk_answer(params: dict, payment: dict | None, error_code: str | None, error_msg: str | None) -> dict:
        payment = payment or {}
        success = error_code is None
        return {
            "success": success,
            "imp_success": success,
            "error_code": error_code,
            "error_msg": error_msg,
            "imp_uid": payment.get("imp_uid"),
            "merchant_uid": params.get("merchant_uid"),
            "pay_method": "card",
            "paid_amount": payment.get("amount", 0) if payment.get("status") == "paid" else 0,
            "status": payment.get("status"),
            "name": params.get("name"),
            "pg_provider": PG_PROVIDER,
            "emb_pg_provider": None,
            "pg_tid": payment.get("pg_tid"),
            "pg_type": "payment",
            "buyer_name": params.get("buyer_name"),
            "buyer_email": params.get("buyer_email"),
            "buyer_tel": params.get("buyer_tel"),
            "buyer_addr": params.get("buyer_addr"),
            "buyer_postcode": params.get("buyer_postcode"),
            "custom_data": params.get("custom_data"),
            "paid_at": payment.get("paid_at", 0),
            "receipt_url": payment.get("receipt_url"),
            "apply_num": payment.get("apply_num"),
            "card_name": payment.get("card_name"),
            "card_number": payment.get("card_number"),
            "card_quota": payment.get("card_quota", 0),
            "currency": "KRW",
        }
