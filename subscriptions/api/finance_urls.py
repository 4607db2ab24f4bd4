from django.urls import path

from subscriptions.api.finance import FinanceReportApi

urlpatterns = [path("finance/reports", FinanceReportApi.as_view(), name="finance-report")]
