"""The base of every API request body: a key the endpoint does not take is an error, never silently dropped.

A misspelled parameter that is ignored changes what a request means (`{"period": 3}` would pause until resumed,
not for 3 periods), so every body is checked against the fields its serializer can write, as Stripe answers
`parameter_unknown`. The error is the usual 400 validation_error with each unknown key under "fields" (code
`unknown_field`, with a close match to the intended name when there is one) and their names in "unknown_fields"
(billing/api/exceptions.py); the check runs before any service, so nothing is written.

Every write endpoint validates its body with an InputSerializer, including the endpoints that take no body
(NoBodySerializer); tests/api/test_unknown_fields.py walks the URL conf to keep that true. The schema declares
these bodies with additionalProperties: false, so a generated client knows it too.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError

UNKNOWN_FIELD = "unknown_field"


class InputSerializer(serializers.Serializer):
    """A request body: only the writable fields declared here are accepted."""

    def to_internal_value(self, data):
        unknown = {}
        if isinstance(data, Mapping):
            writable = [name for name, field in self.fields.items() if not field.read_only]
            unknown = {str(key): [_unknown_field_error(str(key), writable)] for key in data if key not in writable}
        try:
            value = super().to_internal_value(data)
        except ValidationError as exc:
            if not unknown or not isinstance(exc.detail, dict):
                raise
            raise ValidationError({**exc.detail, **unknown}) from exc
        if unknown:
            raise ValidationError(unknown)
        return value


class NoBodySerializer(InputSerializer):
    """For write endpoints that take no parameters: any key in the body is unknown."""


def validated_body(serializer_class: type[InputSerializer], request) -> dict:
    """The request's body checked by serializer_class (400 validation_error otherwise)."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _unknown_field_error(key: str, writable: list[str]) -> ErrorDetail:
    close = difflib.get_close_matches(key, writable, n=1, cutoff=0.6)
    if close:
        message = _("Unknown field %(field)s: did you mean %(suggestion)s?") % {"field": key, "suggestion": close[0]}
    elif writable:
        message = _("Unknown field %(field)s: this request takes %(fields)s.") % {
            "field": key,
            "fields": ", ".join(writable),
        }
    else:
        message = _("Unknown field %(field)s: this request takes no parameters.") % {"field": key}
    return ErrorDetail(message, code=UNKNOWN_FIELD)


class InputSerializerSchema(OpenApiSerializerExtension):
    """Declares every InputSerializer body closed (additionalProperties: false), as the server enforces."""

    target_class = InputSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        return schema
