"""On PortOne V2 (BILLING_GATEWAY=portone_v2) the card page loads the V2 browser SDK stand-in and registers the
card with `PortOne.requestIssueBillingKey`; the subscriber then subscribes and the first period is charged on V2."""

from __future__ import annotations

import pytest

from billing.models import BillingKey, CardRegistration
from subscriptions.models import Subscription
from subscriptions.services.plans import plans_seed_demo
from tests.conftest import use_portone_v2
from tests.e2e.test_card_registration import sign_up

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def on_portone_v2(settings, sandbox_server, sandbox):
    from billing.services.gateway import reset_gateway

    plans_seed_demo()
    use_portone_v2(settings, sandbox_server)
    reset_gateway()
    yield
    reset_gateway()


def fill_v2_card(page, number):
    page.get_by_label("card_number").fill(number)
    page.get_by_label("expiry").fill("2030-12")
    page.get_by_label("birth").fill("900101")
    page.get_by_label("pwd_2digit").fill("12")
    page.get_by_role("button", name="발급하기").click()


def test_subscriber_registers_a_card_through_the_v2_sdk_and_subscribes_on_portone_v2(page, live_server, sandbox):
    sign_up(page, live_server)
    page.goto(f"{live_server.url}/checkout/basic-monthly/")
    page.check("#agree")
    page.click("#register-first")
    # The card page loads the V2 stand-in, not Iamport's SDK: wait for the script, not for time.
    page.wait_for_function("window.PortOne && typeof window.PortOne.requestIssueBillingKey === 'function'")
    assert page.evaluate("typeof window.IMP") == "undefined"
    page.click("#register-card")
    fill_v2_card(page, "4242-4242-4242-4242")
    page.wait_for_url(f"{live_server.url}/checkout/basic-monthly/")
    page.click("#subscribe")

    page.wait_for_url(f"{live_server.url}/account/")
    assert "이용 중" in page.locator("#status").inner_text()
    key = BillingKey.objects.get()
    assert key.gateway == BillingKey.Gateway.PORTONE_V2 and key.customer_uid.startswith("billing-key-")
    assert key.card_number_masked.endswith("4242")
    assert CardRegistration.objects.get().status == "confirmed"
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE
    sdk_issues = [r for r in sandbox.requests_log() if r.get("endpoint") == "sdk"]
    assert [r["customer_uid"] for r in sdk_issues] == [key.customer_uid]  # issued by the V2 stand-in
    charges = [r for r in sandbox.requests_log() if r.get("endpoint") == "again"]
    assert [(r["api"], r["status"], r["customer_uid"]) for r in charges] == [("v2", 200, key.customer_uid)]


def test_a_card_refused_by_the_v2_sdk_shows_the_reason_and_registers_nothing(page, live_server, sandbox):
    sign_up(page, live_server, username="lee")
    page.goto(f"{live_server.url}/account/card/")
    page.click("#register-card")
    fill_v2_card(page, "4000-0000-0000-0002")

    page.wait_for_function("document.getElementById('card-status').textContent.includes('빌키 발급에 실패')")
    assert BillingKey.objects.count() == 0
    assert CardRegistration.objects.get().status != "confirmed"
