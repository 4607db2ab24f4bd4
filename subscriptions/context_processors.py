from django.conf import settings

from billing.services.gateway import PORTONE_V2, gateway_name
from subscriptions.merchant import merchant_profile


def iamport(request):
    """The browser SDK the card page loads: Iamport V1's `IMP`, or PortOne V2's `PortOne` when V2 issues cards."""
    on_v2 = gateway_name() == PORTONE_V2
    return {
        "IAMPORT_SDK_URL": settings.IAMPORT_SDK_URL,
        "IAMPORT_MERCHANT_CODE": settings.IAMPORT_MERCHANT_CODE,
        "CARD_SDK_URL": settings.PORTONE_SDK_URL if on_v2 else settings.IAMPORT_SDK_URL,
    }


def storefront(request):
    """The merchant's identity for the footer of every page (전자상거래법 §10)."""
    return {"MERCHANT": merchant_profile()}
