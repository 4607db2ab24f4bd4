"""One billing run as of `now`: consent questions, reconciliation (charges and refunds), renewals, dunning
retries. Safe to run twice."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from django.conf import settings

from billing.services.payments import payments_reconcile_unsettled
from billing.services.refunds import refunds_reconcile_unsettled
from notices.services import notices_send_due
from subscriptions.services.consent import consents_ask_due
from subscriptions.services.dunning import invoices_retry, invoices_retry_due
from subscriptions.services.renewals import subscriptions_due, subscriptions_renew


def billing_run(*, now: dt.datetime, gateway=None) -> dict[str, dict[str, int]]:
    """Synchronous: used by `manage.py billing_run`, the test clock and tests. Beat runs the same four
    sweeps as separate tasks that fan out one task per batch of subscriptions or invoices."""
    consents = consents_ask_due(now=now)  # before renewals: a question due now is asked before any change
    reconciled = payments_reconcile_unsettled(now=now, gateway=gateway)
    refunds = refunds_reconcile_unsettled(now=now, gateway=gateway)
    notices = notices_send_due(now=now)  # delivery reports first: a trial's conversion reads them
    renewals = Counter()
    for ids in in_batches(subscriptions_due(now=now)):
        renewals.update(subscriptions_renew(subscription_ids=ids, now=now, gateway=gateway).values())
    retries = Counter()
    for ids in in_batches(invoices_retry_due(now=now)):
        attempts = invoices_retry(invoice_ids=ids, now=now, gateway=gateway).values()
        retries.update(attempt.status if attempt else "skipped" for attempt in attempts)
    return {
        "reconciled": reconciled,
        "refunds": refunds,
        "renewals": dict(renewals),
        "retries": dict(retries),
        "notices": notices,
        "consents": consents,
    }


def in_batches(ids: list[int]) -> list[list[int]]:
    """Due ids cut into the batches one renewal or retry task handles (settings.BILLING_BATCH_SIZE)."""
    size = max(settings.BILLING_BATCH_SIZE, 1)
    return [ids[start : start + size] for start in range(0, len(ids), size)]
