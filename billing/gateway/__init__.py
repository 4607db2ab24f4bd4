"""Payment gateway port (``base``), its errors (``errors``) and the Iamport V1 adapter (``iamport``).

This package must not import Django or any other part of the project; configuration arrives through
constructor arguments.
"""

from .base import (
    GatewayBillingKey,
    GatewayCancel,
    GatewayPayment,
    GatewayPrepared,
    GatewaySchedule,
    Page,
    PaymentGateway,
    ScheduleItem,
)
from .errors import (
    GatewayAuthError,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    GatewayThrottled,
    GatewayTimeout,
    GatewayUnavailable,
)
from .iamport import IamportGateway

__all__ = [
    "GatewayAuthError",
    "GatewayBillingKey",
    "GatewayCancel",
    "GatewayError",
    "GatewayNotFound",
    "GatewayPayment",
    "GatewayPrepared",
    "GatewayRejected",
    "GatewaySchedule",
    "GatewayThrottled",
    "GatewayTimeout",
    "GatewayUnavailable",
    "IamportGateway",
    "Page",
    "PaymentGateway",
    "ScheduleItem",
]
