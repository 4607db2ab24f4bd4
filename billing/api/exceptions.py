"""The one DRF exception handler: every API error is rendered as {"error": {"code", "message", ...}}.

ApplicationError subclasses keep their own code, status and extra keys. DRF's exceptions get stable codes:
validation_error (400, with per-field details under "fields", and the names of keys the endpoint does not take
under "unknown_fields": billing/api/inputs.py), not_authenticated (401), permission_denied
(403), not_found (404), method_not_allowed (405), throttled (429, with "retry_after"), and DRF's own
default_code for the rest. Anything else is a bug and is left to Django (500, logged).
"""

from __future__ import annotations

import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from billing.api.inputs import UNKNOWN_FIELD
from billing.errors import ApplicationError

# Session authentication comes first in DEFAULT_AUTHENTICATION_CLASSES and has no challenge, so DRF would
# turn "not authenticated" into a 403. An API client needs the 401 and the scheme it can use.
WWW_AUTHENTICATE = 'Bearer realm="api"'


def _is_unknown_field(errors) -> bool:
    return isinstance(errors, list) and any(isinstance(e, dict) and e.get("code") == UNKNOWN_FIELD for e in errors)


def api_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response({"error": exc.as_dict()}, status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)  # sets Retry-After and rolls back ATOMIC_REQUESTS
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        error = {"code": "validation_error", "message": str(exceptions.ValidationError.default_detail)}
        details = exc.get_full_details()
        error["fields"] = details if isinstance(details, dict) else {api_settings.NON_FIELD_ERRORS_KEY: details}
        unknown = [name for name, errors in error["fields"].items() if _is_unknown_field(errors)]
        if unknown:
            error["unknown_fields"] = unknown
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        error = {"code": "not_authenticated", "message": str(exc.detail)}
        response.status_code = 401
        response.headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    elif isinstance(exc, exceptions.Throttled):
        error = {"code": "throttled", "message": str(exc.detail), "retry_after": math.ceil(exc.wait or 0)}
    else:
        error = {"code": exc.default_code, "message": str(exc.detail)}
    response.data = {"error": error}
    return response
