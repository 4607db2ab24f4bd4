"""The global charge rate limit: charge starts are spaced at least 1/R apart across every worker."""

import itertools
import threading

import pytest
from django.db import connection
from django.utils import timezone

from billing.models import PaymentAttempt
from billing.ratelimit import charge_slots_reserve
from billing.services.payments import payment_charge
from tests.billing.test_payments import open_invoice
from tests.factories import make_customer, register_card

pytestmark = pytest.mark.django_db(transaction=True)


def test_slots_reserved_in_batches_from_many_threads_are_spaced_one_over_r_apart():
    slots = []

    def take():
        try:
            for size in (1, 2, 2):  # batches of different sizes, as renewal tasks reserve them
                slots.extend(charge_slots_reserve(count=size, limit=20)[0])
        finally:
            connection.close()

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    slots.sort()
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert len(slots) == 20
    assert min(gaps) >= 1 / 20 - 1e-6  # never two starts closer than 50 ms: at most 20 in any second


def test_concurrent_charges_wait_for_their_slots_and_all_succeed_once(sandbox, gateway, settings):
    settings.BILLING_CHARGE_RATE_LIMIT = 8
    now = timezone.now()
    invoices = []
    for _ in range(8):
        customer = make_customer()
        register_card(customer, gateway, now=now)
        invoices.append(open_invoice(customer, now))

    def charge(invoice_id):
        try:
            payment_charge(invoice_id=invoice_id, now=now, gateway=gateway)
        finally:
            connection.close()

    threads = [threading.Thread(target=charge, args=(invoice.pk,)) for invoice in invoices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert PaymentAttempt.objects.filter(status="succeeded").count() == 8
    charges = [r for r in sandbox.requests_log() if r.get("endpoint") == "again"]
    assert len(charges) == 8


def test_no_limit_takes_no_slot(settings):
    settings.BILLING_CHARGE_RATE_LIMIT = 0
    assert charge_slots_reserve(count=1) is None
