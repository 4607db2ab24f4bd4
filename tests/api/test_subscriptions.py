"""Plans, subscribing, plan changes, cancel, pause and resume over the API (real services, the sandbox)."""

from __future__ import annotations

import pytest

from billing import clock
from billing.models import Invoice
from subscriptions.models import Subscription
from tests.api.conftest import error_of
from tests.factories import INSUFFICIENT_FUNDS_CARD, PlanFactory, make_customer, register_card

pytestmark = pytest.mark.django_db


def test_plans_are_listed_publicly_with_vat_inclusive_amounts_when_anonymous(anon, plans):
    PlanFactory(code="books", name_ko="도서", name_en="Books", amount=22_000, tax_free_amount=12_000, sort_order=3)
    PlanFactory(code="retired", active=False)

    response = anon.get("/api/plans/")

    assert response.status_code == 200
    body = response.json()
    assert [p["code"] for p in body["results"]] == ["basic", "pro", "books"]
    assert body["results"][2] == {
        "code": "books",
        "name_ko": "도서",
        "name_en": "Books",
        "description_ko": "",
        "description_en": "",
        "amount": 22_000,
        "tax_free_amount": 12_000,
        "currency": "KRW",
        "interval": "month",
        "interval_count": 1,
        "trial_days": 0,
    }


