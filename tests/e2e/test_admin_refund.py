"""An admin logs in, refunds part of a payment in Django admin, and the subscriber sees it on the receipt.
Screenshots of the main pages are kept in test-artifacts/screenshots/, and written to docs/screenshots/ (the
README's pictures) with UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.models import Invoice, PaymentAttempt
from subscriptions.models import Plan
from subscriptions.services.lifecycle import subscription_create
from subscriptions.services.plans import plans_seed_demo
from tests.factories import make_customer, register_card

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ("docs" if os.environ.get("UPDATE_SCREENSHOTS") else "test-artifacts") / "screenshots"


def log_in(page, live_server, username, password, path="/accounts/login/"):
    page.goto(f"{live_server.url}{path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main form button[type=submit], #login-form input[type=submit]")


def test_admin_refunds_part_of_a_payment_and_the_subscriber_sees_it_on_the_receipt(
    browser, page, live_server, sandbox, gateway
):
    plans_seed_demo()
    now = timezone.now()
    customer = make_customer(username="park")
    register_card(customer, gateway, now=now)
    subscription_create(customer=customer, plan=Plan.objects.get(code="basic-monthly"), now=now, gateway=gateway)
    attempt = PaymentAttempt.objects.get(status="succeeded")
    get_user_model().objects.create_superuser("boss", "boss@example.com", "boss-password-123")

    log_in(page, live_server, "boss", "boss-password-123", path="/admin/login/")
    page.goto(f"{live_server.url}/admin/billing/paymentattempt/{attempt.pk}/refund/")
    assert "9,900" in page.locator("#refundable-amount").inner_text()
    page.fill("input[name=amount]", "3000")
    page.fill("textarea[name=reason]", "부분 환불: 서비스 장애 보상")
    page.click("#content-main form [type=submit]")
    page.wait_for_load_state()
    assert "3,000" in page.locator(".messagelist").inner_text()
    assert gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount == 3_000

    subscriber = browser.new_context(locale="ko-KR").new_page()
    customer.user.set_password("park-password-123")
    customer.user.save()
    log_in(subscriber, live_server, "park", "park-password-123")
    invoice = Invoice.objects.get(status="paid")
    subscriber.goto(f"{live_server.url}/account/invoices/{invoice.pk}/")
    assert "3,000" in subscriber.locator("#refunded").inner_text()
    assert "서비스 장애 보상" in subscriber.locator("#refunds").inner_text()  # the refund line, with its reason
    assert subscriber.locator("#receipt-status").inner_text() == "부분 환불 (3,000원 환불)"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    subscriber.screenshot(path=str(SCREENSHOTS / "receipt.png"), full_page=True)
    subscriber.goto(f"{live_server.url}/account/")
    subscriber.screenshot(path=str(SCREENSHOTS / "account.png"), full_page=True)
    subscriber.goto(f"{live_server.url}/")
    subscriber.screenshot(path=str(SCREENSHOTS / "pricing.png"), full_page=True)
    page.goto(f"{live_server.url}/admin/dashboard/")
    page.screenshot(path=str(SCREENSHOTS / "admin-dashboard.png"), full_page=True)
    subscriber.context.close()
