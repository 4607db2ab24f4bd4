from django.contrib import admin
from django.urls import path

from billing.views import iamport_webhook
from config.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("iamport/webhook", iamport_webhook, name="iamport-webhook"),
    path("admin/", admin.site.urls),
]
