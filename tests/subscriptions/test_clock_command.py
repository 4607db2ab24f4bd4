"""`manage.py clock` and `manage.py billing_run`: the test clock moves the app and the sandbox together and runs
every event that falls due on the way; real Postgres, the sandbox over HTTP."""

from __future__ import annotations

import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from billing import clock
from billing.models import ClockOffset, Invoice
from subscriptions.models import Subscription, SubscriptionInvoice
from subscriptions.services.lifecycle import subscription_create
from tests.factories import PlanFactory, make_customer, register_card

pytestmark = pytest.mark.django_db
KST = ZoneInfo("Asia/Seoul")


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def subscribed_monthly(gateway, *, now: dt.datetime) -> Subscription:
    customer = make_customer()
    register_card(customer, gateway, now=now)
    return subscription_create(
        customer=customer, plan=PlanFactory(code="basic", amount=9_900), now=now, gateway=gateway
    )


def renewals(subscription: Subscription) -> list[Invoice]:
    return list(
        Invoice.objects.filter(
            subscription_link__subscription=subscription, subscription_link__kind=SubscriptionInvoice.Kind.RENEWAL
        ).order_by("period_start")
    )


def next_month_end_in_kst(after: dt.datetime) -> dt.datetime:
    """The next Jan 31, 09:00 KST comfortably after `after`: a month end with an explicit +09:00 offset."""
    year = after.astimezone(KST).year
    while dt.datetime(year, 1, 31, 9, 0, tzinfo=KST) < after + dt.timedelta(days=1):
        year += 1
    return dt.datetime(year, 1, 31, 9, 0, tzinfo=KST)


def test_clock_show_prints_the_apps_now_and_its_offset_when_nothing_moved_it(sandbox):
    before = clock.now()

    output = run("clock", "show")

    shown, offset = output.strip().split(" (offset ")
    assert offset == "0 s)"
    assert before - dt.timedelta(seconds=1) <= dt.datetime.fromisoformat(shown) <= clock.now()


def test_clock_advance_31d_charges_the_renewal_once_and_moves_the_sandbox_clock(sandbox, gateway):
    start = clock.now()
    subscription = subscribed_monthly(gateway, now=start)

    output = run("clock", "advance", "31d")

    target = start + dt.timedelta(days=31)
    [renewal] = renewals(subscription)
    assert renewal.status == Invoice.Status.PAID
    assert renewal.period_start == subscription.current_period_end
    assert renewal.attempts.count() == 1
    charged = [p for p in sandbox.payments() if p["status"] == "paid"]
    assert sorted(p["amount"] for p in charged) == [9_900, 9_900]  # the first period and one renewal
    assert sandbox.now() >= int(target.timestamp())
    assert clock.now() >= target
    assert output.strip().splitlines()[-1].startswith("clock is now ")
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE


def test_clock_advance_95d_steps_through_every_period_end_and_charges_each_renewal(sandbox, gateway):
    start = clock.now()
    subscription = subscribed_monthly(gateway, now=start)

    output = run("clock", "advance", "95d")

    paid = renewals(subscription)
    assert [invoice.status for invoice in paid] == ["paid"] * 3  # not one renewal for the period containing now
    starts = [invoice.period_start for invoice in paid]
    assert len(set(starts)) == 3 and starts == sorted(starts)
    assert all(invoice.attempts.count() == 1 for invoice in paid)
    assert len([p for p in sandbox.payments() if p["status"] == "paid"]) == 4
    # One billing run at each period end, then one at the target.
    assert sum(1 for line in output.splitlines() if '"renewals"' in line) == 4
    assert sandbox.now() >= int((start + dt.timedelta(days=95)).timestamp())


def test_clock_set_moves_both_clocks_to_a_kst_time(sandbox):
    target = next_month_end_in_kst(clock.now())

    output = run("clock", "set", target.isoformat(timespec="minutes"))

    reported = dt.datetime.fromisoformat(output.strip().splitlines()[-1].removeprefix("clock is now "))
    assert target <= reported < target + dt.timedelta(seconds=5)
    assert target <= clock.now() < target + dt.timedelta(seconds=5)
    assert sandbox.now() >= int(target.timestamp())


def test_clock_refuses_to_move_backwards_when_set_to_an_earlier_time(sandbox):
    run("clock", "advance", "2d")
    offset = ClockOffset.objects.get(pk=1).offset_seconds
    sandbox_now = sandbox.now()

    for earlier in (clock.now() - dt.timedelta(days=1), dt.datetime(2020, 1, 1, 9, 0, tzinfo=KST)):
        with pytest.raises(CommandError, match="only moves forward"):
            run("clock", "set", earlier.isoformat())

    assert ClockOffset.objects.get(pk=1).offset_seconds == offset
    assert sandbox.now() - sandbox_now < 60  # the sandbox did not jump either


@pytest.mark.parametrize("duration", ["31", "31x", "31D", "1.5d", "d", "31 d", "soon"])
def test_clock_advance_rejects_a_duration_it_cannot_read(sandbox, duration):
    with pytest.raises(CommandError, match="Cannot read duration"):
        run("clock", "advance", duration)

    assert not ClockOffset.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("clock", "advance"), "needs a value"),
        (("clock", "set", "next tuesday"), "Cannot read time"),
        (("clock", "set", "2031-01-31T09:00"), "with its offset"),
    ],
    ids=["advance-without-value", "unreadable-time", "time-without-offset"],
)
def test_clock_rejects_missing_or_unreadable_values(sandbox, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_clock_is_refused_when_the_test_clock_is_disabled(sandbox, settings):
    settings.BILLING_TEST_CLOCK = False

    with pytest.raises(CommandError, match="disabled"):
        run("clock", "advance", "1d")


def test_billing_run_prints_what_it_did_as_json(sandbox, gateway):
    now = clock.now()
    subscription = subscribed_monthly(gateway, now=now - dt.timedelta(days=31))

    output = run("billing_run")

    header, _, body = output.partition("\n")
    assert header.startswith("billing run at ")
    result = json.loads(body)
    assert set(result) == {"consents", "reconciled", "refunds", "notices", "renewals", "retries"}
    assert result["renewals"] == {"renewed:succeeded": 1}
    assert result["reconciled"]["checked"] == 0
    assert renewals(subscription)[0].status == Invoice.Status.PAID
