"""Plain helpers of the subscription service tests (their fixtures are in conftest.py)."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from billing.models import Invoice
from billing.services.webhooks import webhook_process, webhook_receive, webhook_receive_v2
from subscriptions.models import Subscription

KST = ZoneInfo("Asia/Seoul")
S = Subscription.Status
T0 = dt.datetime(2027, 1, 31, 10, 0, tzinfo=KST)


def committed(service, **kwargs):
    with committed.capture(execute=True):
        return service(**kwargs)


def deliver_webhooks(sandbox, gateway, now, seen: set) -> None:
    """Deliver the sandbox's webhooks to our handler, as Iamport (V1) or PortOne (V2) would POST them to the
    notice URL. A V2 body (`{"type", "timestamp", "data"}`) goes where /portone/webhook sends it once its
    signature is verified (the signature itself is tested in tests/billing/test_portone_webhook.py)."""
    for delivery in sandbox.webhooks():
        if delivery["seq"] in seen:
            continue
        seen.add(delivery["seq"])
        body = delivery["body"] if isinstance(delivery["body"], str) else json.dumps(delivery["body"])
        parsed = delivery["body"] if isinstance(delivery["body"], dict) else {}
        if "type" in parsed and "data" in parsed:
            event = webhook_receive_v2(raw_body=body, headers={}, source_ip=None, now=now, event=parsed)
        else:
            event = webhook_receive(raw_body=body, content_type="application/json", headers={}, source_ip=None, now=now)
        webhook_process(event_id=event.pk, now=now, gateway=gateway)


def paid_invoices(sub):
    return list(Invoice.objects.filter(subscription_link__subscription=sub, status="paid").order_by("period_start"))


def grant_consent(sub, now, *, kind="trial_conversion"):
    """The subscriber says yes on the account page (subscriptions/services/consent.py)."""
    from subscriptions.models import ConsentDecision, ConsentRequest
    from subscriptions.services.consent import Answerer, consent_decide

    request = ConsentRequest.objects.filter(subscription=sub, kind=kind).latest("created_at")
    return consent_decide(
        request_id=request.pk,
        outcome=ConsentDecision.Outcome.GRANTED,
        answerer=Answerer(channel=ConsentDecision.Channel.WEB, ip_address="127.0.0.1", user_agent="pytest"),
        now=now,
    )
