"""Gateway contract: one list of scenarios that must hold on the sandbox AND on the real Iamport.

Each scenario runs twice: ``[sandbox]`` always, ``[live]`` only with real credentials (see conftest).
Scenarios that need sandbox-only controls (test-card declines) skip themselves live, with a reason.
"""

from __future__ import annotations

import datetime as dt

import pytest

from billing.gateway import GatewayNotFound, GatewayRejected, ScheduleItem

SMALL = 1000  # live test charges stay small and are refunded at teardown


def _charge(contract, customer_uid: str, amount: int = SMALL):
    payment = contract.gateway.charge_billing_key(
        customer_uid=customer_uid, merchant_uid=contract.uid("ct-order"), amount=amount, name="계약 테스트"
    )
    if payment.imp_uid:
        contract.charged(payment.imp_uid)
    return payment


def test_billing_key_is_stored_when_issued(contract_gateway, contract):
    customer_uid = contract.issue_key()

    key = contract_gateway.get_billing_key(customer_uid=customer_uid)

    assert key.customer_uid == customer_uid
    assert key.card_number and "*" in key.card_number  # masked
    assert key.pg_provider and key.card_name
    assert key.inserted is not None and key.inserted.utcoffset() == dt.timedelta(0)
    assert [k.customer_uid for k in contract_gateway.get_billing_keys(customer_uids=[customer_uid])] == [customer_uid]


def test_charge_is_paid_and_findable_when_card_is_good(contract_gateway, contract):
    customer_uid = contract.issue_key()

    payment = _charge(contract, customer_uid)

    assert payment.is_paid and payment.amount == SMALL and payment.paid_at is not None
    assert contract_gateway.get_payment(imp_uid=payment.imp_uid).is_paid
    found = contract_gateway.find_payment(merchant_uid=payment.merchant_uid)
    assert found is not None and found.imp_uid == payment.imp_uid
    assert contract_gateway.find_payment(merchant_uid=payment.merchant_uid, status="paid").imp_uid == payment.imp_uid
    assert [p.imp_uid for p in contract_gateway.find_payments(merchant_uid=payment.merchant_uid)] == [payment.imp_uid]
    assert [p.imp_uid for p in contract_gateway.get_payments(imp_uids=[payment.imp_uid])] == [payment.imp_uid]


def test_charge_returns_failed_payment_when_card_is_declined(contract_gateway, contract):
    contract.require_sandbox("declines need the sandbox's test cards")
    customer_uid = contract.uid("ct-cust")
    contract_gateway.issue_billing_key(
        customer_uid=customer_uid,
        card_number="4000-0000-0000-9995",
        expiry="2030-12",
        birth="880101",
        pwd_2digit="12",
    )

    payment = _charge(contract, customer_uid)

    assert payment.is_failed and payment.fail_reason
    assert payment.paid_at is None and payment.failed_at is not None
    assert contract_gateway.find_payment(merchant_uid=payment.merchant_uid, status="paid") is None
    assert [p.status for p in contract_gateway.find_payments(merchant_uid=payment.merchant_uid)] == ["failed"]


def test_issue_is_rejected_when_card_is_refused(contract_gateway, contract):
    contract.require_sandbox("refused cards need the sandbox's test cards")

    with pytest.raises(GatewayRejected) as info:
        contract_gateway.issue_billing_key(
            customer_uid=contract.uid("ct-cust"),
            card_number="4000-0000-0000-0002",
            expiry="2030-12",
            birth="880101",
            pwd_2digit="12",
        )

    assert info.value.code != 0 and not isinstance(info.value, GatewayNotFound)


def test_partial_then_full_cancel_succeeds_when_checksum_matches(contract_gateway, contract):
    customer_uid = contract.issue_key()
    payment = _charge(contract, customer_uid, amount=3000)

    partial = contract_gateway.cancel_payment(
        imp_uid=payment.imp_uid, amount=1000, checksum=payment.cancellable_amount, reason="부분 환불"
    )
    assert partial.status == "paid" and partial.cancel_amount == 1000 and partial.cancellable_amount == 2000

    full = contract_gateway.cancel_payment(imp_uid=payment.imp_uid, checksum=partial.cancellable_amount, reason="전액")
    assert full.is_cancelled and full.cancel_amount == 3000 and full.cancellable_amount == 0
    assert sum(c.amount for c in full.cancel_history) == 3000


