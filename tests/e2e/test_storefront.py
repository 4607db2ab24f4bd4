"""The storefront in a real Chromium: the merchant footer and policy pages, the checkout agreement (no
agreement, no card and no subscription), a 390 px phone, the refund-visible journey, and screenshots of each
subscriber page in ko and en (test-artifacts/screenshots/storefront/; with UPDATE_SCREENSHOTS=1 the main
ones are refreshed in docs/screenshots/ for the README)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from django.utils import timezone

from billing.models import BillingKey, Invoice, PaymentAttempt
from billing.services.refunds import refund_create
from subscriptions.models import Subscription, SubscriptionAgreement
from subscriptions.services.plans import plans_seed_demo
from subscriptions.services.policies import policies_seed_demo
from tests.e2e.test_card_registration import sign_up
from tests.e2e.test_journeys import fill_card, subscribe_with_card

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots" / "storefront"
DOCS = ROOT / "docs" / "screenshots"


@pytest.fixture(autouse=True)
def shop(db):
    plans_seed_demo()
    policies_seed_demo(now=timezone.now() - dt.timedelta(days=1))


# The ones the README shows; every page in both languages stays under test-artifacts/.
README_SHOTS = {"checkout-ko", "checkout-en", "receipt-en", "pricing-390-ko", "invoices-ko", "policy-ko"}


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if os.environ.get("UPDATE_SCREENSHOTS") and name in README_SHOTS:
        page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)


def test_footer_names_the_merchant_and_links_the_policies_on_the_first_page(page, live_server, settings):
    page.goto(f"{live_server.url}/")

    footer = page.locator("#merchant-footer")
    assert settings.MERCHANT_NAME in footer.inner_text()
    assert "사업자등록번호" in footer.inner_text() and "통신판매업 신고번호" in footer.inner_text()
    assert "wrkr_no=1234567890" in page.get_attribute("#ftc-lookup", "href")
    footer.get_by_role("link", name="환불정책").click()
    page.wait_for_url(f"{live_server.url}/policies/refund/")
    assert "결제일로부터 7일 이내" in page.locator("#policy").inner_text()
    footer.get_by_role("link", name="이용약관").click()
    assert "제1조(목적)" in page.locator("#policy").inner_text()


def test_no_card_is_registered_and_nothing_subscribed_when_the_agreement_is_not_ticked(page, live_server, sandbox):
    sign_up(page, live_server)
    page.goto(f"{live_server.url}/checkout/basic-monthly/")
    assert not page.is_checked("#agree")

    page.click("#register-first")

    assert "동의 항목에 체크" in page.locator("#agreement-error").inner_text()
    assert page.url == f"{live_server.url}/checkout/basic-monthly/"
    page.goto(f"{live_server.url}/account/card/?next=/checkout/basic-monthly/")
    page.wait_for_url(f"{live_server.url}/checkout/basic-monthly/")  # the card page sends them back
    assert not BillingKey.objects.exists() and not Subscription.objects.exists()
    assert [p for p in sandbox.payments() if p.get("customer_uid_usage") != "issue"] == []


def test_ticking_the_agreement_leads_to_the_card_and_the_subscription_records_it(page, live_server, sandbox):
    sign_up(page, live_server)
    page.goto(f"{live_server.url}/checkout/books-monthly/")
    shoot(page, "checkout-ko")
    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    assert "Renews automatically until you cancel" in page.locator("#checkout-renewal").inner_text()
    shoot(page, "checkout-en")
    page.get_by_role("button", name="한국어").click()
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/checkout/basic-monthly/")
    page.check("#agree")
    page.click("#register-first")
    page.click("#register-card")
    fill_card(page, "4242-4242-4242-4242")
    page.wait_for_url(f"{live_server.url}/checkout/basic-monthly/")
    page.click("#subscribe")
    page.wait_for_url(f"{live_server.url}/account/")

    agreement = SubscriptionAgreement.objects.get()
    assert agreement.subscription.status == "active" and agreement.terms.version == "1"


def test_pages_fit_a_390_px_phone_without_sideways_scrolling(browser, live_server, sandbox, settings):
    settings.IAMPORT_SDK_URL = f"{sandbox.base_url}/v1/iamport.js"
    context = browser.new_context(locale="ko-KR", viewport={"width": 390, "height": 844})
    phone = context.new_page()
    try:
        sign_up(phone, live_server, username="phone")
        for path in ["/", "/checkout/basic-monthly/", "/account/", "/policies/terms/"]:
            phone.goto(f"{live_server.url}{path}")
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
        phone.goto(f"{live_server.url}/")
        phone.keyboard.press("Tab")
        outline = phone.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"  # keyboard focus is visible
        shoot(phone, "pricing-390-ko")
    finally:
        context.close()


def test_refunds_are_visible_wherever_the_payment_is_shown_and_pages_are_shot_in_both_languages(
    page, live_server, sandbox
):
    sign_up(page, live_server)
    subscribe_with_card(page, live_server)
    page.wait_for_url(f"{live_server.url}/account/")
    attempt = PaymentAttempt.objects.get(status="succeeded")
    invoice = Invoice.objects.get()
    for amount, reason in ((3_000, "고객 요청 부분 환불"), (6_900, "서비스 해지")):
        refund_create(attempt_id=attempt.pk, amount=amount, reason=reason, now=timezone.now())
        page.goto(f"{live_server.url}/account/invoices/")
        status = page.locator("#invoices .money-status").inner_text()
        assert status == ("부분 환불 (3,000원 환불)" if amount == 3_000 else "전액 환불")
    page.goto(f"{live_server.url}/account/invoices/{invoice.pk}/")
    assert page.locator("#receipt-status").inner_text() == "전액 환불"
    assert page.locator("#refunds tr.refund").count() == 2
    assert page.locator("#refunded").inner_text() == "9,900원" and page.locator("#net").inner_text() == "0원"

    pages = {
        "pricing": "/",
        "account": "/account/",
        "invoices": "/account/invoices/",
        "receipt": f"/account/invoices/{invoice.pk}/",
        "policy": "/policies/terms/",
        "cancel": "/account/cancel/",
    }
    for lang in ("ko", "en"):
        if lang == "en":
            page.get_by_role("button", name="English").click()
            page.wait_for_load_state()
        for name, path in pages.items():
            page.goto(f"{live_server.url}{path}")
            assert page.locator("#merchant-footer").count() == 1
            shoot(page, f"{name}-{lang}")
    page.goto(f"{live_server.url}/account/")
    assert "Refunded in full" in page.locator("#recent-invoices").inner_text()
