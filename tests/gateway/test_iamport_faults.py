"""Transport faults: timeouts and 5xx on writes are never re-sent; reads are retried with backoff."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.gateway import GatewayThrottled, GatewayTimeout, GatewayUnavailable, ScheduleItem

from .conftest import log_of, wait_for_log


def test_charge_raises_timeout_and_is_sent_once_when_response_is_lost_after_commit(
    make_gateway, sandbox, customer_uid, uid
):
    gateway = make_gateway(read_timeout=1.0)
    merchant_uid = uid("order")
    sandbox.add_fault("again", "timeout_after_commit", hold_ms=2000)

    with pytest.raises(GatewayTimeout) as info:
        gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=merchant_uid, amount=9900, name="n")

    assert info.value.maybe_processed is True
    assert info.value.path == "/subscribe/payments/again"
    assert len(log_of(sandbox, "again")) == 1
    # The charge did happen: reconciliation by merchant_uid finds it.
    found = gateway.find_payment(merchant_uid=merchant_uid)
    assert found is not None and found.is_paid


def test_charge_raises_timeout_and_nothing_is_recorded_when_timeout_is_before_commit(
    make_gateway, sandbox, customer_uid, uid
):
    gateway = make_gateway(read_timeout=1.0)
    merchant_uid = uid("order")
    sandbox.add_fault("again", "timeout_before_commit", hold_ms=2000)

    with pytest.raises(GatewayTimeout):
        gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=merchant_uid, amount=9900, name="n")

    assert len(log_of(sandbox, "again")) == 1
    assert gateway.find_payments(merchant_uid=merchant_uid) == []


def test_cancel_raises_timeout_and_is_sent_once_when_response_is_lost(make_gateway, sandbox, customer_uid, uid):
    gateway = make_gateway(read_timeout=1.0)
    payment = gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=uid("order"), amount=9900, name="n")
    sandbox.add_fault("cancel", "timeout_after_commit", hold_ms=2000)

    with pytest.raises(GatewayTimeout):
        gateway.cancel_payment(imp_uid=payment.imp_uid, checksum=9900, reason="refund")

    assert len(log_of(sandbox, "cancel")) == 1


def test_schedule_is_not_retried_when_iamport_answers_500(gateway, sandbox, customer_uid, uid):
    sandbox.add_fault("schedule", "http_500")
    at = tomorrow(sandbox)

    with pytest.raises(GatewayUnavailable) as info:
        gateway.schedule_charges(
            customer_uid=customer_uid,
            schedules=[ScheduleItem(merchant_uid=uid("sched"), schedule_at=at, amount=9900, name="n")],
        )

    assert info.value.maybe_processed is True
    assert len(log_of(sandbox, "schedule")) == 1


def test_onetime_is_not_retried_when_iamport_answers_503(gateway, sandbox, uid):
    sandbox.add_fault("onetime", "http_503")

    with pytest.raises(GatewayUnavailable) as info:
        gateway.charge_onetime(
            merchant_uid=uid("order"),
            amount=1000,
            card_number="4242-4242-4242-4242",
            expiry="2030-12",
            birth="880101",
            pwd_2digit="12",
            name="n",
        )

    assert info.value.status == 503 and info.value.maybe_processed is True
    assert len(log_of(sandbox, "onetime")) == 1


def test_get_succeeds_after_retry_when_iamport_answers_503_once(gateway, sandbox, customer_uid, uid):
    payment = gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=uid("order"), amount=9900, name="n")
    sandbox.add_fault("payments", "http_503", times=1)

    fetched = gateway.get_payment(imp_uid=payment.imp_uid)

    assert fetched.imp_uid == payment.imp_uid and fetched.is_paid
    assert [e["status"] for e in log_of(sandbox, "payments")] == [503, 200]


def test_get_is_retried_when_read_times_out(make_gateway, sandbox, customer_uid):
    gateway = make_gateway(read_timeout=1.0, read_retries=1)
    sandbox.add_fault("customers", "delay", times=1, delay_ms=1500)

    key = gateway.get_billing_key(customer_uid=customer_uid)

    assert key.customer_uid == customer_uid
    # The slow first answer is logged by the sandbox when it finally completes.
    gets = wait_for_log(sandbox, "customers", 2, method="GET")
    assert len(gets) == 2 and {e["fault"] for e in gets} == {"delay", None}


def test_charge_raises_unavailable_not_processed_when_token_endpoint_fails(make_gateway, sandbox, customer_uid, uid):
    gateway = make_gateway()  # no token cached yet
    sandbox.add_fault("getToken", "http_500", times=10)

    with pytest.raises(GatewayUnavailable) as info:
        gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=uid("order"), amount=100, name="n")

    # A failed token fetch happens before the charge is sent: the charge certainly did not happen.
    assert info.value.maybe_processed is False
    assert log_of(sandbox, "again") == []


def test_token_fetch_is_retried_when_token_endpoint_answers_503_once(make_gateway, sandbox, customer_uid, uid):
    gateway = make_gateway()  # no token cached yet
    sandbox.add_fault("getToken", "http_503", times=1)

    payment = gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=uid("order"), amount=100, name="n")

    assert payment.is_paid
    assert len(log_of(sandbox, "again")) == 1


def tomorrow(sandbox) -> dt.datetime:
    return dt.datetime.fromtimestamp(sandbox.now() + 86_400, tz=dt.UTC)


def test_charge_raises_throttled_not_processed_and_is_not_resent_when_iamport_answers_429(
    gateway, sandbox, customer_uid, uid
):
    merchant_uid = uid("order")
    sandbox.add_fault("again", "throttle", retry_after=7)

    with pytest.raises(GatewayThrottled) as info:
        gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=merchant_uid, amount=9900, name="n")

    assert info.value.status == 429 and info.value.maybe_processed is False
    assert info.value.retry_after == 7
    assert len(log_of(sandbox, "again")) == 1
    assert gateway.find_payments(merchant_uid=merchant_uid) == []


def test_get_waits_and_succeeds_when_iamport_answers_429_once(gateway, sandbox, customer_uid, uid):
    payment = gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=uid("order"), amount=9900, name="n")
    sandbox.add_fault("payments", "throttle", times=1, retry_after=0)

    fetched = gateway.get_payment(imp_uid=payment.imp_uid)

    assert fetched.imp_uid == payment.imp_uid and fetched.is_paid
    assert [e["status"] for e in log_of(sandbox, "payments")] == [429, 200]