def test_cancel_is_refused_when_checksum_does_not_match(contract_gateway, contract):
    customer_uid = contract.issue_key()
    payment = _charge(contract, customer_uid, amount=2000)

    with pytest.raises(GatewayRejected) as info:
        contract_gateway.cancel_payment(imp_uid=payment.imp_uid, amount=500, checksum=1500, reason="stale")

    assert not isinstance(info.value, GatewayNotFound)
    assert contract_gateway.get_payment(imp_uid=payment.imp_uid).cancel_amount == 0


def test_schedule_can_be_looked_up_and_revoked_when_created(contract_gateway, contract):
    customer_uid = contract.issue_key()
    at = contract.now().replace(microsecond=0) + dt.timedelta(days=1)
    merchant_uid = contract.uid("ct-sched")

    created = contract_gateway.schedule_charges(
        customer_uid=customer_uid,
        schedules=[ScheduleItem(merchant_uid=merchant_uid, schedule_at=at, amount=SMALL, name="계약 예약")],
    )

    assert [(s.merchant_uid, s.schedule_status) for s in created] == [(merchant_uid, "scheduled")]
    schedule = contract_gateway.get_schedule(merchant_uid=merchant_uid)
    assert schedule.schedule_at == at and schedule.amount == SMALL and schedule.imp_uid is None
    window = contract_gateway.get_customer_schedules(
        customer_uid=customer_uid, from_=at - dt.timedelta(hours=1), to=at + dt.timedelta(hours=1)
    )
    assert [s.merchant_uid for s in window.items] == [merchant_uid]
    listed = contract_gateway.find_schedules(
        schedule_from=at - dt.timedelta(hours=1), schedule_to=at + dt.timedelta(hours=1), status="scheduled"
    )
    assert merchant_uid in {s.merchant_uid for s in listed.items}

    revoked = contract_gateway.unschedule_charges(customer_uid=customer_uid)

    assert [s.merchant_uid for s in revoked] == [merchant_uid]
    assert contract_gateway.get_schedule(merchant_uid=merchant_uid).is_revoked


def test_billing_key_is_gone_when_deleted(contract_gateway, contract):
    customer_uid = contract.issue_key()

    deleted = contract_gateway.delete_billing_key(customer_uid=customer_uid, reason="카드 삭제")

    assert deleted.customer_uid == customer_uid
    with pytest.raises(GatewayNotFound):
        contract_gateway.get_billing_key(customer_uid=customer_uid)
    with pytest.raises(GatewayRejected):
        _charge(contract, customer_uid)


def test_lookups_report_not_found_when_ids_are_unknown(contract_gateway, contract):
    unknown = contract.uid("ct-missing")

    with pytest.raises(GatewayNotFound):
        contract_gateway.get_payment(imp_uid="imp_000000000000")
    with pytest.raises(GatewayNotFound):
        contract_gateway.get_billing_key(customer_uid=unknown)
    with pytest.raises(GatewayNotFound):
        contract_gateway.get_schedule(merchant_uid=unknown)
    with pytest.raises(GatewayRejected):
        contract_gateway.cancel_payment(merchant_uid=unknown, reason="nothing to cancel")
    assert contract_gateway.find_payment(merchant_uid=unknown) is None
    assert contract_gateway.find_payments(merchant_uid=unknown) == []
    assert contract_gateway.get_billing_keys(customer_uids=[unknown]) == []


def test_prepared_amount_round_trips_when_registered(contract_gateway, contract):
    merchant_uid = contract.uid("ct-web")

    contract_gateway.prepare_payment(merchant_uid=merchant_uid, amount=15000)

    prepared = contract_gateway.get_prepared_payment(merchant_uid=merchant_uid)
    assert prepared.merchant_uid == merchant_uid and prepared.amount == 15000
