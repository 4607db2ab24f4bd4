"""POST /iamport/webhook: store the raw event, answer 200 at once, process after commit."""

from __future__ import annotations

import ipaddress
import json
import logging

from django.conf import settings
from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import clock
from billing.services.webhooks import webhook_receive, webhook_receive_v2

logger = logging.getLogger(__name__)


def _source_ip(request) -> str | None:
    # Behind a proxy set DJANGO trusted proxy handling upstream; we only read REMOTE_ADDR here so a client
    # cannot spoof its way past the allow-list with an X-Forwarded-For header.
    return request.META.get("REMOTE_ADDR")


def _allowed(ip: str | None) -> bool:
    if not settings.IAMPORT_WEBHOOK_IP_ALLOWLIST_ENABLED:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in settings.IAMPORT_WEBHOOK_IPS)


@csrf_exempt
@require_POST
def iamport_webhook(request):
    ip = _source_ip(request)
    if not _allowed(ip):
        logger.warning("webhook from %s refused by the IP allow-list", ip)
        return JsonResponse({"error": {"code": "forbidden_source", "message": "source IP not allowed"}}, status=403)
    event = webhook_receive(
        raw_body=request.body.decode("utf-8", errors="replace"),
        content_type=request.content_type or "",
        headers=dict(request.headers),
        source_ip=ip,
        now=clock.now(),
    )
    if event.state == event.State.RECEIVED:
        from billing.tasks import webhook_process_task

        transaction.on_commit(lambda: webhook_process_task.delay(event.pk))
    return JsonResponse({"received": True, "id": event.pk})


@csrf_exempt
@require_POST
def portone_webhook(request):
    """POST /portone/webhook: a PortOne V2 webhook, verified (Standard Webhooks signature and timestamp) with
    the official SDK's `verify` before anything is stored; refused with 400 and nothing changed otherwise."""
    from portone_server_sdk import webhook as portone_webhook_sdk

    raw = request.body.decode("utf-8", errors="replace")
    headers = {key.lower(): value for key, value in request.headers.items()}
    try:
        portone_webhook_sdk.verify(settings.PORTONE_WEBHOOK_SECRET or "", raw, headers)
        event = json.loads(raw)
    except (portone_webhook_sdk.WebhookVerificationError, ValueError, TypeError) as exc:
        logger.warning("V2 webhook refused: %s", getattr(exc, "reason", type(exc).__name__))
        return JsonResponse({"error": {"code": "invalid_signature", "message": "signature not verified"}}, status=400)
    except Exception as exc:  # the SDK's InvalidInputError (no secret configured) and the like
        logger.error("V2 webhook could not be verified: %s", exc)
        return JsonResponse({"error": {"code": "invalid_signature", "message": "signature not verified"}}, status=400)
    stored = webhook_receive_v2(
        raw_body=raw,
        headers=dict(request.headers),
        source_ip=_source_ip(request),
        now=clock.now(),
        event=event if isinstance(event, dict) else {},
    )
    if stored.state == stored.State.RECEIVED:
        from billing.tasks import webhook_process_task

        transaction.on_commit(lambda: webhook_process_task.delay(stored.pk))
    return JsonResponse({"received": True, "id": stored.pk})
