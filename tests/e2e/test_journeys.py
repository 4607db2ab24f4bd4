"""The subscriber journeys of the web UI, in a real Chromium against a live server and the sandbox."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from billing.models import Invoice
from subscriptions.models import Subscription
from subscriptions.services.plans import plans_seed_demo
from tests.e2e.test_card_registration import sign_up

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def charges(sandbox):
    """The sandbox's ledger without the 0-won billing-key issuance records the SDK window creates."""
    return [p for p in sandbox.payments() if p.get("customer_uid_usage") != "issue"]


def fill_card(page, number):
    page.get_by_label("card_number").fill(number)
    page.get_by_label("expiry").fill("2030-12")
    page.get_by_label("birth").fill("900101")
    page.get_by_label("pwd_2digit").fill("12")
    page.get_by_role("button", name="결제하기").click()


def subscribe_with_card(page, live_server, plan_code="basic-monthly", card="4242-4242-4242-4242"):
    page.goto(f"{live_server.url}/checkout/{plan_code}/")
    page.check("#agree")
    page.click("#register-first")
    page.click("#register-card")
    fill_card(page, card)
    page.wait_for_url(f"{live_server.url}/checkout/{plan_code}/")
    assert page.is_checked("#agree")  # the agreement given one step earlier is still shown as given
    page.click("#subscribe")
    page.wait_for_load_state()


@pytest.fixture(autouse=True)
def plans(db):
    plans_seed_demo()


def test_sign_up_register_card_subscribe_and_see_the_paid_invoice_and_receipt(page, live_server, sandbox):
    sign_up(page, live_server)
    subscribe_with_card(page, live_server)

    page.wait_for_url(f"{live_server.url}/account/")
    assert "이용 중" in page.locator("#status").inner_text()
    assert "9,900" in page.locator("#next-charge").inner_text()
    page.goto(f"{live_server.url}/account/invoices/")
    assert "결제 완료" in page.locator("table").inner_text()
    page.locator("table a").first.click()
    assert "9,000" in page.locator("#totals").inner_text()  # supply amount
    assert "900" in page.locator("#totals").inner_text()  # VAT
    assert page.locator("#payments a", has_text="카드 영수증").count() == 1


def test_advancing_the_clock_shows_the_renewal_paid(page, live_server, sandbox):
    sign_up(page, live_server)
    subscribe_with_card(page, live_server)

    call_command("clock", "advance", "32d")

    page.goto(f"{live_server.url}/account/invoices/")
    assert page.locator("td.status-paid").count() == 2


def test_a_card_that_goes_bad_shows_the_decline_and_a_new_card_pays_the_open_invoice(page, live_server, sandbox):
    sign_up(page, live_server)
    subscribe_with_card(page, live_server)
    sub = Subscription.objects.get()
    sandbox.set_card_behaviour(sub.billing_key.customer_uid, "insufficient_funds")

    call_command("clock", "advance", "32d")
    page.goto(f"{live_server.url}/account/")
    banner = page.locator("#dunning-banner")
    assert "잔액부족" in banner.inner_text()
    assert "결제 실패" in page.locator("#status").inner_text()

    banner.get_by_role("link", name="카드 변경").click()
    page.click("#register-card")
    fill_card(page, "4242-4242-4242-4242")
    page.wait_for_url(f"{live_server.url}/account/")

    assert "이용 중" in page.locator("#status").inner_text()
    assert Invoice.objects.filter(status="open").count() == 0
    assert Subscription.objects.count() == 1


def test_upgrade_is_charged_the_prorated_amount_the_preview_showed(page, live_server, sandbox):
    sign_up(page, live_server)
    subscribe_with_card(page, live_server)
    call_command("clock", "advance", "10d")

    page.goto(f"{live_server.url}/account/change/")
    page.get_by_role("link", name="See what it costs").or_(page.get_by_role("link", name="비용 확인")).first.click()
    shown = int(re.sub(r"\D", "", page.locator("#amount-due").inner_text()))
    assert page.locator("#explanation li").count() >= 2
    page.click("#confirm-change")
    page.wait_for_url(f"{live_server.url}/account/")

    upgrade = Invoice.objects.get(kind="plan_change")
    assert upgrade.status == "paid" and upgrade.total == shown > 0
    assert sorted(p["amount"] for p in charges(sandbox)) == sorted([9_900, shown])


def test_cancel_at_period_end_ends_the_subscription_when_the_clock_passes_it(page, live_server, sandbox):
    sign_up(page, live_server)
    subscribe_with_card(page, live_server)

    page.goto(f"{live_server.url}/account/cancel/")
    page.check("input[value=period_end]")
    page.click("#confirm-cancel")
    page.wait_for_url(f"{live_server.url}/account/")
    assert page.locator("#ends").count() == 1
    assert "이용 중" in page.locator("#status").inner_text()

    call_command("clock", "advance", "32d")
    page.reload()
    assert "해지됨" in page.locator("#status").inner_text()
    assert len(charges(sandbox)) == 1
