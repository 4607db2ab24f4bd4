"""The global charge rate limit: never more charges started in one second than the setting allows."""

import threading

import pytest
from django.db import connection
from django.utils import timezone

from billing.models import ChargeRateWindow
from billing.ratelimit import charge_slot_acquire
from billing.services.payments import payment_charge
from tests.billing.test_payments import open_invoice
from tests.factories import make_customer, register_card


class FakeTime:
    """A clock the limiter reads and sleeps on: sleeping moves it forward, so the test never waits."""

    def __init__(self, start: float):
        self.now = start
        self.lock = threading.Lock()

    def time(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


@pytest.mark.django_db
def test_a_full_second_makes_the_next_caller_wait_for_the_next_second():
    clock = FakeTime(1_800_000_000.2)
    seconds = [charge_slot_acquire(limit=3, clock=clock.time, sleep=clock.sleep) for _ in range(7)]

    assert seconds == [1_800_000_000] * 3 + [1_800_000_001] * 3 + [1_800_000_002]
    assert max(ChargeRateWindow.objects.values_list("used", flat=True)) == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_charges_never_exceed_the_limit_in_any_second(sandbox, gateway, settings):
    settings.BILLING_CHARGE_RATE_LIMIT = 4
    now = timezone.now()
    invoices = []
    for _ in range(10):
        customer = make_customer()
        register_card(customer, gateway, now=now)
        invoices.append(open_invoice(customer, now))
    results = []

    def charge(invoice_id):
        try:
            results.append(payment_charge(invoice_id=invoice_id, now=now, gateway=gateway).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=charge, args=(invoice.pk,)) for invoice in invoices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count("succeeded") == 10
    used = list(ChargeRateWindow.objects.values_list("used", flat=True))
    assert sum(used) == 10 and max(used) <= 4 and len(used) >= 3


@pytest.mark.django_db
def test_no_limit_takes_no_slot(settings):
    settings.BILLING_CHARGE_RATE_LIMIT = 0
    charge_slot_acquire()
    assert ChargeRateWindow.objects.count() == 0
