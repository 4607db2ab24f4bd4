"""Sign up, log in, log out and password reset by email; owner scoping of the subscriber pages."""

import re

import pytest
from django.core import mail
from django.utils import timezone

from billing.errors import CardRegistrationNotFoundError
from billing.services.billing_keys import card_registration_confirm, card_registration_prepare
from tests.factories import UserFactory, make_customer

pytestmark = pytest.mark.django_db


def test_sign_up_logs_the_new_user_in_and_only_follows_local_next_urls(client):
    response = client.post(
        "/signup/?next=https://evil.example/",
        {"username": "kim", "password1": "a-long-password-1", "password2": "a-long-password-1"},
    )
    assert response.status_code == 302 and response["Location"] == "/account/"
    assert client.get("/account/").status_code == 200


def test_log_in_and_log_out(client):
    UserFactory(username="lee")
    response = client.post("/accounts/login/", {"username": "lee", "password": "pw-12345678"})
    assert response.status_code == 302
    assert client.get("/account/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/account/").status_code == 302  # back to the login page


def test_password_reset_by_email_sets_a_new_password(client):
    UserFactory(username="park", email="park@example.com")
    client.post("/accounts/password_reset/", {"email": "park@example.com"})
    [message] = mail.outbox
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+)", message.body).group(1)

    form_url = client.get(link)["Location"]
    response = client.post(form_url, {"new_password1": "brand-new-pass-9", "new_password2": "brand-new-pass-9"})

    assert response.status_code == 302
    assert client.login(username="park", password="brand-new-pass-9")


def test_pages_speak_korean_first_and_english_on_request(client):
    assert "요금제" in client.get("/").content.decode()
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Plans" in english


def test_another_subscribers_receipt_is_a_404(client, sandbox, gateway):
    from billing.models import Invoice
    from subscriptions.services.lifecycle import subscription_create
    from tests.factories import PlanFactory, register_card

    now = timezone.now()
    owner = make_customer()
    register_card(owner, gateway, now=now)
    subscription_create(customer=owner, plan=PlanFactory(code="p"), now=now, gateway=gateway)
    invoice = Invoice.objects.get()

    client.force_login(UserFactory(username="stranger"))
    assert client.get(f"/account/invoices/{invoice.pk}/").status_code == 404
    client.force_login(owner.user)
    assert client.get(f"/account/invoices/{invoice.pk}/").status_code == 200


def test_a_customer_uid_never_issued_to_this_user_is_refused(sandbox, gateway):
    now = timezone.now()
    victim, attacker = make_customer(), make_customer()
    issued = card_registration_prepare(customer=victim, now=now)["params"]["customer_uid"]
    gateway.issue_billing_key(customer_uid=issued, card_number="4242-4242-4242-4242", expiry="2030-12")

    with pytest.raises(CardRegistrationNotFoundError):
        card_registration_confirm(customer=attacker, customer_uid=issued, now=now, gateway=gateway)
    assert not attacker.billing_keys.exists()
