from django.urls import path

from billing.api import merchant, views

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
    # The merchant's API (server keys): billing/api/merchant.py; subscriptions add theirs under customers/<ref>/.
    path("customers", merchant.CustomerListCreateApi.as_view(), name="customer-list"),
    path("customers/<str:ref>", merchant.CustomerDetailApi.as_view(), name="customer-detail"),
    path(
        "customers/<str:ref>/billing-keys", merchant.CustomerBillingKeyListApi.as_view(), name="customer-billing-keys"
    ),
    path("customers/<str:ref>/invoices", merchant.CustomerInvoiceListApi.as_view(), name="customer-invoices"),
    path("customers/<str:ref>/payments", merchant.CustomerPaymentListApi.as_view(), name="customer-payments"),
    path("events", merchant.EventListApi.as_view(), name="event-list"),
]
