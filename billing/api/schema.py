"""OpenAPI pieces shared by every API module: the one error component and a helper that documents which
error codes an operation can answer with."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers


class FieldErrorSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="Human-readable, translated.")
    code = serializers.CharField(help_text="Stable: required, invalid, null, min_value, unknown_field, ...")


class ErrorDetailSerializer(serializers.Serializer):
    # Built in get_fields because a declared attribute named "fields" would hide Serializer.fields.
    def get_fields(self):
        return {
            "code": serializers.CharField(
                help_text="Stable machine-readable code; assert on this, never on the message."
            ),
            "message": serializers.CharField(help_text="Human-readable, translated (Accept-Language: ko or en)."),
            "fields": serializers.DictField(
                child=serializers.ListField(child=FieldErrorSerializer()),
                required=False,
                help_text="validation_error only: for each invalid field (or non_field_errors), its errors.",
            ),
            "unknown_fields": serializers.ListField(
                child=serializers.CharField(),
                required=False,
                help_text="validation_error only: keys of the body this endpoint does not take (nothing was done).",
            ),
            "retry_after": serializers.IntegerField(required=False, help_text="throttled only: seconds to wait."),
            "field": serializers.CharField(required=False, help_text="The parameter at fault, when one is."),
            "reason": serializers.CharField(required=False, help_text="payment_declined: the card company's reason."),
            "decline_class": serializers.CharField(required=False, help_text="payment_declined: how to recover."),
            "subscription_id": serializers.IntegerField(
                required=False, help_text="payment_declined, payment_pending: the subscription waiting for payment."
            ),
            "refundable": serializers.IntegerField(
                required=False, help_text="refund_exceeds_balance: won still refundable."
            ),
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
    422: "The Idempotency-Key was used for another request",
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


def unknown_field_example(field: str, suggestion: str) -> OpenApiExample:
    """The 400 a misspelled key gets (billing/api/inputs.py), as an example on the operations that take a body."""
    return OpenApiExample(
        "Unknown key",
        value={
            "error": {
                "code": "validation_error",
                "message": "Invalid input.",
                "fields": {
                    field: [{"message": f"Unknown field {field}: did you mean {suggestion}?", "code": "unknown_field"}]
                },
                "unknown_fields": [field],
            }
        },
        response_only=True,
        status_codes=["400"],
    )


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": (
        "Any unique string (a UUID). The first response is kept 24 hours for you and replayed for the same request "
        "(Idempotent-Replayed: true); the same key with another body is 422 idempotency_key_reused, and while the "
        "first is running 409 idempotency_key_in_use. Recommended on every request that moves money."
    ),
}


IDEMPOTENCY_ERRORS = {
    "400": "idempotency_key_invalid",
    "409": "idempotency_key_in_use",
    "422": "idempotency_key_reused",
}


def declare_idempotency_key(result, generator, request, public):
    """Every POST takes Idempotency-Key (billing/api/middleware.py): declare it, and the answers it can cause, on
    each one."""
    for item in result.get("paths", {}).values():
        operation = item.get("post")
        if operation is None:
            continue
        operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
        responses = operation.setdefault("responses", {})
        for status, code in IDEMPOTENCY_ERRORS.items():
            if status in responses:
                responses[status]["description"] += f", {code}"
            else:
                responses[status] = {
                    "description": f"{DESCRIPTIONS.get(int(status), 'Error')}: {code}",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
    return result
