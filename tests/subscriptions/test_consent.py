"""Consent before a trial turns paid and before a price increase (subscriptions/services/consent.py), on the
clock: windows, the last minute, silence, refusals and their quiet period, reminders, and price versions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from billing.models import AuditLog, Invoice
from subscriptions.errors import ConsentClosedError, ConsentNotOpenError, ConsentTokenUsedError
from subscriptions.models import ConsentDecision, ConsentRequest, Plan, PlanPriceVersion, Subscription
from subscriptions.services.consent import (
    Answerer,
    consent_decide,
    consent_token_make,
    consent_token_use,
    consents_open_for,
    plan_price_change_schedule,
)
from subscriptions.services.lifecycle import subscription_create
from subscriptions.services.sweep import billing_run
from tests.factories import PlanFactory, make_customer, register_card
from tests.reliability.conftest import run_in_threads
from tests.subscriptions.lifecycle_helpers import KST, T0, S

pytestmark = pytest.mark.django_db

WEB = Answerer(channel=ConsentDecision.Channel.WEB, ip_address="203.0.113.7", user_agent="Firefox/130")
EMAIL = Answerer(channel=ConsentDecision.Channel.EMAIL, ip_address="203.0.113.8", user_agent="Mail/1")
YES, NO = ConsentDecision.Outcome.GRANTED, ConsentDecision.Outcome.REFUSED


@pytest.fixture
def subscribe(django_capture_on_commit_callbacks, gateway):
    def subscribed(plan, *, now=T0):
        customer = make_customer(email="subscriber@example.com")
        with django_capture_on_commit_callbacks(execute=True):
            register_card(customer, gateway, now=now)
            return subscription_create(customer=customer, plan=plan, now=now, gateway=gateway)

    return subscribed


@pytest.fixture
def run(django_capture_on_commit_callbacks, gateway):
    def sweep(now):
        with django_capture_on_commit_callbacks(execute=True):
            return billing_run(now=now, gateway=gateway)

    return sweep


def trial_request(sub) -> ConsentRequest:
    return ConsentRequest.objects.get(subscription=sub, kind="trial_conversion")


def consent_emails() -> list:
    return [m for m in mail.outbox if "동의" in m.subject or "consent" in m.subject.lower()]


def charges(sandbox) -> list[tuple[str, int]]:
    return [(p["status"], p["amount"]) for p in sandbox.payments()]


# --- trials ----------------------------------------------------------------------------------------------


def test_fourteen_day_trial_with_no_answer_is_never_charged_when_it_ends(subscribe, run, sandbox):
    sub = subscribe(PlanFactory(code="trial14", amount=29_900, trial_days=14))
    assert len(consent_emails()) == 0
    run(T0 + dt.timedelta(minutes=1))
    assert len(consent_emails()) == 1  # asked at once: the whole trial is within the 30 days

    for day in range(1, 16):
        run(T0 + dt.timedelta(days=day, minutes=1))

    sub.refresh_from_db()
    assert (sub.status, sub.end_reason) == (S.CANCELED, "trial_consent_missing")
    assert sub.ended_at == sub.trial_end
    assert sandbox.payments() == [] and not Invoice.objects.filter(customer=sub.customer).exists()
    assert [d.outcome for d in trial_request(sub).decisions.all()] == ["expired"]
    assert any("결제되지 않았습니다" in m.subject for m in mail.outbox)
    assert AuditLog.objects.filter(action="consent.expired", object_id=str(trial_request(sub).pk)).exists()


def test_sixty_day_trial_is_asked_no_earlier_than_day_thirty(subscribe, run):
    sub = subscribe(PlanFactory(code="trial60", amount=9_900, trial_days=60))
    request = trial_request(sub)
    assert request.opens_at == sub.trial_end - dt.timedelta(days=30)

    run(T0 + dt.timedelta(days=29, hours=23))
    assert consent_emails() == []
    with pytest.raises(ConsentNotOpenError):
        consent_decide(request_id=request.pk, outcome=YES, answerer=WEB, now=T0 + dt.timedelta(days=29, hours=23))
    assert consents_open_for(subscription=sub, now=T0 + dt.timedelta(days=29, hours=23)) == []

    run(T0 + dt.timedelta(days=30, minutes=1))
    assert len(consent_emails()) == 1
    assert [r for r, _ in consents_open_for(subscription=sub, now=T0 + dt.timedelta(days=30, minutes=1))] == [request]


def test_consent_at_2359_kst_on_the_last_day_counts_and_one_a_minute_late_does_not(subscribe, run, sandbox):
    start = dt.datetime(2027, 3, 1, 0, 0, tzinfo=KST)
    sub = subscribe(PlanFactory(code="trial", amount=12_900, trial_days=14), now=start)
    late = subscribe(PlanFactory(code="trial-b", amount=12_900, trial_days=14), now=start)
    assert sub.trial_end == dt.datetime(2027, 3, 15, 0, 0, tzinfo=KST)

    consent_decide(
        request_id=trial_request(sub).pk, outcome=YES, answerer=WEB, now=dt.datetime(2027, 3, 14, 23, 59, tzinfo=KST)
    )
    with pytest.raises(ConsentClosedError):
        consent_decide(request_id=trial_request(late).pk, outcome=YES, answerer=WEB, now=sub.trial_end)
    run(start + dt.timedelta(days=7, minutes=1))  # the 7-day notice (subscriptions/services/notices.py)
    run(sub.trial_end + dt.timedelta(minutes=1))

    sub.refresh_from_db()
    late.refresh_from_db()
    assert sub.status == S.ACTIVE and charges(sandbox) == [("paid", 12_900)]
    assert (late.status, late.end_reason) == (S.CANCELED, "trial_consent_missing")


def test_a_no_ends_the_trial_uncharged_and_records_who_when_where_and_the_text(subscribe, run, sandbox):
    sub = subscribe(PlanFactory(code="trial", amount=29_900, trial_days=14))
    decision = consent_decide(request_id=trial_request(sub).pk, outcome=NO, answerer=WEB, now=T0 + dt.timedelta(days=2))

    run(sub.trial_end + dt.timedelta(minutes=1))

    sub.refresh_from_db()
    assert (sub.status, sub.end_reason) == (S.CANCELED, "trial_consent_refused")
    assert sandbox.payments() == []
    assert (decision.ip_address, decision.user_agent, decision.channel) == ("203.0.113.7", "Firefox/130", "web")
    assert "29,900원" in decision.text_shown and decision.text_shown == trial_request(sub).terms_ko
    assert AuditLog.objects.filter(action="consent.refused", to_status="refused").count() == 1


def test_the_quiet_period_holds_for_seven_days_after_a_no(subscribe, run, settings):
    settings.BILLING_CONSENT_REMINDER_DAYS = 1
    sub = subscribe(PlanFactory(code="trial30", amount=9_900, trial_days=30))
    run(T0 + dt.timedelta(minutes=1))
    refused_at = T0 + dt.timedelta(days=1)
    consent_decide(request_id=trial_request(sub).pk, outcome=NO, answerer=WEB, now=refused_at)
    asked_before = len(consent_emails())

    for hour in range(0, 7 * 24, 6):
        moment = refused_at + dt.timedelta(hours=hour)
        run(moment)
        assert consents_open_for(subscription=sub, now=moment) == []
    assert len(consent_emails()) == asked_before
    assert trial_request(sub).next_ask_at is None

    # After the quiet period the account page may show the question again (to change one's mind); no email.
    assert [r.pk for r, _ in consents_open_for(subscription=sub, now=refused_at + dt.timedelta(days=7))] == [
        trial_request(sub).pk
    ]


def test_reminders_follow_the_cadence_while_unanswered_and_stop_after_a_yes(subscribe, run, settings):
    settings.BILLING_CONSENT_REMINDER_DAYS = 3
    sub = subscribe(PlanFactory(code="trial", amount=9_900, trial_days=14))
    for hour in range(0, 8 * 24, 6):
        run(T0 + dt.timedelta(hours=hour))
    assert len(consent_emails()) == 3  # days 0, 3 and 6
    assert "다시 알림" in consent_emails()[-1].subject

    consent_decide(request_id=trial_request(sub).pk, outcome=YES, answerer=WEB, now=T0 + dt.timedelta(days=8))
    for day in range(8, 14):
        run(T0 + dt.timedelta(days=day, hours=1))
    assert len(consent_emails()) == 3


def test_an_email_no_cannot_be_replayed_nor_followed_by_its_yes(subscribe, run, sandbox):
    sub = subscribe(PlanFactory(code="trial", amount=9_900, trial_days=14))
    request = trial_request(sub)
    no = consent_token_make(request=request, outcome=NO, nonce="email-1")
    yes = consent_token_make(request=request, outcome=YES, nonce="email-1")
    consent_token_use(token=no, answerer=EMAIL, now=T0 + dt.timedelta(days=1))

    for token in (no, yes):
        with pytest.raises(ConsentTokenUsedError):
            consent_token_use(token=token, answerer=EMAIL, now=T0 + dt.timedelta(days=2))
    assert [d.outcome for d in request.decisions.all()] == ["refused"]
    run(sub.trial_end + dt.timedelta(minutes=1))
    assert sandbox.payments() == []


@pytest.mark.django_db(transaction=True)
def test_two_clicks_at_once_give_one_outcome(subscribe):
    sub = subscribe(PlanFactory(code="trial", amount=9_900, trial_days=14))
    request = trial_request(sub)
    token = consent_token_make(request=request, outcome=YES, nonce="email-2")

    def click():
        try:
            return consent_token_use(token=token, answerer=EMAIL, now=T0 + dt.timedelta(days=1)).outcome
        except ConsentTokenUsedError as exc:
            return exc.code

    results = run_in_threads(click, click)

    assert sorted(results) == ["consent_token_used", "granted"]
    assert request.decisions.count() == 1


# --- price increases ----------------------------------------------------------------------------------


@pytest.fixture
def monthly():
    return PlanFactory(code="monthly", amount=10_000)


def renewal_totals(sub) -> list[int]:
    return [
        i.total
        for i in Invoice.objects.filter(subscription_link__subscription=sub, status="paid").order_by("period_start")
    ]


def test_a_price_change_31_days_out_charges_the_old_price_before_and_the_new_one_after_only_to_consenters(
    subscribe, run, monthly, sandbox
):
    yes, no, silent = (subscribe(monthly) for _ in range(3))
    keeper_plan = PlanFactory(code="keeper", amount=10_000)
    keeper = subscribe(keeper_plan)
    scheduled_at = T0 + dt.timedelta(days=1)
    effective = scheduled_at + dt.timedelta(days=31)
    version = plan_price_change_schedule(plan=monthly, amount=12_000, effective_at=effective, now=scheduled_at)
    plan_price_change_schedule(
        plan=keeper_plan,
        amount=12_000,
        effective_at=effective,
        non_consent_action=PlanPriceVersion.NonConsentAction.KEEP_OLD_PRICE,
        now=scheduled_at,
    )
    request = ConsentRequest.objects.get(subscription=yes, price_version=version)
    assert request.change_at >= effective and request.opens_at == request.change_at - dt.timedelta(days=30)

    moment = scheduled_at
    while moment < T0 + dt.timedelta(days=100):
        run(moment)
        if request.opens_at <= moment < request.change_at and not request.decisions.exists():
            consent_decide(request_id=request.pk, outcome=YES, answerer=WEB, now=moment)
            no_request = ConsentRequest.objects.get(subscription=no, price_version=version)
            consent_decide(request_id=no_request.pk, outcome=NO, answerer=WEB, now=moment)
        moment += dt.timedelta(hours=12)

    for sub in (yes, no, silent, keeper):
        sub.refresh_from_db()
    # Renewals: 2027-02-28 (before the date: the old price), then 2027-03-31 onwards (on or after it).
    assert renewal_totals(yes) == [10_000, 10_000, 12_000, 12_000]
    assert renewal_totals(no) == [10_000, 10_000] and no.end_reason == "price_increase_not_consented"
    assert renewal_totals(silent) == [10_000, 10_000] and silent.status == S.CANCELED
    assert renewal_totals(keeper) == [10_000, 10_000, 10_000, 10_000] and keeper.status == S.ACTIVE
    assert Plan.objects.get(pk=monthly.pk).amount == 10_000  # the plan's price record never changed
    charged_more = [p for p in sandbox.payments() if p["amount"] == 12_000]
    assert len(charged_more) == 2  # both from the one subscriber who said yes


def test_a_price_change_that_leaves_less_than_the_minimum_notice_moves_to_the_renewal_after(
    subscribe, monthly, settings
):
    settings.BILLING_PRICE_CHANGE_MIN_NOTICE_DAYS = 7
    sub = subscribe(monthly)
    first_renewal = sub.current_period_end  # 2027-02-28 10:00 KST
    now = first_renewal - dt.timedelta(days=5)
    version = plan_price_change_schedule(plan=monthly, amount=11_000, effective_at=now, now=now)

    request = ConsentRequest.objects.get(subscription=sub, price_version=version)
    assert request.change_at > first_renewal
    assert request.change_at - now >= dt.timedelta(days=7)


def test_a_price_decrease_applies_at_the_next_renewal_without_asking(subscribe, run, monthly):
    sub = subscribe(monthly)
    plan_price_change_schedule(plan=monthly, amount=8_000, effective_at=T0 + dt.timedelta(days=2), now=T0)
    assert not ConsentRequest.objects.filter(subscription=sub).exists()

    run(sub.current_period_end + dt.timedelta(minutes=1))

    assert renewal_totals(sub) == [10_000, 8_000]
    assert Subscription.objects.get(pk=sub.pk).status == S.ACTIVE
