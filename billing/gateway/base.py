"""The payment-gateway port: a Protocol plus the frozen value objects it returns.

Nothing here knows about Iamport's JSON; adapters (``iamport.py``) translate their wire format into these
types. Amounts are ``int`` won, timestamps are aware UTC datetimes (``None`` when the event has not happened).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Protocol, TypeVar, runtime_checkable


class GatewayPaymentStatus(StrEnum):
    """A payment's status at the gateway. `code == 0` is not "paid": only PAID (and CANCELLED, money that moved
    and was refunded) means money moved. A StrEnum, so it equals the wire value."""

    READY = "ready"  # started, not finished (e.g. a virtual account waiting)
    PAID = "paid"
    FAILED = "failed"  # declined by the card company or the PG; `fail_reason` says why
    CANCELLED = "cancelled"  # refunded in full


class GatewayScheduleStatus(StrEnum):
    SCHEDULED = "scheduled"
    EXECUTED = "executed"
    REVOKED = "revoked"


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class GatewayCancel:
    """One (partial or full) refund recorded on a payment."""

    amount: int
    cancelled_at: dt.datetime | None
    reason: str | None = None
    pg_tid: str | None = None
    cancellation_id: str | None = None
    receipt_url: str | None = None


@dataclass(frozen=True, slots=True)
class GatewayPayment:
    """A payment record as the gateway knows it (one charge attempt; a merchant_uid may own several)."""

    imp_uid: str
    merchant_uid: str
    status: str  # a GatewayPaymentStatus value
    amount: int
    cancel_amount: int = 0
    currency: str = "KRW"
    name: str | None = None
    fail_reason: str | None = None
    cancel_reason: str | None = None
    paid_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    customer_uid: str | None = None
    customer_uid_usage: str | None = None
    pay_method: str | None = None
    pg_provider: str | None = None
    pg_id: str | None = None
    pg_tid: str | None = None
    apply_num: str | None = None
    card_name: str | None = None
    card_number: str | None = None
    receipt_url: str | None = None
    sandbox: bool = False
    custom_data: str | None = None
    cancel_history: tuple[GatewayCancel, ...] = ()

    @property
    def is_paid(self) -> bool:
        """Approved and not fully refunded (a partial refund keeps the status ``paid``)."""
        return self.status == GatewayPaymentStatus.PAID

    @property
    def is_failed(self) -> bool:
        """Declined by the card company / PG (``fail_reason`` says why)."""
        return self.status == GatewayPaymentStatus.FAILED

    @property
    def is_cancelled(self) -> bool:
        return self.status == GatewayPaymentStatus.CANCELLED

    @property
    def is_ready(self) -> bool:
        return self.status == "ready"

    @property
    def cancellable_amount(self) -> int:
        """What can still be refunded; pass it as ``checksum`` to ``cancel_payment``."""
        if self.status not in ("paid", "cancelled"):
            return 0
        return max(self.amount - self.cancel_amount, 0)


@dataclass(frozen=True, slots=True)
class GatewayBillingKey:
    """A stored card (billing key) mapped to our ``customer_uid``. ``card_number`` is masked by the PG."""

    customer_uid: str
    pg_provider: str | None = None
    pg_id: str | None = None
    card_name: str | None = None
    card_code: str | None = None
    card_number: str | None = None
    card_type: int | None = None
    sandbox: bool = False
    customer_id: str | None = None
    customer_name: str | None = None
    customer_tel: str | None = None
    customer_email: str | None = None
    customer_addr: str | None = None
    customer_postcode: str | None = None
    inserted: dt.datetime | None = None
    updated: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class GatewaySchedule:
    """A scheduled charge; ``imp_uid`` stays ``None`` until it has been executed."""

    customer_uid: str
    merchant_uid: str
    schedule_at: dt.datetime | None
    amount: int
    schedule_status: str
    imp_uid: str | None = None
    executed_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    currency: str = "KRW"
    name: str | None = None
    payment_status: str | None = None
    fail_reason: str | None = None
    custom_data: str | None = None

    @property
    def is_scheduled(self) -> bool:
        return self.schedule_status == "scheduled"

    @property
    def is_executed(self) -> bool:
        return self.schedule_status == "executed"

    @property
    def is_revoked(self) -> bool:
        return self.schedule_status == "revoked"


@dataclass(frozen=True, slots=True)
class GatewayPrepared:
    """An amount pre-registered for a browser checkout (``/payments/prepare``)."""

    merchant_uid: str
    amount: int
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleItem:
    """Input for ``schedule_charges``: one future charge. ``schedule_at`` must be timezone-aware."""

    merchant_uid: str
    schedule_at: dt.datetime
    amount: int
    name: str
    currency: str = "KRW"
    tax_free: int | None = None
    vat_amount: int | None = None
    custom_data: str | None = None
    notice_url: str | None = None
    buyer_name: str | None = None
    buyer_email: str | None = None
    buyer_tel: str | None = None

    def __post_init__(self) -> None:
        if self.schedule_at.tzinfo is None or self.schedule_at.utcoffset() is None:
            raise ValueError("ScheduleItem.schedule_at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a paged lookup. ``next``/``previous`` are page numbers, ``None`` at the ends."""

    items: tuple[T, ...]
    total: int
    page: int = 1
    previous: int | None = None
    next: int | None = None


