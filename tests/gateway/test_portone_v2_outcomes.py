"""The PortOne V2 adapter's error classification (billing/gateway/portone_v2.py) against the sandbox's /v2
surface and its faults, mirroring the V1 tests (test_iamport_outcomes.py, test_iamport_faults.py): declines
are failed payments, refusals are GatewayRejected, "may have charged" is never reported as "did not", and
writes are sent once."""

from __future__ import annotations

import datetime as dt
import socket

import pytest

from billing.gateway import (
    GatewayAuthError,
    GatewayNotFound,
    GatewayRejected,
    GatewayThrottled,
    GatewayTimeout,
    GatewayUnavailable,
    ScheduleItem,
)

from .conftest import CARD_INSUFFICIENT_FUNDS, CARD_ISSUE_REFUSED, issue_v2_key, log_of, wait_for_log


def charge(gateway, billing_key, payment_id, amount=9_900):
    return gateway.charge_billing_key(customer_uid=billing_key, merchant_uid=payment_id, amount=amount, name="월 구독")


def test_charge_returns_paid_payment_for_the_amount_sent_when_card_is_approved(v2, billing_key, uid):
    payment_id = uid("pay")

    payment = charge(v2, billing_key, payment_id)

    assert (payment.status, payment.amount, payment.merchant_uid) == ("paid", 9_900, payment_id)
    looked_up = v2.get_payment(imp_uid=payment_id)
    assert (looked_up.status, looked_up.amount, looked_up.customer_uid) == ("paid", 9_900, billing_key)


def test_charge_returns_failed_payment_with_the_pg_reason_when_pg_provider_declines(v2, sandbox, uid):
    key = issue_v2_key(v2, CARD_INSUFFICIENT_FUNDS)
    payment_id = uid("pay")

    payment = charge(v2, key, payment_id)

    assert payment.status == "failed" and payment.fail_reason
    assert [e["status"] for e in log_of(sandbox, "again")] == [502]  # PG_PROVIDER, sent once
    recorded = v2.get_payment(imp_uid=payment_id)
    assert recorded.status == "failed" and recorded.fail_reason == payment.fail_reason


def test_issue_raises_rejected_with_the_pg_code_when_card_is_refused_at_issuance(v2, sandbox):
    with pytest.raises(GatewayRejected) as info:
        issue_v2_key(v2, CARD_ISSUE_REFUSED)

    assert not isinstance(info.value, GatewayNotFound)
    assert info.value.code and info.value.code != "PG_PROVIDER"  # the PG's own code, not V2's type
    assert info.value.status == 502


def test_second_charge_with_the_same_payment_id_is_unavailable_maybe_processed_when_already_paid(
    v2, sandbox, billing_key, uid
):
    payment_id = uid("pay")
    charge(v2, billing_key, payment_id)

    with pytest.raises(GatewayUnavailable) as info:
        charge(v2, billing_key, payment_id)

    assert info.value.maybe_processed is True and info.value.status == 409  # reconcile, never "declined"
    paid = [p for p in sandbox.payments() if p["merchant_uid"] == payment_id and p["status"] == "paid"]
    assert len(paid) == 1


def test_charge_raises_not_found_when_the_billing_key_is_unknown(v2, uid):
    with pytest.raises(GatewayNotFound) as info:
        charge(v2, "billing-key-sbx-999999999999", uid("pay"))

    assert (info.value.code, info.value.status) == ("BILLING_KEY_NOT_FOUND", 404)


def test_get_payment_raises_not_found_when_the_payment_id_is_unknown(v2):
    with pytest.raises(GatewayNotFound) as info:
        v2.get_payment(imp_uid="never-sent")

    assert (info.value.code, info.value.status) == ("PAYMENT_NOT_FOUND", 404)
    assert v2.find_payments(merchant_uid="never-sent") == []


def test_get_billing_key_raises_not_found_when_the_key_was_deleted(v2, billing_key):
    v2.delete_billing_key(customer_uid=billing_key)

    with pytest.raises(GatewayNotFound):
        v2.get_billing_key(customer_uid=billing_key)


def test_raises_auth_error_and_charges_nothing_when_the_api_secret_is_wrong(make_v2_gateway, billing_key, sandbox, uid):
    wrong = make_v2_gateway(api_secret="not-the-secret")
    payment_id = uid("pay")

    with pytest.raises(GatewayAuthError) as info:
        charge(wrong, billing_key, payment_id)

    assert info.value.status == 401
    assert [p for p in sandbox.payments() if p["merchant_uid"] == payment_id] == []


def test_raises_auth_error_when_the_store_id_is_not_ours(make_v2_gateway, billing_key, uid):
    other_store = make_v2_gateway(store_id="store-someone-else")

    with pytest.raises(GatewayAuthError) as info:
        other_store.get_payment(imp_uid=uid("pay"))

    assert info.value.status == 403


def test_charge_raises_timeout_and_is_sent_once_when_response_is_lost_after_commit(
    make_v2_gateway, sandbox, billing_key, uid
):
    gateway = make_v2_gateway(read_timeout=1.0)
    payment_id = uid("pay")
    sandbox.add_fault("again", "timeout_after_commit", hold_ms=2000)

    with pytest.raises(GatewayTimeout) as info:
        charge(gateway, billing_key, payment_id)

    assert info.value.maybe_processed is True
    assert len(wait_for_log(sandbox, "again", 1)) == 1
    found = gateway.find_payment(merchant_uid=payment_id)  # it did charge: the janitor finds it
    assert found is not None and found.status == "paid"


