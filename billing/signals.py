"""Signals from billing to the layers above it (billing never imports subscriptions).

Both are sent INSIDE the transaction that settled the attempt, so a receiver's changes (activating a
subscription, scheduling a dunning retry) commit or roll back together with the payment's state.
Receivers that send email or enqueue tasks must use transaction.on_commit.
"""

from django.dispatch import Signal

# invoice, attempt, now
invoice_paid = Signal()
# payments: [(invoice, attempt), ...], now — the batch form of invoice_paid, sent once by a charge batch for
# the invoices it booked paid; receivers handle the common case in a few statements
invoices_paid = Signal()
# invoice, attempt, now
invoice_payment_failed = Signal()
# customer, billing_key, now — the default card changed (registered, or promoted after a deletion):
# subscriptions move onto it and dunning retries the open invoice at once
default_billing_key_changed = Signal()
