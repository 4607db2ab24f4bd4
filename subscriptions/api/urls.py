from django.urls import path

from subscriptions.api import views

urlpatterns = [
    path("plans/", views.PlanListApi.as_view(), name="plan-list"),
    path("plans/<slug:code>", views.PlanDetailApi.as_view(), name="plan-detail"),
    path("billing-keys/<int:pk>", views.BillingKeyDetailApi.as_view(), name="billing-key-detail"),
    path("subscriptions/", views.SubscriptionListCreateApi.as_view(), name="subscription-list"),
    path("subscriptions/<int:pk>", views.SubscriptionDetailApi.as_view(), name="subscription-detail"),
    path(
        "subscriptions/<int:pk>/change-plan/preview",
        views.SubscriptionChangePreviewApi.as_view(),
        name="subscription-change-plan-preview",
    ),
    path(
        "subscriptions/<int:pk>/change-plan", views.SubscriptionChangePlanApi.as_view(), name="subscription-change-plan"
    ),
    path("subscriptions/<int:pk>/cancel", views.SubscriptionCancelApi.as_view(), name="subscription-cancel"),
    path("subscriptions/<int:pk>/consents", views.SubscriptionConsentListApi.as_view(), name="subscription-consents"),
    path(
        "subscriptions/<int:pk>/consents/<int:consent_id>",
        views.SubscriptionConsentDecideApi.as_view(),
        name="subscription-consent-decide",
    ),
    path("subscriptions/<int:pk>/resume", views.SubscriptionResumeApi.as_view(), name="subscription-resume"),
    path("subscriptions/<int:pk>/pause", views.SubscriptionPauseApi.as_view(), name="subscription-pause"),
]
