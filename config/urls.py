from django.contrib import admin
from django.urls import include, path

from billing.views import iamport_webhook
from config.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("iamport/webhook", iamport_webhook, name="iamport-webhook"),
    path("admin/", admin.site.urls),
    path("api/", include("config.api_urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("subscriptions.urls")),
]
