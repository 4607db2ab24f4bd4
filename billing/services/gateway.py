"""`get_gateway()`: the configured PaymentGateway, one per process (it holds the cached Iamport token)."""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from billing.gateway.base import PaymentGateway

_lock = threading.Lock()
_instance: PaymentGateway | None = None


def build_gateway(**overrides) -> PaymentGateway:
    gateway_class = import_string(settings.BILLING_GATEWAY)
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
