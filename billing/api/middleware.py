"""Two things every API request gets.

- `RequestAuditMiddleware`: a request id (the caller's `X-Request-Id` when it is a sane one, else a new one) in the
  `Request-Id` response header and in every log line of the request (`%(request_id)s`, billing/request_id.py), and one
  audit row per request made with a server key, whatever it answered.
- `IdempotencyMiddleware`: `Idempotency-Key` on POST /api/… (billing/services/idempotency.py). It needs the key
  holder before the view runs, so it reads the credential itself, the same way the authentication classes do;
  a request whose credential is not valid goes on to the view, which refuses it.
"""

from __future__ import annotations

import logging
import re
import secrets

from django.http import HttpResponse, JsonResponse
from rest_framework.authentication import get_authorization_header
from rest_framework.authtoken.models import Token

from billing import clock
from billing.errors import ApplicationError, IdempotencyKeyInvalidError
from billing.models import API_KEY_PREFIX
from billing.request_id import request_id_var
from billing.selectors import server_key_from_secret
from billing.services.api_keys import api_key_request_audit
from billing.services.idempotency import (
    Replay,
    idempotency_claim,
    idempotency_complete,
    idempotency_release,
    request_fingerprint,
)

logger = logging.getLogger(__name__)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
_SANE_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# Answers that say nothing about the request itself (who asked, how often, or our own failure): not kept, so the
# same key can be sent again once the cause is fixed.
_NOT_KEPT = {401, 403, 429}


class RequestAuditMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-Id", "")
        request.request_id = given if _SANE_ID.match(given) else f"req_{secrets.token_hex(12)}"
        token = request_id_var.set(request.request_id)
        try:
            response = self.get_response(request)
            response["Request-Id"] = request.request_id
            key = getattr(request, "kbilling_server_key", None)
            if key is not None:
                api_key_request_audit(
                    key=key,
                    at=clock.now(),
                    method=request.method,
                    path=request.get_full_path(),
                    status_code=response.status_code,
                    request_id=request.request_id,
                    ip=request.META.get("REMOTE_ADDR"),
                )
            return response
        finally:
            request_id_var.reset(token)


def _holder(request) -> str | None:
    """Whose idempotency keys these are: the server key's prefix or the user's id; None when not credentialed."""
    parts = get_authorization_header(request).split()
    if len(parts) == 2 and parts[0].lower() in (b"bearer", b"token"):
        try:
            secret = parts[1].decode()
        except UnicodeError:
            return None
        if secret.startswith(API_KEY_PREFIX):
            key = server_key_from_secret(secret)
            if key is None or (key.expiry_date is not None and key.expiry_date <= clock.now()):
                return None
            return f"key:{key.prefix}"
        user_id = Token.objects.filter(key=secret).values_list("user_id", flat=True).first()
        return f"user:{user_id}" if user_id else None
    user = getattr(request, "user", None)
    return f"user:{user.pk}" if user is not None and user.is_authenticated else None


def _error(exc: ApplicationError, request) -> JsonResponse:
    return JsonResponse({"error": exc.as_dict()}, status=exc.status_code, json_dumps_params={"ensure_ascii": False})


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.headers.get("Idempotency-Key")
        if key is None or request.method != "POST" or not request.path.startswith("/api/"):
            return self.get_response(request)
        if not _SANE_KEY.match(key):
            return _error(IdempotencyKeyInvalidError(param="Idempotency-Key"), request)
        owner = _holder(request)
        if owner is None:
            return self.get_response(request)  # the view answers 401
        fingerprint = request_fingerprint(method=request.method, path=request.get_full_path(), body=request.body)
        try:
            claim = idempotency_claim(
                owner=owner, key=key, method=request.method, path=request.path, fingerprint=fingerprint, now=clock.now()
            )
        except ApplicationError as exc:
            return _error(exc, request)
        if isinstance(claim, Replay):
            response = HttpResponse(claim.body, status=claim.status_code, content_type=claim.content_type)
            response["Idempotent-Replayed"] = "true"
            return response
        try:
            response = self.get_response(request)
        except BaseException:
            idempotency_release(record_id=claim)
            raise
        if response.status_code >= 500 or response.status_code in _NOT_KEPT or response.streaming:
            idempotency_release(record_id=claim)
        else:
            idempotency_complete(
                record_id=claim,
                status_code=response.status_code,
                content_type=response.get("Content-Type", "application/json"),
                body=response.content.decode(response.charset or "utf-8"),
            )
        return response
