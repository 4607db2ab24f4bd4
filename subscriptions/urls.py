from django.urls import path

from subscriptions import views

app_name = "subscriptions"

urlpatterns = [
    path("", views.pricing, name="pricing"),
    path("signup/", views.signup, name="signup"),
    path("checkout/<slug:code>/", views.checkout, name="checkout"),
    path("subscribe/<slug:code>/", views.subscribe, name="subscribe"),
    path("account/", views.account, name="account"),
    path("account/card/", views.card, name="card"),
    path("account/card/prepare", views.card_prepare, name="card-prepare"),
    path("account/card/confirm", views.card_confirm, name="card-confirm"),
    path("account/change/", views.change_plan, name="change-plan"),
    path("account/change/<slug:code>/", views.change_plan_preview, name="change-plan-preview"),
    path("account/cancel/", views.cancel, name="cancel"),
    path("account/resume/", views.resume, name="resume"),
    path("account/pause/", views.pause, name="pause"),
    path("account/consent/<int:request_id>/", views.consent_answer, name="consent-answer"),
    path("consent/", views.consent_link, name="consent-link"),
    path("account/invoices/", views.invoices, name="invoices"),
    path("account/invoices/<int:invoice_id>/", views.receipt, name="receipt"),
    path("policies/<slug:kind>/", views.policy, name="policy"),
    path("policies/<slug:kind>/<str:version>/", views.policy, name="policy-version"),
]
