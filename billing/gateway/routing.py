"""A ``PaymentGateway`` over two adapters, for a merchant moving from Iamport V1 to PortOne V2.

Cards stay on the gateway that issued them: a V1 billing key keeps being charged through V1 until the
subscriber registers a new card (which V2 issues). Routing needs no database (the charge threads have none):

* by billing key: PortOne V2 names its keys (``billing-key-…``); every other ``customer_uid`` is one we gave
  Iamport V1;
* by payment id: Iamport V1's ``imp_uid`` is ``imp_…``; on V2 the port's ``imp_uid`` is the paymentId;
* by ``merchant_uid`` alone (the janitor's lookups): ask the primary gateway, then the other one if the
  primary does not know it. Only reads route this way; a read never charges.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import GatewayPayment, PaymentGateway
from .errors import GatewayNotFound
from .portone_v2 import V2_BILLING_KEY_PREFIX


class RoutingGateway:
    def __init__(self, *, primary: PaymentGateway, v1: PaymentGateway, v2: PaymentGateway) -> None:
        self.primary = primary
        self.v1 = v1
        self.v2 = v2
        self.secondary = v1 if primary is v2 else v2

    def __repr__(self) -> str:
        return f"RoutingGateway(primary={self.primary!r})"

    def _by_key(self, customer_uid: str | None) -> PaymentGateway:
        if customer_uid is None:
            return self.primary
        return self.v2 if customer_uid.startswith(V2_BILLING_KEY_PREFIX) else self.v1

    def _by_payment(self, imp_uid: str) -> PaymentGateway:
        return self.v1 if imp_uid.startswith("imp_") else self.v2

    def authenticate(self) -> None:
        self.primary.authenticate()

    # billing keys and charges: by key
    def issue_billing_key(self, **kwargs):
        return self.primary.issue_billing_key(**kwargs)

    def get_billing_key(self, *, customer_uid: str):
        return self._by_key(customer_uid).get_billing_key(customer_uid=customer_uid)

    def get_billing_keys(self, *, customer_uids: Sequence[str]):
        v2 = [u for u in customer_uids if u.startswith(V2_BILLING_KEY_PREFIX)]
        v1 = [u for u in customer_uids if not u.startswith(V2_BILLING_KEY_PREFIX)]
        return (self.v1.get_billing_keys(customer_uids=v1) if v1 else []) + (
            self.v2.get_billing_keys(customer_uids=v2) if v2 else []
        )

    def delete_billing_key(self, *, customer_uid: str, reason: str | None = None):
        return self._by_key(customer_uid).delete_billing_key(customer_uid=customer_uid, reason=reason)

    def charge_billing_key(self, *, customer_uid: str, **kwargs):
        return self._by_key(customer_uid).charge_billing_key(customer_uid=customer_uid, **kwargs)

    def charge_onetime(self, **kwargs):
        return self.primary.charge_onetime(**kwargs)

    def schedule_charges(self, *, customer_uid: str, schedules):
        return self._by_key(customer_uid).schedule_charges(customer_uid=customer_uid, schedules=schedules)

    def unschedule_charges(self, *, customer_uid: str | None = None, merchant_uids: Sequence[str] | None = None):
        return self._by_key(customer_uid).unschedule_charges(customer_uid=customer_uid, merchant_uids=merchant_uids)

    def get_customer_schedules(self, *, customer_uid: str, **kwargs):
        return self._by_key(customer_uid).get_customer_schedules(customer_uid=customer_uid, **kwargs)

    def find_schedules(self, **kwargs):
        return self.primary.find_schedules(**kwargs)

    def get_schedule(self, *, merchant_uid: str):
        try:
            return self.primary.get_schedule(merchant_uid=merchant_uid)
        except GatewayNotFound:
            return self.secondary.get_schedule(merchant_uid=merchant_uid)

    # payments: by imp_uid, or both in turn by merchant_uid
    def get_payment(self, *, imp_uid: str) -> GatewayPayment:
        return self._by_payment(imp_uid).get_payment(imp_uid=imp_uid)

    def get_payments(self, *, imp_uids: Sequence[str] = (), merchant_uids: Sequence[str] = ()):
        v1 = [u for u in imp_uids if u.startswith("imp_")]
        v2 = [u for u in imp_uids if not u.startswith("imp_")]
        found = []
        if v1 or merchant_uids:
            found += self.v1.get_payments(imp_uids=v1, merchant_uids=merchant_uids)
        if v2 or merchant_uids:
            found += self.v2.get_payments(imp_uids=v2, merchant_uids=merchant_uids)
        return found

    def list_payments(self, **kwargs):
        # Only Iamport V1 lists payments (the daily reconciliation); V2 payments booked by us are looked up by id.
        return self.v1.list_payments(**kwargs)

    def find_payment(self, *, merchant_uid: str, status: str | None = None):
        return self.primary.find_payment(merchant_uid=merchant_uid, status=status) or self.secondary.find_payment(
            merchant_uid=merchant_uid, status=status
        )

    def find_payments(self, *, merchant_uid: str, status: str | None = None):
        return self.primary.find_payments(merchant_uid=merchant_uid, status=status) or self.secondary.find_payments(
            merchant_uid=merchant_uid, status=status
        )

    def cancel_payment(self, *, imp_uid: str | None = None, merchant_uid: str | None = None, **kwargs):
        if imp_uid:
            return self._by_payment(imp_uid).cancel_payment(imp_uid=imp_uid, merchant_uid=merchant_uid, **kwargs)
        return self.primary.cancel_payment(merchant_uid=merchant_uid, **kwargs)

    def prepare_payment(self, **kwargs):
        return self.v1.prepare_payment(**kwargs)

    def get_prepared_payment(self, **kwargs):
        return self.v1.get_prepared_payment(**kwargs)
