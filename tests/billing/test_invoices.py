"""Invoice numbers are gapless per KST year and given only at finalization; parts always add up."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction

from billing.models import Invoice
from billing.services.invoices import LineSpec, invoice_create, invoice_finalize
from tests.factories import make_customer

pytestmark = pytest.mark.django_db
KST = ZoneInfo("Asia/Seoul")


def draft(customer, now, amount=9_900, tax_free=0):
    return invoice_create(
        customer=customer,
        kind=Invoice.Kind.RENEWAL,
        description="x",
        lines=[LineSpec(description="x", amount=amount, tax_free_amount=tax_free)],
        now=now,
    )


def test_numbers_are_gapless_when_a_finalization_rolls_back():
    customer = make_customer()
    now = dt.datetime(2027, 3, 1, tzinfo=KST)
    first = invoice_finalize(invoice=draft(customer, now), now=now)
    with pytest.raises(RuntimeError), transaction.atomic():
        invoice_finalize(invoice=draft(customer, now), now=now)
        raise RuntimeError("the caller's transaction failed after numbering")
    second = invoice_finalize(invoice=draft(customer, now), now=now)

    assert (first.number, second.number) == ("2027-000001", "2027-000002")


def test_numbering_restarts_each_kst_year_at_kst_midnight():
    customer = make_customer()
    last_of_2027 = dt.datetime(2027, 12, 31, 23, 59, tzinfo=KST)
    first_of_2028 = dt.datetime(2028, 1, 1, 0, 0, tzinfo=KST)  # still 2027 in UTC
    a = invoice_finalize(invoice=draft(customer, last_of_2027), now=last_of_2027)
    b = invoice_finalize(invoice=draft(customer, first_of_2028), now=first_of_2028)
    assert (a.number, b.number) == ("2027-000001", "2028-000001")


def test_finalized_parts_add_up_for_a_partly_tax_free_invoice():
    invoice = invoice_finalize(
        invoice=draft(make_customer(), dt.datetime(2027, 1, 1, tzinfo=KST), amount=22_000, tax_free=12_000),
        now=dt.datetime(2027, 1, 1, tzinfo=KST),
    )
    assert (invoice.supply_amount, invoice.vat_amount, invoice.tax_free_amount) == (9_091, 909, 12_000)
    assert invoice.supply_amount + invoice.vat_amount + invoice.tax_free_amount == invoice.total == 22_000
