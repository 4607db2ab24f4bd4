"""Production settings keep session and CSRF cookies off plain HTTP and out of scripts, and send HSTS.

Read from a real `config.settings.production` import in a subprocess (the test process runs the test
settings). `manage.py check --deploy` with production settings is already a gate in
tests/config/test_settings.py::test_check_deploy_is_clean_with_production_settings; not repeated here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
NAMES = [
    "DEBUG",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_SAMESITE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "X_FRAME_OPTIONS",
    "IAMPORT_WEBHOOK_IP_ALLOWLIST_ENABLED",
    "IAMPORT_SANDBOX_URL",
    "BILLING_TEST_CLOCK",
]
PRINT = (
    "import json, django; django.setup(); from django.conf import settings; "
    f"print(json.dumps({{name: getattr(settings, name) for name in {NAMES!r}}}))"
)


@pytest.fixture(scope="module")
def production() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "IAMPORT_", "SESSION_", "CSRF_"))}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "a-long-random-production-secret-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "billing.example.com",
        # Parsed, never connected to: production reads its database from the environment.
        "DATABASE_URL": "postgres://kbilling@db.invalid:5432/kbilling",
    }
    result = subprocess.run(
        [sys.executable, "-c", PRINT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_cookies_are_secure_httponly_and_lax_when_the_settings_are_imported(production):
    assert production["DEBUG"] is False
    assert production["SESSION_COOKIE_SECURE"] is True
    assert production["SESSION_COOKIE_HTTPONLY"] is True
    assert production["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert production["CSRF_COOKIE_SECURE"] is True
    assert production["CSRF_COOKIE_SAMESITE"] == "Lax"


def test_production_forces_https_with_hsts_when_the_settings_are_imported(production):
    assert production["SECURE_SSL_REDIRECT"] is True
    assert production["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert production["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert production["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert production["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert production["X_FRAME_OPTIONS"] == "DENY"


def test_production_turns_off_test_hooks_and_on_the_webhook_allow_list_when_the_settings_are_imported(production):
    assert production["BILLING_TEST_CLOCK"] is False
    assert production["IAMPORT_SANDBOX_URL"] is None
    assert production["IAMPORT_WEBHOOK_IP_ALLOWLIST_ENABLED"] is True


@pytest.mark.django_db
def test_login_sets_cookies_with_the_production_flags_when_those_settings_apply(production, settings, client):
    for name in ("SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SECURE"):
        setattr(settings, name, production[name])
    UserFactory(username="kim")

    client.get("/accounts/login/", secure=True)
    response = client.post("/accounts/login/", {"username": "kim", "password": "pw-12345678"}, secure=True)

    assert response.status_code == 302
    session, csrf = response.cookies[settings.SESSION_COOKIE_NAME], response.cookies[settings.CSRF_COOKIE_NAME]
    assert (session["secure"], session["httponly"], session["samesite"]) == (True, True, "Lax")
    assert (csrf["secure"], csrf["samesite"]) == (True, "Lax")
