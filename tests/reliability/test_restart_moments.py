"""A database restart at a bad moment ends in exactly one outcome once it is over (issue 18's last paragraph): a
refund whose answer could not be written, the outgoing events of a charge settled after the outage, and a consent
decision the outage interrupted. The outage is real (tests/reliability/outage.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from django import db
from django.conf import settings as django_settings
from django.db import connection

from billing.models import Event, Invoice, PaymentAttempt, Refund
from billing.services.refunds import refund_create, refund_totals, refunds_reconcile_unsettled
from subscriptions.models import ConsentDecision, ConsentRequest
from subscriptions.services.consent import Answerer, consent_decide
from subscriptions.services.lifecycle import subscription_create
from subscriptions.services.renewals import subscription_renew
from subscriptions.services.sweep import billing_run
from tests.factories import PlanFactory, make_customer, register_card
from tests.reliability.outage import DatabaseOutage

pytestmark = pytest.mark.django_db(transaction=True)
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def outage():
    db_outage = DatabaseOutage()
    yield db_outage
    db_outage.close()


class GoesAwayAfter:
    """The real gateway; once it has answered `method`, the database goes away before the answer is written."""

    def __init__(self, gateway, outage: DatabaseOutage, method: str):
        self._gateway, self._outage, self._method = gateway, outage, method

    def __getattr__(self, name):
        attribute = getattr(self._gateway, name)
        if name != self._method:
            return attribute

        def call(**kwargs):
            answer = attribute(**kwargs)
            self._outage.begin(keep_ours=False)
            return answer

        return call


def back(outage: DatabaseOutage) -> None:
    outage.end()
    connection.close()  # the next statement opens a new connection, as a restarted process would


def test_a_refund_whose_answer_the_restart_lost_is_recorded_once_by_the_janitor(
    sandbox, gateway, subscribed, now, outage
):
    sub = subscribed(now=now)
    attempt = PaymentAttempt.objects.get(invoice__subscription_link__subscription=sub)

    with pytest.raises(db.Error):
        refund_create(
            attempt_id=attempt.pk, amount=4_000, reason="restart", now=now,
            gateway=GoesAwayAfter(gateway, outage, "cancel_payment"),
        )  # fmt: skip
    back(outage)

    [refund] = Refund.objects.filter(attempt=attempt)
    assert refund.status == Refund.Status.PENDING  # refunded at Iamport, unknown here
    pending_after = dt.timedelta(seconds=django_settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS)
    assert refunds_reconcile_unsettled(now=now + pending_after, gateway=gateway)["succeeded"] == 1
    refund.refresh_from_db()
    remote = gateway.get_payment(imp_uid=attempt.imp_uid)
    assert refund.status == Refund.Status.SUCCEEDED and refund.cancellation_id
    assert refund_totals(attempt)["refunded"] == remote.cancel_amount == 4_000
    assert [c.cancellation_id for c in remote.cancel_history] == [refund.cancellation_id]


def test_a_charge_settled_after_the_restart_tells_the_merchant_once(sandbox, gateway, subscribed, now, outage):
    sub = subscribed(now=now)
    renew_at = sub.current_period_end + MINUTE

    with pytest.raises(db.Error):
        subscription_renew(
            subscription_id=sub.pk, now=renew_at, gateway=GoesAwayAfter(gateway, outage, "charge_billing_key")
        )
    back(outage)
    invoice = Invoice.objects.get(subscription_link__subscription=sub, kind=Invoice.Kind.RENEWAL)
    assert not Event.objects.filter(type="invoice.paid", object_id=str(invoice.pk)).exists()

    pending_after = dt.timedelta(seconds=django_settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS)
    billing_run(now=renew_at + pending_after + MINUTE, gateway=gateway)
    billing_run(now=renew_at + pending_after + 2 * MINUTE, gateway=gateway)  # a second janitor pass changes nothing

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert Event.objects.filter(type="invoice.paid", object_id=str(invoice.pk)).count() == 1


def test_a_consent_decision_the_restart_interrupted_is_recorded_once_when_the_subscriber_answers_again(
    sandbox, gateway, now, outage
):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    sub = subscription_create(
        customer=customer, plan=PlanFactory(code="rel-trial", amount=9_900, trial_days=14), now=now, gateway=gateway
    )
    request = ConsentRequest.objects.get(subscription=sub)
    answerer = Answerer(channel=ConsentDecision.Channel.WEB, ip_address="127.0.0.1", user_agent="pytest")

    outage.begin(keep_ours=False)
    with pytest.raises(db.Error):
        consent_decide(request_id=request.pk, outcome=ConsentDecision.Outcome.GRANTED, answerer=answerer, now=now)
    back(outage)
    assert not ConsentDecision.objects.filter(request=request).exists()  # nothing half-written

    consent_decide(request_id=request.pk, outcome=ConsentDecision.Outcome.GRANTED, answerer=answerer, now=now)
    assert list(ConsentDecision.objects.filter(request=request).values_list("outcome", flat=True)) == ["granted"]
