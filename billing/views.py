"""POST /iamport/webhook: store the raw event, answer 200 at once, process after commit."""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import clock
from billing.services.webhooks import webhook_receive

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
