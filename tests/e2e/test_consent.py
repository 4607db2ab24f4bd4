"""Consent in a real Chromium: a trial subscriber answers the account banner, and an admin schedules a price
change and reads its campaign page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing import clock
from subscriptions.models import ConsentDecision, ConsentRequest, Plan, PlanPriceVersion
from subscriptions.services.lifecycle import subscription_create
from tests.e2e.test_admin_refund import log_in
from tests.factories import PlanFactory, make_customer, register_card

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_trial_subscriber_answers_yes_on_the_consent_banner_and_it_is_recorded(page, live_server, sandbox, gateway):
    now = clock.now()
    customer = make_customer(username="mina")
    register_card(customer, gateway, now=now)
    plan = PlanFactory(code="trial-pro", name_ko="프로", amount=29_900, trial_days=14)
    sub = subscription_create(customer=customer, plan=plan, now=now, gateway=gateway)

    log_in(page, live_server, "mina", "pw-12345678")
    page.goto(f"{live_server.url}/account/")
    banner = page.locator("#consent-trial_conversion")
    assert "29,900원" in banner.inner_text() and "동의하지 않거나 답하지 않으시면" in banner.inner_text()
    yes, no = banner.locator("#consent-yes"), banner.locator("#consent-no")
    assert yes.get_attribute("class") == no.get_attribute("class")  # two equal choices
    yes.click()
    page.wait_for_load_state()

    assert "동의가 기록되었습니다" in page.content()
    assert page.locator("#consent-trial_conversion").count() == 0
    decision = ConsentDecision.objects.get(request__subscription=sub)
    assert (decision.outcome, decision.channel) == ("granted", "web")
    assert decision.user_agent and decision.ip_address


def test_admin_schedules_a_price_change_and_sees_the_campaign(page, live_server, sandbox, gateway):
    now = clock.now()
    plan = PlanFactory(code="monthly", name_ko="월간", amount=10_000)
    for name in ("a", "b"):
        customer = make_customer(username=f"sub-{name}")
        register_card(customer, gateway, now=now)
        subscription_create(customer=customer, plan=plan, now=now, gateway=gateway)
    get_user_model().objects.create_superuser("boss", "boss@example.com", "boss-password-123")

    log_in(page, live_server, "boss", "boss-password-123", path="/admin/login/")
    page.goto(f"{live_server.url}/admin/subscriptions/planpriceversion/add/")
    page.select_option("select[name=plan]", str(plan.pk))
    page.fill("input[name=amount]", "12000")
    effective = timezone.localtime(clock.now() + dt.timedelta(days=40))
    page.fill("input[name=effective_at_0]", effective.strftime("%Y-%m-%d"))
    page.fill("input[name=effective_at_1]", "00:00:00")
    page.click("input[name=_save]")
    page.wait_for_load_state()

    version = PlanPriceVersion.objects.get()
    assert version.non_consent_action == "cancel_at_period_end"  # the default
    assert ConsentRequest.objects.filter(price_version=version).count() == 2
    assert Plan.objects.get(pk=plan.pk).amount == 10_000
    page.goto(f"{live_server.url}/admin/subscriptions/planpriceversion/{version.pk}/change/")
    cells = page.locator("#campaign td").all_inner_texts()
    assert cells[0] == "2" and cells[2:6] == ["0", "0", "0", "2"]  # requested; granted, refused, expired, pending
