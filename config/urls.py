from django.contrib import admin
from django.urls import include, path

from billing.views import iamport_webhook, portone_webhook
from config.health import healthz
from subscriptions.views import LoginView

# A database or broker error outside a view (a session saved after the response) is a 503 too, not a 500.
handler500 = "config.unavailable.server_error"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("iamport/webhook", iamport_webhook, name="iamport-webhook"),
    path("portone/webhook", portone_webhook, name="portone-webhook"),
    path("admin/", admin.site.urls),
    path("api/", include("config.api_urls")),
    # Django's log-in view with a failed-attempt limit; the rest of django.contrib.auth.urls as they are.
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("subscriptions.urls")),
]
