"""A PortOne V2 charge's webhook, end to end over HTTP: the sandbox signs it (Standard Webhooks) and POSTs it to
a live Django server's /portone/webhook, which verifies it with the SDK, stores it and processes it (eager
Celery), settling a renewal whose API answer was lost."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.models import AuditLog, PaymentAttempt, WebhookEvent
from subscriptions.services.renewals import subscription_renew
from tests.conftest import use_portone_v2
from tests.reliability.helpers import attempts_of, renewal_invoice, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def gateway(webhooks_live, sandbox, sandbox_server, settings):
    """The app's gateway on PortOne V2, built after SITE_URL points at the live server (its notice URL)."""
    from billing.services.gateway import get_gateway, reset_gateway

    use_portone_v2(settings, sandbox_server)
    settings.PORTONE_READ_TIMEOUT = 1.0
    reset_gateway()
    yield get_gateway()
    reset_gateway()


@pytest.fixture(autouse=True)
def _deliveries_finish(sandbox):
    yield
    wait_until(lambda: all(w["state"] != "pending" for w in sandbox.webhooks()), timeout=10)


def test_v2_webhook_from_the_sandbox_reaches_the_live_server_and_settles_a_renewal_whose_answer_was_lost(
    sandbox, gateway, subscribed, now, webhooks_live
):
    sub = subscribed(now=now)
    sandbox.add_fault("again", "timeout_after_commit", times=1, hold_ms=2000)

    subscription_renew(subscription_id=sub.pk, now=sub.current_period_end + MINUTE, gateway=gateway)

    [attempt] = attempts_of(renewal_invoice(sub))
    assert wait_until(lambda: PaymentAttempt.objects.get(pk=attempt.pk).status == PaymentAttempt.Status.SUCCEEDED), (
        "the V2 webhook never settled the attempt"
    )
    [delivery] = [w for w in sandbox.webhooks() if w["body"].get("data", {}).get("paymentId") == attempt.merchant_uid]
    assert delivery["url"] == f"{webhooks_live.url}/portone/webhook"
    assert (delivery["state"], delivery["status"]) == ("delivered", 200)
    [event] = WebhookEvent.objects.filter(merchant_uid=attempt.merchant_uid)
    assert (event.state, event.status) == (WebhookEvent.State.PROCESSED, "paid")
    assert list(
        AuditLog.objects.filter(action="payment.succeeded", object_id=str(attempt.pk)).values_list(
            "actor_label", flat=True
        )
    ) == ["webhook"]
    assert renewal_invoice(sub).status == "paid"
