from django.conf import settings

from subscriptions.merchant import merchant_profile


def iamport(request):
    return {"IAMPORT_SDK_URL": settings.IAMPORT_SDK_URL, "IAMPORT_MERCHANT_CODE": settings.IAMPORT_MERCHANT_CODE}


def storefront(request):
    """The merchant's identity for the footer of every page (전자상거래법 §10)."""
    return {"MERCHANT": merchant_profile()}
