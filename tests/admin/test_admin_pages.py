"""Every admin page renders; read-only records cannot be added, changed or deleted; plan prices freeze."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from billing.models import (
    AuditLog,
    BillingKey,
    CardRegistration,
    Customer,
    Invoice,
    PaymentAttempt,
    Refund,
    WebhookEvent,
)
from subscriptions.admin import PRICE_LOCKED_HELP, PlanAdmin
from subscriptions.models import Plan, Subscription
from tests.admin.conftest import paid_attempt
from tests.factories import PlanFactory

pytestmark = pytest.mark.django_db

MODELS = [
    Plan,
    Customer,
    BillingKey,
    CardRegistration,
    Subscription,
    Invoice,
    PaymentAttempt,
    Refund,
    WebhookEvent,
    AuditLog,
]
READ_ONLY = [PaymentAttempt, Refund, WebhookEvent, AuditLog]


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.model_name)
def test_changelist_and_change_page_render_when_superuser(admin_client, world, model):
    obj = model.objects.order_by("pk").first()

    changelist = admin_client.get(admin_url(model, "changelist"))
    change = admin_client.get(admin_url(model, "change", obj.pk))

    assert changelist.status_code == 200
    assert change.status_code == 200


@pytest.mark.parametrize(
    ("model", "query"),
    [
        (PaymentAttempt, "merchant_uid"),
        (PaymentAttempt, "imp_uid"),
        (Invoice, "number"),
        (BillingKey, "customer_uid"),
        (Subscription, "email"),
        (Refund, "imp_uid"),
        (WebhookEvent, "imp_uid"),
        (AuditLog, "merchant_uid"),
    ],
)
def test_search_finds_the_row_when_searching_by_an_iamport_id_or_number(admin_client, world, model, query):
    attempt = world.attempt
    term = {
        "merchant_uid": attempt.merchant_uid,
        "imp_uid": attempt.imp_uid,
        "number": attempt.invoice.number,
        "customer_uid": attempt.customer_uid,
        "email": "buyer@example.com",
    }[query]

    response = admin_client.get(admin_url(model, "changelist"), {"q": term})

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 1


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m._meta.model_name)
def test_read_only_record_refuses_add_change_and_delete_when_superuser(admin_client, world, model):
    obj = model.objects.order_by("pk").first()
    before = model.objects.count()

    add = admin_client.post(admin_url(model, "add"), {})
    change = admin_client.post(admin_url(model, "change", obj.pk), {})
    delete = admin_client.post(admin_url(model, "delete", obj.pk), {"post": "yes"})
    bulk_delete = admin_client.post(
        admin_url(model, "changelist"), {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
    )

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert bulk_delete.status_code in (200, 302)  # the action does not exist: nothing happens
    assert model.objects.count() == before
    page = admin_client.get(admin_url(model, "change", obj.pk))
    assert b'name="_save"' not in page.content


def test_changelists_run_a_fixed_number_of_queries_when_rows_grow(
    admin_client, sandbox, gateway, now, django_assert_max_num_queries
):
    """list_select_related and the refunded-total subquery: 2 or 12 attempts cost the same queries."""
    for _ in range(2):
        paid_attempt(gateway, now)
    with django_assert_max_num_queries(12) as few:
        admin_client.get(admin_url(PaymentAttempt, "changelist"))
    for _ in range(10):
        paid_attempt(gateway, now)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = admin_client.get(admin_url(PaymentAttempt, "changelist"))
    assert len(response.context["cl"].result_list) == 12


def test_plan_price_fields_are_read_only_with_the_reason_when_the_plan_has_subscribers(admin_client, world):
    plan = world.subscription.plan

    page = admin_client.get(admin_url(Plan, "change", plan.pk))
    response = admin_client.post(
        admin_url(Plan, "change", plan.pk),
        {
            "code": plan.code,
            "name_ko": "새 이름",
            "name_en": plan.name_en,
            "trial_days": 0,
            "sort_order": 0,
            "active": "on",
            "amount": 1,
        },
    )

    form = page.context["adminform"].form
    assert not set(Plan.PRICE_FIELDS) & set(form.fields)
    assert str(PRICE_LOCKED_HELP) in page.content.decode()
    assert response.status_code == 302
    plan.refresh_from_db()
    assert (plan.name_ko, plan.amount) == ("새 이름", 9_900)


def test_plan_price_can_be_edited_when_nobody_subscribed(admin_client):
    plan = PlanFactory(code="draft-plan", amount=9_900)

    response = admin_client.post(
        admin_url(Plan, "change", plan.pk),
        {
            "code": plan.code,
            "name_ko": plan.name_ko,
            "name_en": plan.name_en,
            "trial_days": 0,
            "sort_order": 0,
            "active": "on",
            "amount": 12_900,
            "tax_free_amount": 0,
            "currency": "KRW",
            "interval": "month",
            "interval_count": 1,
        },
    )

    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.amount == 12_900


def test_plan_price_change_is_refused_with_a_message_when_someone_subscribed_meanwhile(admin_client, world):
    plan = world.subscription.plan
    data = {
        "code": plan.code,
        "name_ko": plan.name_ko,
        "name_en": plan.name_en,
        "trial_days": 0,
        "sort_order": 0,
        "active": "on",
        "amount": 1_000,
        "tax_free_amount": 0,
        "currency": "KRW",
        "interval": "month",
        "interval_count": 1,
    }

    # The form was built before the first subscription existed: force that rare race.
    with mock.patch.object(PlanAdmin, "price_locked", return_value=False):
        response = admin_client.post(admin_url(Plan, "change", plan.pk), data)

    plan.refresh_from_db()
    assert plan.amount == 9_900
    assert response.status_code == 302
    [message] = list(get_messages(response.wsgi_request))
    assert message.level_tag == "error"


def test_admin_index_links_the_dashboard_when_staff(admin_client):
    response = admin_client.get(reverse("admin:index"))

    assert reverse("admin:dashboard") in response.content.decode()
