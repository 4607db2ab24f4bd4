"""Signals from billing to the layers above it (billing never imports subscriptions).

Each carries a whole batch; one invoice is a batch of one. They are sent INSIDE the transaction that settled
the payments, so a receiver's changes (activating a subscription, scheduling a dunning retry) commit or roll
back together with the payments' state. Receivers that send email or enqueue tasks use transaction.on_commit.
Receivers are one-line calls into a service of the layer above (subscriptions/receivers.py).
"""

from django.dispatch import Signal

# payments: [(invoice, attempt or None), ...], now — invoices that became PAID: by a charge (a batch books
# many at once), the janitor, a webhook, or credit covering an invoice (attempt None)
invoices_paid = Signal()
# failures: [(invoice, attempt), ...], now — attempts that became FAILED (declined, or never charged)
invoices_payment_failed = Signal()
# customer, billing_key, now — the default card changed (registered, or promoted after a deletion):
# subscriptions move onto it and dunning retries the open invoice at once
default_billing_key_changed = Signal()
