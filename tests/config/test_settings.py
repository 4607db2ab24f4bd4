"""Settings rules that protect production: PostgreSQL only, secrets from the environment, deploy checks."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(args, **env):
    # Variables a test run may set for itself (browser tests allow sync DB access inside Playwright's loop).
    full_env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"} | env
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120)


def test_settings_refuse_a_non_postgres_database_url():
    result = _run(["manage.py", "check"], DATABASE_URL="sqlite:///tmp/x.sqlite3")

    assert result.returncode != 0
    assert "PostgreSQL" in result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = _run(
        ["manage.py", "check"],
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="",
    )

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


MERCHANT_ENV = {
    "MERCHANT_NAME": "주식회사 예시",
    "MERCHANT_REPRESENTATIVE": "김대표",
    "MERCHANT_BUSINESS_NUMBER": "123-45-67890",
    "MERCHANT_MAIL_ORDER_NUMBER": "제2026-서울강남-0001호",
    "MERCHANT_ADDRESS": "서울특별시 강남구 테헤란로 1",
    "MERCHANT_PHONE": "02-123-4567",
    "MERCHANT_EMAIL": "help@example.com",
    "MERCHANT_HOSTING_PROVIDER": "예시 클라우드",
}


def test_check_deploy_is_clean_with_production_settings():
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="a-long-random-production-secret-" + "x" * 40,
        DJANGO_ALLOWED_HOSTS="billing.example.com",
        **MERCHANT_ENV,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_the_merchant_identity_is_incomplete_with_production_settings():
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="a-long-random-production-secret-" + "x" * 40,
        DJANGO_ALLOWED_HOSTS="billing.example.com",
        **{**MERCHANT_ENV, "MERCHANT_MAIL_ORDER_NUMBER": ""},
    )

    assert result.returncode != 0
    assert "subscriptions.W001" in result.stdout + result.stderr
    assert "MERCHANT_MAIL_ORDER_NUMBER" in result.stdout + result.stderr
