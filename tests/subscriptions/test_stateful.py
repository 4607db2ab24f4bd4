"""Random sequences of time, card, fault, webhook and subscriber events against real Postgres and the sandbox
over HTTP, with the money invariants checked after every step and the two ledgers compared at the end.

The model clock only moves forward. Advancing it behaves like a working beat: the billing run fires at every
event that falls due on the way (period ends, dunning retries, the janitor's look at an unsettled attempt),
not once at the end of a 40-day jump. Besides the ledger invariants, two more hold the subscriber's side:
nobody is dunned inside a period they paid for, and credit is never created or lost.

The last two tests replay minimal sequences the machine's invariants caught: app bugs, fixed, kept as
regression tests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.db.models import Max, Min, Sum
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from billing.errors import PaymentDeclinedError, PaymentPendingError
from billing.models import Customer, Invoice, PaymentAttempt
from billing.services.gateway import get_gateway, reset_gateway
from billing.services.payments import payments_reconcile_unsettled
from billing.services.webhooks import webhook_process, webhook_receive
from subscriptions.errors import AlreadySubscribedError, PlanChangeNotAllowedError, SubscriptionStateError
from subscriptions.models import Subscription, SubscriptionInvoice
from subscriptions.services.lifecycle import subscription_cancel, subscription_create
from subscriptions.services.plan_changes import subscription_change_plan, subscription_change_preview
from subscriptions.services.sweep import billing_run
from tests.factories import GOOD_CARD, INSUFFICIENT_FUNDS_CARD, LOST_CARD, PlanFactory, make_customer, register_card

KST = ZoneInfo("Asia/Seoul")
T0 = dt.datetime(2027, 1, 31, 10, 0, tzinfo=KST)
PLANS = {
    "basic": {"amount": 9_900, "interval": "month"},
    "pro": {"amount": 29_900, "interval": "month"},
    "yearly": {"amount": 99_000, "interval": "year"},
}
CARDS = {"good": GOOD_CARD, "insufficient_funds": INSUFFICIENT_FUNDS_CARD, "lost": LOST_CARD}
BEHAVIOURS = ("paid", "insufficient_funds", "limit_exceeded", "lost_card")
# The sandbox records every webhook it means to send; nothing listens on this port, so deliveries fail fast
# and the settle step replays them from the sandbox's record.
UNREACHABLE_NOTICE_URL = "http://127.0.0.1:9/iamport/webhook"
# A charge held this long by the sandbox outlives the client's read timeout (set in the test below).
READ_TIMEOUT_SECONDS = 0.5
HOLD_MS = 1_000
BEAT_SECONDS = 60
MAX_RUNS_PER_ADVANCE = 200
# CI runs a small fixed set of sequences; `STATEFUL_EXAMPLES=300 pytest tests/subscriptions/test_stateful.py`
# explores new random ones (one to a few seconds per example).
DEEP_EXAMPLES = int(os.environ.get("STATEFUL_EXAMPLES", "0"))
DEEP_STEPS = int(os.environ.get("STATEFUL_STEPS", "20"))
S = Subscription.Status
A = PaymentAttempt.Status
CHARGED = ("paid", "cancelled")

who = st.integers(min_value=0, max_value=2)
plan_codes = st.sampled_from(sorted(PLANS))
hours = 3600
advance_seconds = st.one_of(
    st.sampled_from([hours, 26 * hours, 3 * 86400, 14 * 86400, 28 * 86400, 31 * 86400, 40 * 86400]),
    st.integers(min_value=hours, max_value=40 * 86400),
)
# The model clock moves at most this far per step (and the factories' cards expire in Dec 2030).
MAX_ADVANCE = dt.timedelta(days=40)


def dunning_grace() -> dt.timedelta:
    return dt.timedelta(days=max(django_settings.BILLING_DUNNING_SOFT_RETRY_DAYS))


def settle_delay() -> dt.timedelta:
    # A renewal whose charge came back UNKNOWN is known to have failed only when the janitor gives up on it,
    # so the dunning schedule (counted from the first *recorded* failure) starts that much later.
    return dt.timedelta(seconds=django_settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS)


class BillingMachine(RuleBasedStateMachine):
    def __init__(self, *, sandbox, gateway, capture_on_commit):
        super().__init__()
        self.sandbox = sandbox
        self.gateway = gateway
        self.capture = capture_on_commit
        self.now = T0
        self.customers = []
        # Credit the plan-change previews promised each customer: the only way credit comes into being.
        self.credit_granted: dict[int, int] = {}
        self.sandbox.reset()
        self.sandbox.set_now(int(T0.timestamp()))
        self.sandbox.freeze(True)
        self.sandbox.set_default_notice_url(UNREACHABLE_NOTICE_URL)
        # Everything this example writes is rolled back in teardown, so the next example starts empty.
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.plans = {
            code: PlanFactory(code=code, name_en=code, name_ko=code, **fields) for code, fields in PLANS.items()
        }

    # -- helpers ------------------------------------------------------------------------------------------

    def customer(self, index: int):
        return self.customers[index % len(self.customers)]

    def subscription(self, customer) -> Subscription | None:
        return Subscription.objects.filter(customer=customer).order_by("-created_at", "-id").first()

    def move_sandbox_clock(self, moment: dt.datetime) -> None:
        target = int(moment.timestamp())
        if target > self.sandbox.now():
            self.sandbox.set_now(target)

    def next_run_at(self, after: dt.datetime, until: dt.datetime, *, first: bool) -> dt.datetime | None:
        """When the beat would next find work: a subscription event, a dunning retry, or the janitor's next
        look at an unsettled attempt. Work already overdue is picked up by the first beat."""
        live = ["incomplete", "trialing", "active", "past_due", "paused"]
        subs = Subscription.objects.filter(status__in=live, next_event_at__isnull=False)
        invoices = Invoice.objects.filter(status=Invoice.Status.OPEN, next_attempt_at__isnull=False)
        candidates = [
            subs.filter(next_event_at__gt=after, next_event_at__lte=until).aggregate(m=Min("next_event_at"))["m"],
            invoices.filter(next_attempt_at__gt=after, next_attempt_at__lte=until).aggregate(m=Min("next_attempt_at"))[
                "m"
            ],
        ]
        unsettled = PaymentAttempt.objects.filter(status__in=[A.PENDING, A.UNKNOWN], flagged_reason="")
        for created_at in unsettled.values_list("created_at", flat=True):
            for seconds in (
                django_settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS,
                django_settings.BILLING_RECONCILE_NOT_FOUND_AFTER_SECONDS,
            ):
                moment = created_at + dt.timedelta(seconds=seconds)
                if after < moment <= until:
                    candidates.append(moment)
        overdue = subs.filter(next_event_at__lte=after).exists() or invoices.filter(next_attempt_at__lte=after).exists()
        if first and overdue:
            candidates.append(min(after + dt.timedelta(seconds=BEAT_SECONDS), until))
        candidates = [moment for moment in candidates if moment is not None]
        return min(candidates) if candidates else None

    def travel(self, target: dt.datetime) -> None:
        for run in range(MAX_RUNS_PER_ADVANCE):
            moment = self.next_run_at(self.now, target, first=run == 0) or target
            self.now = moment
            self.move_sandbox_clock(moment)
            with self.capture(execute=True):
                billing_run(now=moment, gateway=self.gateway)
            if moment >= target:
                return
        raise AssertionError(f"more than {MAX_RUNS_PER_ADVANCE} billing runs before {target}: something loops")

    def deliver(self, body: dict, *, now: dt.datetime):
        return webhook_receive(
            raw_body=json.dumps(body), content_type="application/json", headers={}, source_ip="127.0.0.1", now=now
        )

    def process(self, event, *, now: dt.datetime):
        with self.capture(execute=True):
            return webhook_process(event_id=event.pk, now=now, gateway=self.gateway)

    # -- setup --------------------------------------------------------------------------------------------

    @initialize(codes=st.lists(plan_codes, min_size=2, max_size=3))
    def subscribe_customers(self, codes):
        for code in codes:
            customer = make_customer()
            with self.capture(execute=True):
                register_card(customer, self.gateway, now=self.now)
                subscription_create(customer=customer, plan=self.plans[code], now=self.now, gateway=self.gateway)
            self.customers.append(customer)
            self.credit_granted[customer.pk] = 0

    # -- rules --------------------------------------------------------------------------------------------

    @rule(seconds=advance_seconds)
    def advance_clock(self, seconds):
        self.travel(self.now + dt.timedelta(seconds=seconds))

    @rule()
    def beat_at_the_next_due_event(self):
        """Stop right after the next event (a renewal, a retry, the janitor's look), so that subscriber
        actions can land in the minutes between a charge and its settlement."""
        moment = self.next_run_at(self.now, self.now + MAX_ADVANCE, first=True)
        if moment is not None:
            self.travel(moment)

    @rule(index=who, behaviour=st.sampled_from(BEHAVIOURS))
    def card_goes_bad_or_recovers(self, index, behaviour):
        key = self.customer(index).billing_keys.filter(status="active", is_default=True).first()
        self.sandbox.set_card_behaviour(key.customer_uid, behaviour)

    @rule(mode=st.sampled_from(["timeout_after_commit", "http_500"]))
    def next_charge_fails_in_transit(self, mode):
        self.sandbox.add_fault("again", mode, times=1, hold_ms=HOLD_MS)

    @rule(
        pick=st.integers(min_value=0, max_value=10_000),
        stale_status=st.sampled_from(["ready", "failed", "paid"]),
        copies=st.integers(min_value=1, max_value=3),
        reorder=st.booleans(),
    )
    def webhook_duplicated_or_reordered(self, pick, stale_status, copies, reorder):
        payments = self.sandbox.payments()
        if not payments:
            return
        payment = payments[pick % len(payments)]
        actual = {"imp_uid": payment["imp_uid"], "merchant_uid": payment["merchant_uid"], "status": payment["status"]}
        stale = {**actual, "status": stale_status}
        # Received: the stale notice first, then the real one (duplicated); processed in arrival order, or
        # with the real ones first when the worker queue reorders them.
        events = [self.deliver(stale, now=self.now)] + [self.deliver(actual, now=self.now) for _ in range(copies)]
        for event in reversed(events) if reorder else events:
            self.process(event, now=self.now)

    @rule(index=who, card=st.sampled_from(sorted(CARDS)))
    def register_new_card(self, index, card):
        with self.capture(execute=True):
            register_card(self.customer(index), self.gateway, now=self.now, card=CARDS[card])

    @rule(index=who, code=plan_codes)
    def change_plan(self, index, code):
        customer = self.customer(index)
        subscription = self.subscription(customer)
        try:
            preview = subscription_change_preview(subscription=subscription, new_plan=self.plans[code], now=self.now)
            with self.capture(execute=True):
                subscription_change_plan(
                    subscription=subscription, new_plan=self.plans[code], now=self.now, gateway=self.gateway
                )
        except (PaymentDeclinedError, PaymentPendingError, PlanChangeNotAllowedError):
            return
        self.credit_granted[customer.pk] += preview.credit_left

    @rule(index=who)
    def cancel_at_period_end(self, index):
        try:
            subscription_cancel(subscription=self.subscription(self.customer(index)), now=self.now)
        except SubscriptionStateError:
            pass

    @rule(index=who, code=plan_codes)
    def subscribe_again(self, index, code):
        customer = self.customer(index)
        try:
            with self.capture(execute=True):
                subscription_create(customer=customer, plan=self.plans[code], now=self.now, gateway=self.gateway)
        except AlreadySubscribedError:
            pass

    @rule()
    def janitor(self):
        self.travel(self.now + settle_delay() + dt.timedelta(seconds=1))
        with self.capture(execute=True):
            payments_reconcile_unsettled(now=self.now, gateway=self.gateway)

    # -- invariants ---------------------------------------------------------------------------------------

    @invariant()
    def an_invoice_is_paid_exactly_when_one_attempt_succeeded(self):
        for invoice in Invoice.objects.prefetch_related("attempts"):
            succeeded = [a for a in invoice.attempts.all() if a.status == A.SUCCEEDED]
            assert len(succeeded) <= 1, f"invoice {invoice.pk} has {len(succeeded)} succeeded attempts"
            if invoice.status == Invoice.Status.PAID:
                assert succeeded or invoice.total == 0, f"invoice {invoice.pk} is paid with no succeeded attempt"
            else:
                # A charge that landed on an invoice we had given up on is parked for an operator.
                unflagged = [a.merchant_uid for a in succeeded if not a.flagged_reason]
                assert not unflagged, f"invoice {invoice.pk} is {invoice.status} but {unflagged} succeeded"

    @invariant()
    def every_charge_at_iamport_has_its_attempt(self):
        ours = set(PaymentAttempt.objects.values_list("merchant_uid", flat=True))
        charged = [p["merchant_uid"] for p in self.sandbox.payments() if p["status"] in CHARGED]
        assert len(charged) == len(set(charged)), f"a merchant_uid was charged twice at Iamport: {charged}"
        missing = set(charged) - ours
        assert not missing, f"Iamport charged {missing} but we have no attempt for them"

    @invariant()
    def no_attempt_succeeded_that_iamport_did_not_charge(self):
        paid = {(p["merchant_uid"], p["amount"]) for p in self.sandbox.payments() if p["status"] == "paid"}
        succeeded = set(PaymentAttempt.objects.filter(status=A.SUCCEEDED).values_list("merchant_uid", "amount"))
        assert succeeded <= paid, f"succeeded here but not paid at Iamport: {succeeded - paid}"

    @invariant()
    def access_only_within_a_paid_period_plus_dunning_grace(self):
        for subscription in Subscription.objects.filter(status__in=Subscription.ACCESS_STATUSES):
            paid_end = SubscriptionInvoice.objects.filter(
                subscription=subscription, invoice__status=Invoice.Status.PAID
            ).aggregate(last=Max("period_end"))["last"]
            assert paid_end is not None, f"subscription {subscription.pk} is {subscription.status} and never paid"
            allowed_until = paid_end + dunning_grace() + settle_delay()
            assert self.now < allowed_until, (
                f"subscription {subscription.pk} is {subscription.status} at {self.now.astimezone(KST)}; "
                f"its last paid period ended {paid_end.astimezone(KST)}"
            )

    @invariant()
    def no_dunning_while_a_paid_period_covers_the_moment(self):
        # Only periods bought outright count: an upgrade's invoice pays the difference, not the period.
        bought = [
            SubscriptionInvoice.Kind.FIRST,
            SubscriptionInvoice.Kind.RENEWAL,
            SubscriptionInvoice.Kind.INTERVAL_CHANGE,
        ]
        dunned = Subscription.objects.filter(status__in=[S.PAST_DUE, S.UNPAID]) | Subscription.objects.filter(
            status=S.CANCELED, end_reason="dunning_exhausted"
        )
        for subscription in dunned:
            moment = self.now if subscription.status != S.CANCELED else subscription.ended_at
            covering = SubscriptionInvoice.objects.filter(
                subscription=subscription,
                kind__in=bought,
                invoice__status=Invoice.Status.PAID,
                period_start__lte=moment,
                period_end__gt=moment,
            ).first()
            assert covering is None, (
                f"subscription {subscription.pk} is {subscription.status} ({subscription.end_reason or 'dunning'}) "
                f"at {moment.astimezone(KST)} inside its paid {covering.kind} period "
                f"{covering.period_start.astimezone(KST)} - {covering.period_end.astimezone(KST)}"
            )

    @invariant()
    def credit_is_neither_created_nor_lost(self):
        # Credit is granted by an interval change and spent by invoices; an invoice that is voided never
        # collected anything, so the credit it had taken must be back on the balance.
        for customer in Customer.objects.filter(pk__in=self.credit_granted):
            spent = (
                Invoice.objects.filter(customer=customer)
                .exclude(status=Invoice.Status.VOID)
                .aggregate(total=Sum("credit_applied", default=0))["total"]
            )
            lost = list(
                Invoice.objects.filter(customer=customer, status=Invoice.Status.VOID, credit_applied__gt=0).values_list(
                    "number", "credit_applied"
                )
            )
            assert customer.credit_balance + spent == self.credit_granted[customer.pk], (
                f"customer {customer.pk} was granted {self.credit_granted[customer.pk]} won of credit, has "
                f"{customer.credit_balance} and spent {spent}; voided invoices kept {lost}"
            )

    # -- the end ------------------------------------------------------------------------------------------

    def settle(self) -> None:
        """Let the janitor look at everything long after the fact, replay every webhook, compare the ledgers."""
        later = self.now + dt.timedelta(days=1) + settle_delay()
        self.move_sandbox_clock(later)
        with self.capture(execute=True):
            payments_reconcile_unsettled(now=later, gateway=self.gateway)
        bodies = [record["body"] for record in self.sandbox.webhooks()]
        bodies += [
            {"imp_uid": p["imp_uid"], "merchant_uid": p["merchant_uid"], "status": p["status"]}
            for p in self.sandbox.payments()
        ]
        for body in bodies:
            self.process(self.deliver(body, now=later), now=later)

        charged = {(p["merchant_uid"], p["amount"]) for p in self.sandbox.payments() if p["status"] in CHARGED}
        succeeded = set(PaymentAttempt.objects.filter(status=A.SUCCEEDED).values_list("merchant_uid", "amount"))
        assert succeeded == charged, (
            f"ledgers differ: only ours {succeeded - charged}, only at Iamport {charged - succeeded}; "
            f"flagged: {list(PaymentAttempt.objects.exclude(flagged_reason='').values_list('flagged_reason'))}"
        )
        unknown = PaymentAttempt.objects.filter(status__in=[A.PENDING, A.UNKNOWN], flagged_reason="")
        assert not unknown.exists(), f"left unsettled: {list(unknown.values_list('merchant_uid', 'status'))}"

    def teardown(self):
        try:
            if not connection.needs_rollback:
                self.settle()
        finally:
            transaction.set_rollback(True)
            self.atomic.__exit__(None, None, None)
            self.sandbox.clear_faults()


@pytest.fixture
def new_machine(sandbox, settings, django_capture_on_commit_callbacks):
    """Builds a machine on a fresh sandbox and an empty (rolled back) database, with a short read timeout so
    an injected timeout costs a second, not the default two."""
    settings.IAMPORT_READ_TIMEOUT = READ_TIMEOUT_SECONDS
    reset_gateway()
    gateway = get_gateway()
    return lambda: BillingMachine(
        sandbox=sandbox, gateway=gateway, capture_on_commit=django_capture_on_commit_callbacks
    )


def replay(machine: BillingMachine, *steps) -> None:
    """Run `steps` (name, kwargs) like hypothesis does: invariants after each step, the settle at the end."""
    # @invariant() marks its function with this attribute; reading it keeps this list in step with the class.
    invariants = [
        name for name in dir(BillingMachine) if hasattr(getattr(BillingMachine, name), "hypothesis_stateful_invariant")
    ]
    try:
        for name, kwargs in steps:
            getattr(machine, name)(**kwargs)
            for check in invariants:
                getattr(machine, check)()
    finally:
        machine.teardown()


@pytest.mark.django_db
def test_money_invariants_hold_when_time_cards_faults_webhooks_and_plan_changes_interleave(new_machine):
    run_state_machine_as_test(
        new_machine,
        settings=hypothesis_settings(
            max_examples=DEEP_EXAMPLES or 15,
            stateful_step_count=DEEP_STEPS if DEEP_EXAMPLES else 12,
            deadline=None,
            derandomize=not DEEP_EXAMPLES,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        ),
    )


@pytest.mark.django_db
def test_a_paid_year_is_never_dunned_when_the_interval_change_lands_during_an_unsettled_renewal(new_machine):
    replay(
        new_machine(),
        ("subscribe_customers", {"codes": ["basic", "yearly"]}),
        ("next_charge_fails_in_transit", {"mode": "http_500"}),
        ("beat_at_the_next_due_event", {}),  # 2027-02-28 10:00 KST: the renewal's charge is UNKNOWN
        ("change_plan", {"index": 0, "code": "yearly"}),  # 99,000 - 9,900 credit for the unpaid month: paid
        ("janitor", {}),  # the renewal was never received: failed -> past_due during the paid year
    )


@pytest.mark.django_db
def test_credit_goes_back_to_the_customer_when_a_declined_plan_change_voids_its_invoice(new_machine):
    replay(
        new_machine(),
        ("subscribe_customers", {"codes": ["yearly", "basic"]}),
        ("advance_clock", {"seconds": 40 * 86400}),
        ("change_plan", {"index": 0, "code": "basic"}),  # yearly -> monthly: the unused year becomes credit
        ("card_goes_bad_or_recovers", {"index": 0, "behaviour": "insufficient_funds"}),
        ("change_plan", {"index": 0, "code": "yearly"}),  # takes the credit, is declined, is voided
    )
