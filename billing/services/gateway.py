"""`get_gateway()`: the configured PaymentGateway, one per process (it holds the cached Iamport token).

`BILLING_GATEWAY` is `iamport_v1` (also any dotted class path, the older form of this setting) or
`portone_v2`. When the other gateway's credentials are configured too, the result is a `RoutingGateway`, so
cards registered on either one keep being charged where they were issued (billing/gateway/routing.py).
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from billing.gateway.base import PaymentGateway
from billing.gateway.portone_v2 import PortOneV2Gateway
from billing.gateway.routing import RoutingGateway

IAMPORT_V1 = "iamport_v1"
PORTONE_V2 = "portone_v2"
GATEWAYS = (IAMPORT_V1, PORTONE_V2)

_lock = threading.Lock()
_instance: PaymentGateway | None = None


def gateway_name() -> str:
    """Which gateway issues new cards: `iamport_v1` or `portone_v2`."""
    return PORTONE_V2 if settings.BILLING_GATEWAY == PORTONE_V2 else IAMPORT_V1


def v2_webhook_url() -> str | None:
    base = getattr(settings, "SITE_URL", "")
    return f"{base.rstrip('/')}/portone/webhook" if base else None


def _build_v1(**overrides) -> PaymentGateway:
    path = settings.BILLING_GATEWAY
    gateway_class = import_string(path if "." in path else "billing.gateway.iamport.IamportGateway")
    options = {
        "base_url": settings.IAMPORT_API_URL,
        "imp_key": settings.IAMPORT_IMP_KEY,
        "imp_secret": settings.IAMPORT_IMP_SECRET,
        "connect_timeout": settings.IAMPORT_CONNECT_TIMEOUT,
        "read_timeout": settings.IAMPORT_READ_TIMEOUT,
        "include_sandbox": settings.IAMPORT_INCLUDE_SANDBOX,
        "channel_key": settings.IAMPORT_CHANNEL_KEY,
        **overrides,
    }
    return gateway_class(**options)


def _build_v2(**overrides) -> PaymentGateway:
    options = {
        "base_url": settings.PORTONE_API_URL,
        "api_secret": settings.PORTONE_API_SECRET,
        "store_id": settings.PORTONE_STORE_ID,
        "channel_key": settings.PORTONE_CHANNEL_KEY,
        "connect_timeout": settings.PORTONE_CONNECT_TIMEOUT,
        "read_timeout": settings.PORTONE_READ_TIMEOUT,
        "notice_url": v2_webhook_url(),
        **overrides,
    }
    return PortOneV2Gateway(**options)


def build_gateway(**overrides) -> PaymentGateway:
    v1_configured = bool(settings.IAMPORT_IMP_KEY and settings.IAMPORT_IMP_SECRET)
    if gateway_name() == PORTONE_V2:
        v2 = _build_v2(**overrides)
        return RoutingGateway(primary=v2, v1=_build_v1(), v2=v2) if v1_configured else v2
    v1 = _build_v1(**overrides)
    if settings.PORTONE_API_SECRET:
        return RoutingGateway(primary=v1, v1=v1, v2=_build_v2())
    return v1


def get_gateway() -> PaymentGateway:
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = build_gateway()
    return _instance


def reset_gateway(**kwargs) -> None:
    """Forget the process-wide gateway (settings changed, or a test pointed the app at another sandbox)."""
    global _instance
    with _lock:
        _instance = None


setting_changed.connect(reset_gateway)
