from django.urls import path

from billing.api import views

urlpatterns = [
    path("auth/token", views.AuthTokenCreateApi.as_view(), name="auth-token"),
    path("billing-keys/", views.BillingKeyListApi.as_view(), name="billing-key-list"),
    path("billing-keys/prepare", views.CardRegistrationPrepareApi.as_view(), name="billing-key-prepare"),
    path("billing-keys/confirm", views.CardRegistrationConfirmApi.as_view(), name="billing-key-confirm"),
    path("invoices/", views.InvoiceListApi.as_view(), name="invoice-list"),
    path("invoices/<int:pk>", views.InvoiceDetailApi.as_view(), name="invoice-detail"),
    path("payments/", views.PaymentListApi.as_view(), name="payment-list"),
    path("payments/<int:pk>", views.PaymentDetailApi.as_view(), name="payment-detail"),
    path("payments/<int:pk>/refunds", views.PaymentRefundListCreateApi.as_view(), name="payment-refunds"),
    path("refunds/<int:pk>", views.RefundDetailApi.as_view(), name="refund-detail"),
]