def test_charge_raises_timeout_and_nothing_is_recorded_when_timeout_is_before_commit(
    make_v2_gateway, sandbox, billing_key, uid
):
    gateway = make_v2_gateway(read_timeout=1.0)
    payment_id = uid("pay")
    sandbox.add_fault("again", "timeout_before_commit", hold_ms=2000)

    with pytest.raises(GatewayTimeout):
        charge(gateway, billing_key, payment_id)

    assert len(wait_for_log(sandbox, "again", 1)) == 1
    assert gateway.find_payments(merchant_uid=payment_id) == []


@pytest.mark.parametrize("fault", ["http_500", "http_503"])
def test_charge_raises_unavailable_maybe_processed_and_is_not_resent_when_portone_answers_5xx(
    v2, sandbox, billing_key, uid, fault
):
    sandbox.add_fault("again", fault)

    with pytest.raises(GatewayUnavailable) as info:
        charge(v2, billing_key, uid("pay"))

    assert info.value.maybe_processed is True and info.value.status in (500, 503)
    assert len(log_of(sandbox, "again")) == 1


def test_charge_raises_throttled_not_processed_and_is_not_resent_when_portone_answers_429(
    v2, sandbox, billing_key, uid
):
    payment_id = uid("pay")
    sandbox.add_fault("again", "throttle", retry_after=7)

    with pytest.raises(GatewayThrottled) as info:
        charge(v2, billing_key, payment_id)

    assert (info.value.maybe_processed, info.value.retry_after, info.value.status) == (False, 7, 429)
    assert len(log_of(sandbox, "again")) == 1
    assert v2.find_payments(merchant_uid=payment_id) == []


def test_get_succeeds_after_one_retry_when_portone_answers_503_once(v2, sandbox, billing_key, uid):
    payment_id = uid("pay")
    charge(v2, billing_key, payment_id)
    sandbox.add_fault("payments", "http_503")

    assert v2.get_payment(imp_uid=payment_id).status == "paid"

    assert [e["status"] for e in log_of(sandbox, "payments")] == [503, 200]


def test_get_waits_and_succeeds_when_portone_answers_429_once(v2, sandbox, billing_key, uid):
    payment_id = uid("pay")
    charge(v2, billing_key, payment_id)
    sandbox.add_fault("payments", "throttle", retry_after=0)

    assert v2.get_payment(imp_uid=payment_id).status == "paid"

    assert [e["status"] for e in log_of(sandbox, "payments")] == [429, 200]


def test_get_raises_unavailable_not_processed_when_5xx_persists(v2, sandbox, billing_key, uid):
    for _ in range(3):
        sandbox.add_fault("payments", "http_500")

    with pytest.raises(GatewayUnavailable) as info:
        v2.get_payment(imp_uid=uid("pay"))

    assert info.value.maybe_processed is False
    assert len(log_of(sandbox, "payments")) == 3  # one call and two retries


def test_charge_raises_unavailable_not_processed_when_the_connection_is_refused(make_v2_gateway, uid):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = make_v2_gateway(base_url=f"http://127.0.0.1:{port}/v2", connect_timeout=1.0)

    with pytest.raises(GatewayUnavailable) as info:
        charge(gateway, "billing-key-sbx-000000000001", uid("pay"))

    assert info.value.maybe_processed is False


def test_cancel_raises_timeout_and_is_sent_once_when_the_response_is_lost(make_v2_gateway, sandbox, billing_key, uid):
    gateway = make_v2_gateway(read_timeout=1.0)
    payment_id = uid("pay")
    charge(gateway, billing_key, payment_id)
    sandbox.add_fault("cancel", "timeout_after_commit", hold_ms=2000)

    with pytest.raises(GatewayTimeout):
        gateway.cancel_payment(imp_uid=payment_id, amount=1_000, checksum=9_900, reason="환불")

    assert len(wait_for_log(sandbox, "cancel", 1)) == 1
    assert gateway.get_payment(imp_uid=payment_id).cancel_amount == 1_000


@pytest.mark.parametrize(
    ("amount", "checksum", "code"),
    [
        (20_000, 9_900, "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT"),
        (1_000, 5_000, "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN"),
    ],
)
def test_cancel_raises_rejected_and_refunds_nothing_when_portone_refuses_it(
    v2, billing_key, uid, amount, checksum, code
):
    payment_id = uid("pay")
    charge(v2, billing_key, payment_id)

    with pytest.raises(GatewayRejected) as info:
        v2.cancel_payment(imp_uid=payment_id, amount=amount, checksum=checksum, reason="환불")

    assert (info.value.code, info.value.status) == (code, 409)
    assert v2.get_payment(imp_uid=payment_id).cancel_amount == 0


def test_schedule_is_not_retried_and_maybe_processed_when_portone_answers_500(v2, sandbox, billing_key, uid):
    sandbox.add_fault("schedule", "http_500")
    at = dt.datetime.fromtimestamp(sandbox.now(), tz=dt.UTC) + dt.timedelta(days=1)

    with pytest.raises(GatewayUnavailable) as info:
        v2.schedule_charges(
            customer_uid=billing_key,
            schedules=[ScheduleItem(merchant_uid=uid("sched"), schedule_at=at, amount=9_900, name="n")],
        )

    assert info.value.maybe_processed is True
    assert len(log_of(sandbox, "schedule")) == 1


def test_unschedule_raises_not_found_when_nothing_is_pending(v2, billing_key):
    with pytest.raises(GatewayNotFound):
        v2.unschedule_charges(customer_uid=billing_key)
