"""Charging invoices exactly once, and settling what we could not see
(docs/architecture.md#gateway-sandbox-and-payment-states).

A charge works in three steps, for one invoice or for a batch of them; a single charge is a batch of one:
1. `attempts`: a short transaction locks the invoices, refuses any that is not open or still has an unsettled
   attempt (a partial unique index makes that race-proof), and records a PENDING attempt with a fresh
   merchant_uid for each (`payment_attempts_create`);
2. `charging`: the gateway is called OUTSIDE any transaction, by threads that never touch the database, the
   calls of a batch overlapping (`payments_charge`), each starting at its slot of the global rate limit;
3. `settlement`: short transactions record the outcomes, each kind (paid, declined or failed, unknown) for the
   whole chunk in a few set-based statements through `attempts_transition`, the one function that changes an
   attempt's status. A timeout (or a 5xx that may have charged) leaves the attempt UNKNOWN: it is never retried
   before `reconcile` (the janitor, or a verified webhook) settles it.

A retry is always a new attempt with a new merchant_uid. Every settlement path (the charge, the janitor,
webhooks, admin actions) ends in the same booking functions, which only move state forward and never book a
payment whose amount differs from what we asked for.
"""

from billing.services.payments.attempts import (
    NOT_SENT,
    THROTTLED,
    UNSETTLED,
    attempts_transition,
    payment_attempt_create,
    payment_attempts_create,
)
from billing.services.payments.charging import payment_charge, payments_charge, webhook_url
from billing.services.payments.reconcile import (
    payment_reconcile,
    payment_revoke_scheduled,
    payments_reconcile_unsettled,
    payments_unsettled_due,
)
from billing.services.payments.settlement import payment_apply_gateway_payment, payment_flag

__all__ = [
    "NOT_SENT",
    "THROTTLED",
    "UNSETTLED",
    "attempts_transition",
    "payment_apply_gateway_payment",
    "payment_attempt_create",
    "payment_attempts_create",
    "payment_charge",
    "payment_flag",
    "payment_reconcile",
    "payment_revoke_scheduled",
    "payments_charge",
    "payments_reconcile_unsettled",
    "payments_unsettled_due",
    "webhook_url",
]
