"""Iamport V1 JSON <-> the port's frozen dataclasses (billing/gateway/base.py), and the values in between.

Nothing here sends a request: `iamport.py` builds bodies with these helpers and maps answers with them, on the
transport of `transport.py`. Amounts are ints of won (bools, floats and fractions refused), UNIX seconds become
aware UTC datetimes and 0 becomes None (docs/iamport-v1.md#timestamps).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

from .base import (
    GatewayBillingKey,
    GatewayCancel,
    GatewayPayment,
    GatewayPrepared,
    GatewaySchedule,
    Page,
)
from .errors import GatewayError


def seg(value: str) -> str:
    if not value:
        raise ValueError("path identifiers must be non-empty")
    return quote(str(value), safe="")


def compact(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def custom_data(value: str | Mapping[str, Any] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def unix(value: dt.datetime) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetimes sent to Iamport must be timezone-aware")
    return int(value.timestamp())


# ---------------------------------------------------------------------- helpers: money


def won(value: Any, field: str) -> int:
    """Validate an outgoing amount: a non-negative int of won (bools and floats refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an int of won, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{field} must not be negative")
    return value


def won_opt(value: Any, field: str) -> int | None:
    return None if value is None else won(value, field)


def to_int(value: Any, field: str) -> int:
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
        return to_int(number, field)
    raise GatewayError(f"Iamport sent an unexpected type for {field}: {type(value).__name__}")


def int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------- helpers: parsing


def ts(value: Any) -> dt.datetime | None:
    seconds = to_int(value, "timestamp") if value not in (None, "") else 0
    if seconds == 0:
        return None
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def str_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def json_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def require(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise GatewayError(f"Iamport returned no {what} object")
    return data


def as_list(data: Any) -> list[Any]:
    if data is None:
        return []
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping) and isinstance(data.get("list"), list):
        return data["list"]
    raise GatewayError("Iamport returned an unexpected list shape")


def payment(data: Any) -> GatewayPayment:
    p = require(data, "payment")
    history = tuple(
        GatewayCancel(
            amount=to_int(c.get("amount"), "cancel_history.amount"),
            cancelled_at=ts(c.get("cancelled_at")),
            reason=str_or_none(c.get("reason")),
            pg_tid=str_or_none(c.get("pg_tid")),
            cancellation_id=str_or_none(c.get("cancellation_id")),
            receipt_url=str_or_none(c.get("receipt_url")),
        )
        for c in (p.get("cancel_history") or ())
        if isinstance(c, Mapping)
    )
    return GatewayPayment(
        imp_uid=str(p.get("imp_uid") or ""),
        merchant_uid=str(p.get("merchant_uid") or ""),
        status=str(p.get("status") or ""),
        amount=to_int(p.get("amount"), "amount"),
        cancel_amount=to_int(p.get("cancel_amount"), "cancel_amount"),
        currency=str(p.get("currency") or "KRW"),
        name=str_or_none(p.get("name")),
        fail_reason=str_or_none(p.get("fail_reason")),
        cancel_reason=str_or_none(p.get("cancel_reason")),
        paid_at=ts(p.get("paid_at")),
        failed_at=ts(p.get("failed_at")),
        cancelled_at=ts(p.get("cancelled_at")),
        started_at=ts(p.get("started_at")),
        customer_uid=str_or_none(p.get("customer_uid")),
        customer_uid_usage=str_or_none(p.get("customer_uid_usage")),
        pay_method=str_or_none(p.get("pay_method")),
        pg_provider=str_or_none(p.get("pg_provider")),
        pg_id=str_or_none(p.get("pg_id")),
        pg_tid=str_or_none(p.get("pg_tid")),
        apply_num=str_or_none(p.get("apply_num")),
        card_name=str_or_none(p.get("card_name")),
        card_number=str_or_none(p.get("card_number")),
        receipt_url=str_or_none(p.get("receipt_url")),
        sandbox=bool(p.get("sandbox", False)),
        custom_data=json_str(p.get("custom_data")),
        cancel_history=history,
    )


def billing_key(data: Any) -> GatewayBillingKey:
    k = require(data, "billing key")
    card_type = k.get("card_type")
    return GatewayBillingKey(
        customer_uid=str(k.get("customer_uid") or ""),
        pg_provider=str_or_none(k.get("pg_provider")),
        pg_id=str_or_none(k.get("pg_id")),
        card_name=str_or_none(k.get("card_name")),
        card_code=str_or_none(k.get("card_code")),
        card_number=str_or_none(k.get("card_number")),
        card_type=None if card_type in (None, "") else to_int(card_type, "card_type"),
        sandbox=bool(k.get("sandbox", False)),
        customer_id=str_or_none(k.get("customer_id")),
        customer_name=str_or_none(k.get("customer_name")),
        customer_tel=str_or_none(k.get("customer_tel")),
        customer_email=str_or_none(k.get("customer_email")),
        customer_addr=str_or_none(k.get("customer_addr")),
        customer_postcode=str_or_none(k.get("customer_postcode")),
        inserted=ts(k.get("inserted")),
        updated=ts(k.get("updated")),
    )


def schedule(data: Any) -> GatewaySchedule:
    s = require(data, "schedule")
    return GatewaySchedule(
        customer_uid=str(s.get("customer_uid") or ""),
        merchant_uid=str(s.get("merchant_uid") or ""),
        imp_uid=str_or_none(s.get("imp_uid")),
        schedule_at=ts(s.get("schedule_at")),
        executed_at=ts(s.get("executed_at")),
        revoked_at=ts(s.get("revoked_at")),
        amount=to_int(s.get("amount"), "amount"),
        currency=str(s.get("currency") or "KRW"),
        name=str_or_none(s.get("name")),
        schedule_status=str(s.get("schedule_status") or ""),
        payment_status=str_or_none(s.get("payment_status")),
        fail_reason=str_or_none(s.get("fail_reason")),
        custom_data=json_str(s.get("custom_data")),
    )


def prepared(data: Any) -> GatewayPrepared:
    d = require(data, "prepared payment")
    return GatewayPrepared(
        merchant_uid=str(d.get("merchant_uid") or ""),
        amount=to_int(d.get("amount"), "amount"),
        currency=str_or_none(d.get("currency")),
    )


def page(data: Any, parse: Callable[[Any], Any], page: int) -> Page[Any]:
    if isinstance(data, list) or data is None:
        items = tuple(parse(x) for x in (data or ()))
        return Page(items=items, total=len(items), page=page)
    d = require(data, "page")
    raw: Iterable[Any] = d.get("list") or ()
    items = tuple(parse(x) for x in raw)
    previous = to_int(d.get("previous"), "previous") or None
    nxt = to_int(d.get("next"), "next") or None
    total = to_int(d.get("total"), "total") if d.get("total") is not None else len(items)
    return Page(items=items, total=total, page=page, previous=previous, next=nxt)
