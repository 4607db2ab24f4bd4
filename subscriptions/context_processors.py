from django.conf import settings


def iamport(request):
    return {"IAMPORT_SDK_URL": settings.IAMPORT_SDK_URL, "IAMPORT_MERCHANT_CODE": settings.IAMPORT_MERCHANT_CODE}
