"""The finance report in the API, for the merchant's finance tools (staff users only):
GET /api/finance/reports?period=2027-01 (or 2027-Q1). The same numbers as the admin page and its exports."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import clock
from billing.api.schema import AUTHENTICATED, error_responses
from billing.services.reports import period_of, period_parse
from subscriptions.services.reports import finance_report


class FinanceReportApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        parameters=[OpenApiParameter("period", str, description="2027-01 (month) or 2027-Q1 (quarter), KST")],
        responses={
            200: OpenApiTypes.OBJECT,
            **error_responses({**AUTHENTICATED, 400: "invalid_period", 403: "permission_denied (staff only)"}),
        },
    )
    def get(self, request):
        raw = request.query_params.get("period")
        period = period_parse(raw) if raw is not None else period_of(clock.now())
        return Response(finance_report(period=period))
