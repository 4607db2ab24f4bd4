"""REST API routes (/api/...): filled in by billing/api and subscriptions/api."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("billing.api.urls")),
    path("", include("subscriptions.api.urls")),
    path("", include("subscriptions.api.finance_urls")),
]
