"""The web side while the database is gone: pages and the API answer 503 with Retry-After (no traceback, no 500),
an Iamport webhook gets a non-2xx so Iamport delivers it again, /healthz names the dependency that is down, and
the first request after the database is back is served. A webhook and a plan change caught by the outage each
end in exactly one outcome once it is over.

A real live server on its own connections; the outage refuses new sessions and drops open ones
(tests/reliability/outage.py).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request

import pytest
from django import db
from django.conf import settings as django_settings
from django.db import connection

from billing.models import Invoice, PaymentAttempt, WebhookEvent
from subscriptions.errors import PlanChangeNotAllowedError
from subscriptions.models import SubscriptionInvoice
from subscriptions.services.plan_changes import subscription_change_plan
from subscriptions.services.renewals import subscription_renew
from subscriptions.services.sweep import billing_run
from tests.factories import PlanFactory
from tests.reliability.helpers import (
    again_requests,
    assert_books_balance,
    attempts_of,
    charged_payments,
    renewal_invoice,
    wait_for_sandbox_payment,
)
from tests.reliability.outage import DatabaseOutage

pytestmark = pytest.mark.django_db(transaction=True)
Status = PaymentAttempt.Status
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def outage():
    db_outage = DatabaseOutage()
    yield db_outage
    db_outage.close()


def fetch(url: str, *, method: str = "GET", body: dict | None = None, headers: dict | None = None):
    """(status, headers, text) of one request; a 4xx/5xx is an answer here, not an exception."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def test_pages_api_and_health_answer_503_with_retry_after_when_the_database_is_down(live_server, outage):
    url = live_server.url
    assert fetch(f"{url}/")[0] == 200  # the pricing page reads the plans from the database
    outage.begin()

    page = fetch(f"{url}/")
    page_en = fetch(f"{url}/", headers={"Accept-Language": "en"})
    api = fetch(f"{url}/api/subscriptions/", headers={"Authorization": "Token not-a-real-token"})
    health = fetch(f"{url}/healthz")
    outage.end()
    after = fetch(f"{url}/")

    retry_after = str(django_settings.SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS)
    for status, headers, _ in (page, page_en, api, health):
        assert (status, headers["Retry-After"]) == (503, retry_after)
    assert "잠시 이용할 수 없습니다" in page[2]
    assert "Briefly unavailable" in page_en[2]
    assert "Traceback" not in page[2] + page_en[2] + api[2]
    assert json.loads(api[2])["error"]["code"] == "service_unavailable"
    health_body = json.loads(health[2])
    assert (health_body["status"], health_body["down"]) == ("degraded", ["database"])
    assert health_body["database"]["ok"] is False
    assert after[0] == 200  # the first request after the outage reconnects (CONN_HEALTH_CHECKS)


def test_a_webhook_refused_during_the_outage_settles_the_attempt_once_when_iamport_delivers_it_again(
    sandbox, gateway, subscribed, now, webhooks_live, settings, outage
):
    settings.SITE_URL = ""  # the test delivers the webhook itself, as Iamport would (and again)
    sub = subscribed(now=now)
    renew_at = sub.current_period_end + MINUTE
    sandbox.add_fault("again", "timeout_after_commit", hold_ms=3_000)
    subscription_renew(subscription_id=sub.pk, now=renew_at, gateway=gateway)
    [attempt] = attempts_of(renewal_invoice(sub))
    assert attempt.status == Status.UNKNOWN
    payment = wait_for_sandbox_payment(sandbox, attempt.merchant_uid)
    body = {"imp_uid": payment["imp_uid"], "merchant_uid": attempt.merchant_uid, "status": "paid"}
    hook = f"{webhooks_live.url}/iamport/webhook"

    outage.begin()
    refused = fetch(hook, method="POST", body=body)
    outage.end()
    delivered = fetch(hook, method="POST", body=body)  # Iamport's retry
    duplicate = fetch(hook, method="POST", body=body)

    assert refused[0] == 503 and json.loads(refused[2])["error"]["code"] == "service_unavailable"
    assert (delivered[0], duplicate[0]) == (200, 200)
    assert WebhookEvent.objects.filter(merchant_uid=attempt.merchant_uid).count() == 2  # nothing stored at 503
    attempt.refresh_from_db()
    assert (attempt.status, attempt.imp_uid) == (Status.SUCCEEDED, payment["imp_uid"])
    assert renewal_invoice(sub).status == Invoice.Status.PAID
    assert len(again_requests(sandbox)) == 2
    assert_books_balance(sandbox)


class DatabaseGoesAwayAfterAnswer:
    """The real gateway; once Iamport has charged, the database goes away (every session dropped, new ones
    refused) before the answer can be written."""

    def __init__(self, gateway, outage: DatabaseOutage):
        self._gateway, self._outage = gateway, outage

    def __getattr__(self, name):
        return getattr(self._gateway, name)

    def charge_billing_key(self, **kwargs):
        payment = self._gateway.charge_billing_key(**kwargs)
        self._outage.begin(keep_ours=False)
        return payment


def test_a_plan_change_caught_by_the_outage_is_charged_once_and_applied_once_when_the_janitor_settles_it(
    sandbox, gateway, subscribed, now, outage
):
    pending_after = dt.timedelta(seconds=django_settings.BILLING_RECONCILE_PENDING_AFTER_SECONDS)
    premium = PlanFactory(code="rel-weekly-premium", amount=19_900, interval="week")
    sub = subscribed(now=now)
    change_at = now + dt.timedelta(days=2)

    with pytest.raises(db.Error):
        subscription_change_plan(
            subscription=sub, new_plan=premium, now=change_at, gateway=DatabaseGoesAwayAfterAnswer(gateway, outage)
        )
    outage.end()
    connection.close()  # the web process's next request gets a new connection

    sub.refresh_from_db()
    [link] = SubscriptionInvoice.objects.filter(subscription=sub, kind="upgrade")
    [attempt] = attempts_of(link.invoice)
    assert attempt.status == Status.PENDING  # charged at Iamport, unknown here
    assert sub.plan_id != premium.pk
    with pytest.raises(PlanChangeNotAllowedError):  # the subscriber presses the button again
        subscription_change_plan(subscription=sub, new_plan=premium, now=change_at + MINUTE, gateway=gateway)
    billing_run(now=change_at + pending_after + MINUTE, gateway=gateway)

    sub.refresh_from_db()
    attempt.refresh_from_db()
    link.invoice.refresh_from_db()
    assert attempt.status == Status.SUCCEEDED
    assert link.invoice.status == Invoice.Status.PAID
    assert sub.plan_id == premium.pk
    assert SubscriptionInvoice.objects.filter(subscription=sub, kind="upgrade").count() == 1
    assert [p["merchant_uid"] for p in charged_payments(sandbox)].count(attempt.merchant_uid) == 1
    assert len(again_requests(sandbox)) == 2  # the first period and the one upgrade charge
    assert_books_balance(sandbox)