@runtime_checkable
class PaymentGateway(Protocol):
    """What the billing domain needs from a card gateway. All arguments are keyword-only.

    Errors are ``billing.gateway.errors.GatewayError`` subclasses. A decline is NOT an error: charge methods
    return a ``GatewayPayment`` whose ``status`` is ``"failed"``.
    """

    def authenticate(self) -> None:
        """Make sure the calls that follow need no credentials round trip first (a no-op while a cached token
        is fresh). A paced batch calls it before its first slot, so no charge waits on a token fetch and then
        starts together with the ones behind it."""
        ...

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
        customer_id: str | None = None,
    ) -> GatewayBillingKey: ...

    def get_billing_key(self, *, customer_uid: str) -> GatewayBillingKey: ...

    def get_billing_keys(self, *, customer_uids: Sequence[str]) -> list[GatewayBillingKey]: ...

    def delete_billing_key(self, *, customer_uid: str, reason: str | None = None) -> GatewayBillingKey: ...

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
    ) -> GatewayPayment: ...

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
    ) -> GatewayPayment: ...

    def schedule_charges(self, *, customer_uid: str, schedules: Sequence[ScheduleItem]) -> list[GatewaySchedule]: ...

    def unschedule_charges(
        self, *, customer_uid: str | None = None, merchant_uids: Sequence[str] | None = None
    ) -> list[GatewaySchedule]: ...

    def get_schedule(self, *, merchant_uid: str) -> GatewaySchedule: ...

    def find_schedules(
        self,
        *,
        schedule_from: dt.datetime,
        schedule_to: dt.datetime,
        status: str | None = None,
        page: int = 1,
        limit: int = 20,
    ) -> Page[GatewaySchedule]: ...

    def get_customer_schedules(
        self,
        *,
        customer_uid: str,
        from_: dt.datetime,
        to: dt.datetime,
        status: str | None = None,
        page: int = 1,
    ) -> Page[GatewaySchedule]: ...

    def get_payment(self, *, imp_uid: str) -> GatewayPayment: ...

    def get_payments(
        self, *, imp_uids: Sequence[str] = (), merchant_uids: Sequence[str] = ()
    ) -> list[GatewayPayment]: ...

    def find_payment(self, *, merchant_uid: str, status: str | None = None) -> GatewayPayment | None: ...

    def find_payments(self, *, merchant_uid: str, status: str | None = None) -> list[GatewayPayment]: ...

    def list_payments(
        self,
        *,
        status: str = "all",
        from_: dt.datetime,
        to: dt.datetime,
        page: int = 1,
        limit: int = 1000,
        sorting: str | None = None,
    ) -> Page[GatewayPayment]:
        """One page of the payments in ``status`` (``all``, ``ready``, ``paid``, ``cancelled``, ``failed``) whose
        time falls in ``from_ <= t <= to`` (both inclusive, whole seconds; at most 90 days). Which time: the one of
        the payment's current status (paid_at, cancelled_at, failed_at; started_at while ready)."""
        ...

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
    ) -> GatewayPayment: ...

    def prepare_payment(self, *, merchant_uid: str, amount: int) -> GatewayPrepared: ...

    def get_prepared_payment(self, *, merchant_uid: str) -> GatewayPrepared: ...
