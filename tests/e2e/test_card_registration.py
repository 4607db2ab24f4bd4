"""A subscriber signs up, registers card 4242 in the sandbox SDK's form, and sees it confirmed by the server."""

import pytest

from billing.models import BillingKey, CardRegistration

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sign_up(page, live_server, username="kim"):
    page.goto(f"{live_server.url}/signup/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password1]", "a-long-test-password-1")
    page.fill("input[name=password2]", "a-long-test-password-1")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/account/")


def test_subscriber_registers_a_card_through_the_sandbox_sdk(page, live_server, sandbox):
    sign_up(page, live_server)
    page.goto(f"{live_server.url}/account/card/")
    page.click("#register-card")
    page.get_by_label("card_number").fill("4242-4242-4242-4242")
    page.get_by_label("expiry").fill("2030-12")
    page.get_by_label("birth").fill("900101")
    page.get_by_label("pwd_2digit").fill("12")
    page.get_by_role("button", name="결제하기").click()

    page.wait_for_url(f"{live_server.url}/account/")
    assert "4242" in page.locator("#card").inner_text()
    key = BillingKey.objects.get()
    assert key.is_default and key.card_number_masked.endswith("4242")
    assert CardRegistration.objects.get().status == "confirmed"
    assert [c["customer_uid"] for c in sandbox.customers()] == [key.customer_uid]


def test_a_refused_card_shows_the_reason_and_registers_nothing(page, live_server, sandbox):
    sign_up(page, live_server, username="lee")
    page.goto(f"{live_server.url}/account/card/")
    page.click("#register-card")
    page.get_by_label("card_number").fill("4000-0000-0000-0002")
    page.get_by_label("expiry").fill("2030-12")
    page.get_by_label("birth").fill("900101")
    page.get_by_label("pwd_2digit").fill("12")
    page.get_by_role("button", name="결제하기").click()

    page.wait_for_function("document.getElementById('card-status').textContent.includes('빌키 발급에 실패')")
    assert BillingKey.objects.count() == 0
