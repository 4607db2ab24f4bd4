"""Step 2 of a charge: call the gateway for recorded attempts, outside any transaction.

Gateway threads (billing/dispatch.py) make the calls and never touch the database; a batch's calls overlap and
each starts at its slot of the global rate limit (billing/ratelimit.py). Outcomes are handed to `settlement`
as they come, a chunk at a time.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, wait

from django.conf import settings

from billing.dispatch import gateway_submit
from billing.gateway.errors import (
    GatewayError,
    GatewayRejected,
    GatewayThrottled,
    GatewayTimeout,
    GatewayUnavailable,
)
from billing.models import PaymentAttempt
from billing.ratelimit import charge_slots_acquire
from billing.services.gateway import get_gateway
from billing.services.payments.attempts import NOT_SENT, THROTTLED, payment_attempt_create
from billing.services.payments.settlement import Outcome, outcomes_record

logger = logging.getLogger(__name__)


def webhook_url() -> str | None:
    base = getattr(settings, "SITE_URL", "")
    return f"{base.rstrip('/')}/iamport/webhook" if base else None


SETTLE_EVERY_SECONDS = 0.5  # the longest a batch's finished charges wait to be recorded


def _call_gateway(attempt: PaymentAttempt, gateway, send_by: float) -> Outcome:
    """One `again` call, translated (docs/architecture.md#errors): a decline is a payment with status failed; a
    timeout, or an error after the request may have left, is UNKNOWN; an error before anything was charged is a
    failure.

    A charge still waiting (for its rate-limit slot or a free gateway thread) when the janitor would start
    looking at its attempt (`send_by`) is not sent at all: FAILED as never sent, so the janitor's verdict and
    a late charge can never meet. Dunning retries it quietly, like a charge the PG refused for its rate."""
    if time.monotonic() > send_by:
        logger.warning("charge %s not sent: it waited past the janitor's threshold", attempt.merchant_uid)
        return Outcome(attempt, failure_code=NOT_SENT, failure_reason="waited too long to be sent; not sent")
    invoice = attempt.invoice
    try:
        payment = gateway.charge_billing_key(
            customer_uid=attempt.customer_uid,
            merchant_uid=attempt.merchant_uid,
            amount=attempt.amount,
            name=invoice.description,
            tax_free=attempt.tax_free_amount,
            vat_amount=attempt.vat_amount,
            notice_url=webhook_url(),
            buyer_email=invoice.customer.email or None,
        )
    except GatewayTimeout as exc:
        return Outcome(attempt, unknown=f"timeout: {exc}")
    except GatewayThrottled as exc:
        # Refused for its rate before anything was processed: nothing charged. Dunning retries it shortly,
        # without telling the subscriber anything failed (see subscriptions.services.dunning).
        return Outcome(attempt, failure_code=THROTTLED, failure_reason=str(exc))
    except GatewayUnavailable as exc:
        if exc.maybe_processed:
            return Outcome(attempt, unknown=f"gateway {exc.status}: outcome unknown")
        return Outcome(attempt, failure_code="unavailable", failure_reason=str(exc))
    except GatewayRejected as exc:
        # code != 0: the request to the card company itself failed; nothing was charged by this call.
        return Outcome(attempt, failure_code=f"iamport_{exc.code}", failure_reason=exc.message or "")
    except GatewayError as exc:  # auth errors: the request was refused before any charge
        return Outcome(attempt, failure_code="gateway_error", failure_reason=str(exc))
    except Exception:
        # A bug or an unexpected exception after the request may have left: never guess, reconcile.
        logger.exception("unexpected error charging %s", attempt.merchant_uid)
        return Outcome(attempt, unknown="unexpected error during the charge")
    return Outcome(attempt, payment=payment)


def payments_charge(*, attempts: Sequence[PaymentAttempt], now: dt.datetime, gateway=None) -> list[PaymentAttempt]:
    """Steps 2 and 3 for attempts from `payment_attempts_create`, in the same order: call the gateway for each
    (overlapping, outside any transaction, under the global rate limit), then record every outcome. Returns
    the attempts in their recorded states (SUCCEEDED, FAILED, or UNKNOWN when the outcome could not be seen)."""
    if not attempts:
        return []
    gateway = gateway or get_gateway()
    try:
        gateway.authenticate()  # before the slots: a token fetch would hold the first calls back, then bunch them
    except GatewayError as exc:
        logger.warning("gateway authentication before a charge batch failed: %s", exc)  # each call will say
    slots = charge_slots_acquire(count=len(attempts)) or [0.0] * len(attempts)  # 0: no limit, start at once
    send_by = time.monotonic() + settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS
    if len(attempts) == 1:
        _sleep_until(slots[0])
        return outcomes_record([_call_gateway(attempts[0], gateway, send_by)], now=now)
    waiting = {
        gateway_submit(_call_gateway, a, gateway, send_by, at=slot) for a, slot in zip(attempts, slots, strict=True)
    }
    # Outcomes are recorded as they come, a chunk at a time, not when the slowest call of the batch returns:
    # a worker that dies mid-batch leaves only its calls in flight to the janitor.
    recorded: dict[int, PaymentAttempt] = {}
    ready: list[Outcome] = []
    chunk = max(10, len(attempts) // 4)
    flushed = time.monotonic()
    while waiting:
        done, waiting = wait(waiting, timeout=SETTLE_EVERY_SECONDS, return_when=FIRST_COMPLETED)
        ready.extend(future.result() for future in done)
        if ready and (not waiting or len(ready) >= chunk or time.monotonic() - flushed >= SETTLE_EVERY_SECONDS):
            recorded.update((a.pk, a) for a in outcomes_record(ready, now=now))
            ready, flushed = [], time.monotonic()
    return [recorded[attempt.pk] for attempt in attempts]


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def payment_charge(
    *, invoice_id: int, now: dt.datetime, customer_uid: str | None = None, gateway=None
) -> PaymentAttempt:
    """Charge an open invoice now with /subscribe/payments/again. Returns the attempt in its recorded state
    (SUCCEEDED, FAILED, or UNKNOWN when the outcome could not be seen)."""
    attempt = payment_attempt_create(invoice_id=invoice_id, now=now, customer_uid=customer_uid)
    return payments_charge(attempts=[attempt], now=now, gateway=gateway)[0]
