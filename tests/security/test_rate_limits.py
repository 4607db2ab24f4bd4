"""Rate limits of the web views: failed log-ins per username + client IP, card registrations per user.

The API's DRF throttles (auth/token, billing-keys/prepare|confirm) are tested in tests/api; these are the
session pages DRF never sees. Counters live in the cache (reset per test by conftest).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import resolve
from freezegun import freeze_time

from billing.models import CardRegistration
from subscriptions.views import LoginView
from tests.factories import UserFactory, make_customer
from tests.security.conftest import resolver_routes

pytestmark = pytest.mark.django_db

PASSWORD = "pw-12345678"  # UserFactory's


def log_in(client, username, password, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def fail_ten_times(client, username, **extra):
    for _ in range(10):
        response = log_in(client, username, "wrong-password", **extra)
        assert response.status_code == 200  # the form again, with Django's own error


def test_login_is_refused_with_429_and_a_korean_message_when_ten_attempts_failed():
    UserFactory(username="kim")
    client = Client()
    fail_ten_times(client, "kim")

    response = log_in(client, "kim", PASSWORD)  # even the right password: guessing must gain nothing

    assert response.status_code == 429
    assert "로그인 실패가 너무 많습니다. 15분 후에 다시 시도하세요." in response.content.decode()
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    assert client.get("/account/").status_code == 302  # still signed out


def test_login_refusal_speaks_english_when_the_browser_asks_for_it():
    UserFactory(username="kim")
    client = Client()
    fail_ten_times(client, "kim", HTTP_ACCEPT_LANGUAGE="en")

    response = log_in(client, "kim", PASSWORD, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 429
    assert "Too many failed log-in attempts. Try again in 15 minutes." in response.content.decode()


def test_login_limit_counts_each_username_and_address_apart_when_one_pair_is_refused():
    UserFactory(username="kim")
    UserFactory(username="lee")
    fail_ten_times(Client(), "kim", REMOTE_ADDR="203.0.113.7")

    same_name_elsewhere = log_in(Client(), "kim", PASSWORD, REMOTE_ADDR="198.51.100.1")
    other_name_same_address = log_in(Client(), "lee", PASSWORD, REMOTE_ADDR="203.0.113.7")
    same_pair_other_case = log_in(Client(), "KIM", PASSWORD, REMOTE_ADDR="203.0.113.7")

    assert same_name_elsewhere.status_code == 302
    assert other_name_same_address.status_code == 302
    assert same_pair_other_case.status_code == 429  # case does not make a new username to guess with


def test_login_is_allowed_again_when_the_fifteen_minute_window_has_passed():
    UserFactory(username="kim")
    start = dt.datetime.now(dt.UTC)
    with freeze_time(start):
        fail_ten_times(Client(), "kim")
        assert log_in(Client(), "kim", PASSWORD).status_code == 429
    with freeze_time(start + dt.timedelta(minutes=14)):
        assert log_in(Client(), "kim", PASSWORD).status_code == 429
    with freeze_time(start + dt.timedelta(minutes=15, seconds=1)):
        assert log_in(Client(), "kim", PASSWORD).status_code == 302


def test_successful_login_clears_the_failure_count_when_the_user_gets_it_right():
    UserFactory(username="kim")
    client = Client()
    for _ in range(9):
        log_in(client, "kim", "wrong-password")
    assert log_in(client, "kim", PASSWORD).status_code == 302
    client.post("/accounts/logout/")

    for _ in range(9):
        log_in(client, "kim", "wrong-password")

    assert log_in(client, "kim", PASSWORD).status_code == 302


def card_client():
    customer = make_customer()
    client = Client()
    client.force_login(customer.user)
    return client, customer


def test_card_prepare_is_refused_with_429_when_a_user_asks_more_than_ten_times_a_minute():
    client, customer = card_client()
    answers = [client.post("/account/card/prepare").status_code for _ in range(10)]

    response = client.post("/account/card/prepare")

    assert answers == [200] * 10
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "throttled"
    assert error["message"].startswith("카드 등록 시도가 너무 많습니다.")
    assert 0 < error["retry_after"] <= 60 and response["Retry-After"] == str(error["retry_after"])
    assert CardRegistration.objects.filter(customer=customer).count() == 10


def test_card_prepare_limit_counts_each_user_apart_and_ends_with_the_minute_when_one_user_is_refused():
    start = dt.datetime.now(dt.UTC)
    client, _ = card_client()
    with freeze_time(start):
        for _ in range(11):
            client.post("/account/card/prepare")
        other, _ = card_client()
        assert other.post("/account/card/prepare").status_code == 200
    with freeze_time(start + dt.timedelta(seconds=61)):
        assert client.post("/account/card/prepare").status_code == 200


def test_card_confirm_is_refused_with_429_when_a_user_asks_more_than_ten_times_a_minute():
    client, _ = card_client()
    answers = [
        client.post("/account/card/confirm", {"customer_uid": "kb-guess"}, content_type="application/json").status_code
        for _ in range(11)
    ]

    assert answers == [404] * 10 + [429]


def test_login_page_is_served_by_the_rate_limited_view_when_resolved():
    assert resolve("/accounts/login/").func.view_class is LoginView
    assert resolver_routes()["accounts/login/"].callback.view_class is LoginView