def test_subscribing_charges_the_first_period_and_activates_when_the_card_pays(client_for, subscriber):
    member = subscriber(plan=None)

    response = client_for(member.user).post(
        "/api/subscriptions/", {"plan": "basic", "agree_to_terms": True}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "active"
    assert body["billing_key"] == member.billing_key.id
    assert Invoice.objects.get(customer=member.customer).status == "paid"


def test_subscribing_starts_a_trial_without_charging_when_the_plan_has_trial_days(client_for, subscriber):
    PlanFactory(code="trial", trial_days=14)
    member = subscriber(plan=None)

    response = client_for(member.user).post(
        "/api/subscriptions/", {"plan": "trial", "agree_to_terms": True}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["status"] == "trialing"
    assert response.json()["trial_end"] is not None
    assert not Invoice.objects.filter(customer=member.customer).exists()


def test_subscribing_answers_payment_declined_402_when_the_card_is_declined(client_for, subscriber):
    member = subscriber(card=INSUFFICIENT_FUNDS_CARD, plan=None)

    response = client_for(member.user).post(
        "/api/subscriptions/", {"plan": "basic", "agree_to_terms": True}, format="json"
    )

    assert response.status_code == 402
    error = error_of(response)
    assert error["code"] == "payment_declined"
    assert "잔액부족" in error["reason"]
    assert error["decline_class"] == "soft"
    # the subscription waits for a new card or a cancel; its id lets the client do either
    subscription = Subscription.objects.get(pk=error["subscription_id"])
    assert (subscription.customer, subscription.status) == (member.customer, "incomplete")


def test_subscribing_answers_payment_pending_409_when_iamport_may_have_charged(client_for, subscriber, sandbox):
    member = subscriber(plan=None)
    sandbox.add_fault("again", "http_500")  # a 5xx on a charge: it may have gone through

    response = client_for(member.user).post(
        "/api/subscriptions/", {"plan": "basic", "agree_to_terms": True}, format="json"
    )

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "payment_pending"
    assert Subscription.objects.get(pk=error["subscription_id"]).status == "incomplete"
    payment = client_for(member.user).get("/api/payments/").json()["results"][0]
    assert (payment["status"], payment["failure_reason"]) == ("unknown", "")  # no raw gateway error shown


def test_subscribing_answers_already_subscribed_409_when_a_subscription_is_live(client_for, subscriber):
    member = subscriber()

    response = client_for(member.user).post(
        "/api/subscriptions/", {"plan": "pro", "agree_to_terms": True}, format="json"
    )

    assert response.status_code == 409
    assert error_of(response)["code"] == "already_subscribed"
    assert Subscription.objects.filter(customer=member.customer).count() == 1


def test_subscribing_answers_no_payment_method_when_no_card_is_registered(client_for, plans):
    customer = make_customer()

    response = client_for(customer.user).post(
        "/api/subscriptions/", {"plan": "basic", "agree_to_terms": True}, format="json"
    )

    assert response.status_code == 400
    assert error_of(response)["code"] == "no_payment_method"


def test_subscribing_answers_plan_not_available_when_the_plan_is_retired(client_for, subscriber):
    PlanFactory(code="retired", active=False)
    member = subscriber(plan=None)

    response = client_for(member.user).post(
        "/api/subscriptions/", {"plan": "retired", "agree_to_terms": True}, format="json"
    )

    assert response.status_code == 400
    assert error_of(response)["code"] == "plan_not_available"


@pytest.mark.parametrize(
    ("body", "field_code"),
    [({}, "required"), ({"plan": "no-such-plan"}, "does_not_exist")],
)
def test_subscribing_answers_validation_error_per_field_when_the_plan_is_missing_or_unknown(
    client_for, plans, body, field_code
):
    customer = make_customer()

    response = client_for(customer.user).post("/api/subscriptions/", body, format="json")

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert [detail["code"] for detail in error["fields"]["plan"]] == [field_code]


def test_subscriptions_are_listed_newest_first_when_one_ended_and_one_is_live(client_for, subscriber, gateway):
    member = subscriber()
    api = client_for(member.user)
    api.post(f"/api/subscriptions/{member.subscription.id}/cancel", {"at_period_end": False}, format="json")
    second = api.post("/api/subscriptions/", {"plan": "pro", "agree_to_terms": True}, format="json").json()

    listed = api.get("/api/subscriptions/").json()

    assert listed["count"] == 2
    assert [(s["id"], s["status"]) for s in listed["results"]] == [
        (second["id"], "active"),
        (member.subscription.id, "canceled"),
    ]


def test_preview_explains_a_downgrade_in_korean_and_english_when_the_new_plan_is_cheaper(client_for, subscriber):
    member = subscriber(plan="pro")

    response = client_for(member.user).post(
        f"/api/subscriptions/{member.subscription.id}/change-plan/preview", {"plan": "basic"}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["kind"], body["amount_due"], body["credit_left"]) == ("downgrade", 0, 0)
    assert (body["current_plan"], body["new_plan"]) == ("pro", "basic")
    assert body["effective_at"] == body["period_end"]
    assert "베이직" in body["explanation"]["ko"][0]
    assert "Basic" in body["explanation"]["en"][0]


def preview(api, member, **body):
    return api.post(f"/api/subscriptions/{member.subscription.id}/change-plan/preview", body, format="json")


def test_preview_is_priced_at_proration_at_when_it_is_a_recent_instant_of_the_period(client_for, subscriber):
    member = subscriber(plan="basic")
    api = client_for(member.user)
    first = preview(api, member, plan="pro").json()
    clock.set_offset(clock.offset_seconds() + 10 * 60)  # ten minutes later: less of the period is left

    again = preview(api, member, plan="pro", proration_at=first["priced_at"])
    now = preview(api, member, plan="pro").json()

    assert again.status_code == 200
    assert (again.json()["amount_due"], again.json()["priced_at"]) == (first["amount_due"], first["priced_at"])
    assert now["amount_due"] < first["amount_due"]  # without it: priced now, which is a different amount
    confirmed = api.post(
        f"/api/subscriptions/{member.subscription.id}/change-plan",
        {"plan": "pro", "proration_at": first["priced_at"]},
        format="json",
    )
    assert confirmed.status_code == 200
    charged = Invoice.objects.filter(customer=member.customer).order_by("-id").first()
    assert charged.total == first["amount_due"]


@pytest.mark.parametrize(
    "proration_at",
    ["1900-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "sixteen minutes ago"],
    ids=["long-ago", "future", "not-an-instant"],
)
def test_preview_answers_400_and_says_why_when_proration_at_is_outside_the_window(client_for, subscriber, proration_at):
    member = subscriber(plan="basic")

    response = preview(client_for(member.user), member, plan="pro", proration_at=proration_at)

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] in {"invalid_proration_at", "validation_error"}
    assert "proration_at" in str(error)


def test_preview_answers_400_invalid_proration_at_when_it_is_older_than_15_minutes(client_for, subscriber):
    member = subscriber(plan="basic")
    api = client_for(member.user)
    stale = preview(api, member, plan="pro").json()["priced_at"]
    clock.set_offset(clock.offset_seconds() + 16 * 60)

    response = preview(api, member, plan="pro", proration_at=stale)

    assert response.status_code == 400
    assert (error_of(response)["code"], error_of(response)["field"]) == ("invalid_proration_at", "proration_at")


def test_preview_answers_period_not_current_409_when_the_period_ended_before_its_renewal_ran(client_for, subscriber):
    member = subscriber(plan="basic")
    ended = member.subscription.current_period_end - clock.now()
    clock.set_offset(clock.offset_seconds() + int(ended.total_seconds()) + 30)  # due; the sweep has not run yet

    response = preview(client_for(member.user), member, plan="pro")

    assert response.status_code == 409
    assert error_of(response)["code"] == "period_not_current"


def test_change_plan_schedules_a_downgrade_for_the_period_end_without_charging_when_cheaper(client_for, subscriber):
    member = subscriber(plan="pro")

    response = client_for(member.user).post(
        f"/api/subscriptions/{member.subscription.id}/change-plan", {"plan": "basic"}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["plan"]["code"], response.json()["pending_plan"]) == ("pro", "basic")
    assert Invoice.objects.filter(customer=member.customer).count() == 1


def test_change_plan_answers_payment_declined_402_and_keeps_the_plan_when_the_new_card_declines(
    client_for, subscriber, gateway
):
    member = subscriber()
    register_card(member.customer, gateway, now=clock.now(), card=INSUFFICIENT_FUNDS_CARD)  # the new default

    response = client_for(member.user).post(
        f"/api/subscriptions/{member.subscription.id}/change-plan", {"plan": "pro"}, format="json"
    )

    assert response.status_code == 402
    assert error_of(response)["code"] == "payment_declined"
    member.subscription.refresh_from_db()
    assert member.subscription.plan.code == "basic"


def test_change_plan_answers_plan_change_not_allowed_409_when_already_on_that_plan(client_for, subscriber):
    member = subscriber()

    response = client_for(member.user).post(
        f"/api/subscriptions/{member.subscription.id}/change-plan", {"plan": "basic"}, format="json"
    )

    assert response.status_code == 409
    assert error_of(response)["code"] == "plan_change_not_allowed"


def test_cancel_now_ends_the_subscription_when_at_period_end_is_false(client_for, subscriber):
    member = subscriber()

    response = client_for(member.user).post(
        f"/api/subscriptions/{member.subscription.id}/cancel",
        {"at_period_end": False, "reason": "moving abroad"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert response.json()["end_reason"] == "moving abroad"


def test_cancel_answers_subscription_state_409_when_already_canceled(client_for, subscriber):
    member = subscriber()
    api = client_for(member.user)
    api.post(f"/api/subscriptions/{member.subscription.id}/cancel", {"at_period_end": False}, format="json")

    response = api.post(f"/api/subscriptions/{member.subscription.id}/cancel", {}, format="json")

    assert response.status_code == 409
    assert error_of(response)["code"] == "subscription_state"


def test_resume_undoes_a_scheduled_cancel_when_the_period_has_not_ended(client_for, subscriber):
    member = subscriber()
    api = client_for(member.user)
    api.post(f"/api/subscriptions/{member.subscription.id}/cancel", {"at_period_end": True}, format="json")

    response = api.post(f"/api/subscriptions/{member.subscription.id}/resume")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancel_at_period_end"]) == ("active", False)


def test_resume_answers_subscription_state_409_when_nothing_is_scheduled(client_for, subscriber):
    member = subscriber()

    response = client_for(member.user).post(f"/api/subscriptions/{member.subscription.id}/resume")

    assert response.status_code == 409
    assert error_of(response)["code"] == "subscription_state"


@pytest.mark.parametrize("periods", [2, None])
def test_pause_is_scheduled_from_the_next_period_when_active(client_for, subscriber, periods):
    member = subscriber()

    response = client_for(member.user).post(
        f"/api/subscriptions/{member.subscription.id}/pause", {"periods": periods}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["pause_requested"], body["pause_periods"]) == ("active", True, periods)


def test_pause_answers_validation_error_when_periods_is_below_one(client_for, subscriber):
    member = subscriber()

    response = client_for(member.user).post(
        f"/api/subscriptions/{member.subscription.id}/pause", {"periods": 0}, format="json"
    )

    assert response.status_code == 400
    assert error_of(response)["fields"]["periods"][0]["code"] == "min_value"
    member.subscription.refresh_from_db()
    assert member.subscription.pause_requested is False


def test_a_trial_subscriber_lists_the_consent_question_with_its_terms_when_asked(client_for, subscriber):
    PlanFactory(code="trial", name_ko="체험", name_en="Trial", amount=12_900, trial_days=14)
    member = subscriber(plan="trial")

    response = client_for(member.user).get(f"/api/subscriptions/{member.subscription.id}/consents")

    assert response.status_code == 200
    body = response.json()
    consents = body["results"] if isinstance(body, dict) and "results" in body else body
    assert [c["kind"] for c in consents] == ["trial_conversion"]
    assert "12,900" in str(consents[0])
