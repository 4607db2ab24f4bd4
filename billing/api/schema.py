"""OpenAPI pieces shared by every API module: the one error component and a helper that documents which
error codes an operation can answer with."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    # Built in get_fields because a declared attribute named "fields" would hide Serializer.fields.
    def get_fields(self):
        return {
            "code": serializers.CharField(
                help_text="Stable machine-readable code; assert on this, never on the message."
            ),
            "message": serializers.CharField(help_text="Human-readable, translated (Accept-Language: ko or en)."),
            "fields": serializers.DictField(
                required=False,
                help_text="validation_error only: for each invalid field, a list of {message, code}.",
            ),
            "retry_after": serializers.IntegerField(required=False, help_text="throttled only: seconds to wait."),
        }


class ErrorSerializer(serializers.Serializer):
    """Every error response. Other keys inside "error" depend on the code (e.g. refundable, reason)."""

    error = ErrorDetailSerializer()


DESCRIPTIONS = {
    400: "Invalid request",
    401: "Not authenticated",
    402: "Payment declined",
    403: "Permission denied",
    404: "Not found (or not yours)",
    405: "Method not allowed",
    409: "Conflict with the current state",
    429: "Too many requests",
    503: "Iamport unavailable; try again later",
}


def error_responses(codes: dict[int, str]) -> dict[int, OpenApiResponse]:
    """{status: "code_a, code_b"} -> OpenAPI responses using the shared Error component."""
    return {
        status: OpenApiResponse(ErrorSerializer, description=f"{DESCRIPTIONS.get(status, 'Error')}: {names}")
        for status, names in codes.items()
    }


AUTHENTICATED = {401: "not_authenticated"}
# Every paginated list: DRF's PageNumberPagination answers 404 for a page past the end or not a number.
PAGINATED = {404: "not_found (a page past the end, or not a page number)"}
