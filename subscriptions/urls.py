from django.urls import path

from subscriptions import views

app_name = "subscriptions"

urlpatterns = [
    path("", views.pricing, name="pricing"),
    path("signup/", views.signup, name="signup"),
    path("account/", views.account, name="account"),
    path("account/card/", views.card, name="card"),
    path("account/card/prepare", views.card_prepare, name="card-prepare"),
    path("account/card/confirm", views.card_confirm, name="card-confirm"),
    path("subscribe/<slug:code>/", views.subscribe, name="subscribe"),
]
