"""What the adapter returns: ints of won, aware UTC datetimes (None for 0), masked cards, pages, schedules."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.gateway import (
    GatewayBillingKey,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    GatewaySchedule,
    Page,
    ScheduleItem,
)
from billing.gateway.iamport_mapping import to_int as _to_int

from .conftest import CARD_OK, issue_key, log_of


def _aware_utc(value: dt.datetime | None) -> bool:
    return value is not None and value.utcoffset() == dt.timedelta(0)


def test_billing_key_has_masked_card_and_aware_times_when_issued(gateway, uid):
    customer_uid = uid("cust")

    key = issue_key(gateway, customer_uid)
    fetched = gateway.get_billing_key(customer_uid=customer_uid)

    for k in (key, fetched):
        assert isinstance(k, GatewayBillingKey)
        assert k.customer_uid == customer_uid
        assert k.card_number and k.card_number != CARD_OK and "*" in k.card_number
        assert k.sandbox is True
        assert k.customer_name == "홍길동"
        assert _aware_utc(k.inserted) and _aware_utc(k.updated)
        assert k.pg_provider


def test_get_billing_keys_returns_found_keys_when_some_ids_are_unknown(gateway, uid):
    first, second = uid("cust"), uid("cust")
    issue_key(gateway, first)
    issue_key(gateway, second)

    keys = gateway.get_billing_keys(customer_uids=[first, "nobody", second])

    assert sorted(k.customer_uid for k in keys) == sorted([first, second])
    assert gateway.get_billing_keys(customer_uids=["nobody"]) == []


def test_delete_billing_key_returns_deleted_key_when_key_exists(gateway, customer_uid):
    deleted = gateway.delete_billing_key(customer_uid=customer_uid, reason="user removed card")

    assert deleted.customer_uid == customer_uid
    with pytest.raises(GatewayNotFound):
        gateway.get_billing_key(customer_uid=customer_uid)


def test_payment_amounts_are_ints_and_unset_times_are_none_when_paid(gateway, customer_uid, uid):
    payment = gateway.charge_billing_key(
        customer_uid=customer_uid,
        merchant_uid=uid("order"),
        amount=12900,
        name="월간 이용권",
        custom_data={"subscription_id": 42},
        buyer_email="a@b.kr",
    )

    assert type(payment.amount) is int and type(payment.cancel_amount) is int
    assert _aware_utc(payment.paid_at)
    assert payment.failed_at is None and payment.cancelled_at is None
    assert payment.started_at is None or _aware_utc(payment.started_at)
    assert payment.sandbox is True
    assert payment.custom_data == '{"subscription_id":42}'
    assert payment.customer_uid_usage == "payment"
    assert payment.card_number and "*" in payment.card_number


def test_partial_then_full_cancel_updates_history_when_checksums_match(gateway, customer_uid, uid):
    payment = gateway.charge_billing_key(
        customer_uid=customer_uid, merchant_uid=uid("order"), amount=10000, name="월간 이용권"
    )

    partial = gateway.cancel_payment(
        imp_uid=payment.imp_uid, amount=1000, checksum=payment.cancellable_amount, reason="partial"
    )
    assert partial.status == "paid"
    assert partial.cancel_amount == 1000 and partial.cancellable_amount == 9000
    assert len(partial.cancel_history) == 1
    assert type(partial.cancel_history[0].amount) is int and _aware_utc(partial.cancel_history[0].cancelled_at)

    full = gateway.cancel_payment(merchant_uid=payment.merchant_uid, checksum=9000, reason="rest")
    assert full.is_cancelled and full.cancel_amount == 10000 and full.cancellable_amount == 0
    assert [c.amount for c in full.cancel_history] == [1000, 9000]
    assert _aware_utc(full.cancelled_at)


def test_get_payment_sends_include_sandbox_when_configured(make_gateway, customer_uid, uid, sandbox):
    charger = make_gateway(include_sandbox=True)
    payment = charger.charge_billing_key(customer_uid=customer_uid, merchant_uid=uid("o"), amount=500, name="n")

    assert charger.get_payment(imp_uid=payment.imp_uid).imp_uid == payment.imp_uid
    hidden = make_gateway(include_sandbox=False)
    with pytest.raises(GatewayNotFound):
        hidden.get_payment(imp_uid=payment.imp_uid)


def test_get_payments_uses_bracket_params_when_several_ids_are_given(gateway, customer_uid, uid):
    a = gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=uid("o"), amount=100, name="n")
    b = gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=uid("o"), amount=200, name="n")

    by_imp = gateway.get_payments(imp_uids=[a.imp_uid, b.imp_uid])
    by_merchant = gateway.get_payments(merchant_uids=[a.merchant_uid, "unknown-order"])

    assert sorted(p.amount for p in by_imp) == [100, 200]
    assert [p.imp_uid for p in by_merchant] == [a.imp_uid]
    assert gateway.get_payments() == []


def test_find_payments_returns_every_attempt_when_merchant_uid_was_reused_after_decline(
    gateway, sandbox, customer_uid, uid
):
    merchant_uid = uid("order")
    sandbox.set_card_behaviour(customer_uid, "insufficient_funds")
    declined = gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=merchant_uid, amount=700, name="n")
    sandbox.set_card_behaviour(customer_uid, "paid")
    try:
        gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=merchant_uid, amount=700, name="n")
    except GatewayRejected:
        pytest.skip("sandbox refuses re-use of a declined merchant_uid; findAll has one record only")

    everything = gateway.find_payments(merchant_uid=merchant_uid)
    paid_only = gateway.find_payments(merchant_uid=merchant_uid, status="paid")

    assert declined.is_failed
    assert sorted(p.status for p in everything) == ["failed", "paid"]
    assert [p.status for p in paid_only] == ["paid"]
    assert gateway.find_payment(merchant_uid=merchant_uid, status="paid").is_paid


def test_schedules_round_trip_when_scheduled_looked_up_and_revoked(gateway, sandbox, customer_uid, uid):
    now = sandbox.now()
    at = dt.datetime.fromtimestamp(now + 86_400, tz=dt.UTC)
    first, second = uid("sched"), uid("sched")

    created = gateway.schedule_charges(
        customer_uid=customer_uid,
        schedules=[
            ScheduleItem(merchant_uid=first, schedule_at=at, amount=9900, name="10월", custom_data='{"n":1}'),
            ScheduleItem(merchant_uid=second, schedule_at=at + dt.timedelta(days=30), amount=9900, name="11월"),
        ],
    )

    assert [s.merchant_uid for s in created] == [first, second]
    assert all(isinstance(s, GatewaySchedule) and s.is_scheduled and s.imp_uid is None for s in created)
    one = gateway.get_schedule(merchant_uid=first)
    assert one.schedule_at == at and one.amount == 9900 and type(one.amount) is int
    assert one.executed_at is None and one.revoked_at is None and one.payment_status is None
    assert one.custom_data == '{"n":1}'

    window = gateway.find_schedules(
        schedule_from=at - dt.timedelta(hours=1), schedule_to=at + dt.timedelta(days=31), status="scheduled"
    )
    assert isinstance(window, Page)
    assert {first, second} <= {s.merchant_uid for s in window.items}
    mine = gateway.get_customer_schedules(
        customer_uid=customer_uid, from_=at - dt.timedelta(hours=1), to=at + dt.timedelta(days=31)
    )
    assert {s.merchant_uid for s in mine.items} == {first, second}

    revoked = gateway.unschedule_charges(customer_uid=customer_uid, merchant_uids=[first])
    assert [s.merchant_uid for s in revoked] == [first]
    assert revoked[0].is_revoked and revoked[0].revoked_at is not None
    assert gateway.get_schedule(merchant_uid=first).is_revoked
    assert gateway.get_schedule(merchant_uid=second).is_scheduled
    with pytest.raises(GatewayRejected):  # nothing left to revoke under that id
        gateway.unschedule_charges(merchant_uids=[first])


def test_schedule_raises_rejected_when_merchant_uid_is_duplicated(gateway, sandbox, customer_uid, uid):
    at = dt.datetime.fromtimestamp(sandbox.now() + 3600, tz=dt.UTC)
    item = ScheduleItem(merchant_uid=uid("sched"), schedule_at=at, amount=1000, name="n")
    gateway.schedule_charges(customer_uid=customer_uid, schedules=[item])

    with pytest.raises(GatewayRejected):
        gateway.schedule_charges(customer_uid=customer_uid, schedules=[item])


def test_prepare_round_trips_amount_when_registered(gateway, uid):
    merchant_uid = uid("web")

    prepared = gateway.prepare_payment(merchant_uid=merchant_uid, amount=15000)
    fetched = gateway.get_prepared_payment(merchant_uid=merchant_uid)

    assert prepared.amount == 15000 and fetched.amount == 15000 and type(fetched.amount) is int
    assert fetched.merchant_uid == merchant_uid


@pytest.mark.parametrize("bad", [9900.0, 9900.5, "9900", True, None])
def test_charge_refuses_amount_before_sending_when_amount_is_not_an_int(gateway, sandbox, bad):
    with pytest.raises(TypeError):
        gateway.charge_billing_key(customer_uid="c", merchant_uid="m", amount=bad, name="n")

    assert log_of(sandbox, "again") == []


def test_schedule_item_refuses_naive_datetime_when_built():
    with pytest.raises(ValueError):
        ScheduleItem(merchant_uid="m", schedule_at=dt.datetime(2030, 1, 1), amount=1, name="n")


@pytest.mark.parametrize(("raw", "expected"), [(9900, 9900), (9900.0, 9900), ("9900", 9900), (0, 0), (None, 0)])
def test_iamport_numbers_become_ints_when_integral(raw, expected):
    assert _to_int(raw, "amount") == expected
    assert type(_to_int(raw, "amount")) is int


@pytest.mark.parametrize("raw", [9900.5, "99.5", float("nan"), True, "abc"])
def test_iamport_numbers_are_refused_when_not_integral(raw):
    with pytest.raises(GatewayError):
        _to_int(raw, "amount")
