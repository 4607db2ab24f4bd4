"""GET /healthz: is the database reachable, is the broker reachable. For load balancers and `make run`.

200 {"status": "ok", ...} when both answer; 503 {"status": "degraded", "down": ["database"], ...} naming what
is unreachable otherwise (with Retry-After, as the other 503s while a dependency is away)."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import app as celery_app


def _check_database() -> dict:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not reachable"; the type is what an operator needs
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def _check_broker() -> dict:
    started = time.monotonic()
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            # Some transports (Redis) connect lazily: opening a channel makes them really talk to the broker.
            conn.default_channel  # noqa: B018
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1), "transport": conn.transport_cls}


@never_cache
@require_GET
def healthz(request):
    checks = {"database": _check_database(), "broker": _check_broker()}
    down = [name for name, check in checks.items() if not check["ok"]]
    if not down:
        return JsonResponse({"status": "ok", **checks})
    response = JsonResponse({"status": "degraded", "down": down, **checks}, status=503)
    response["Retry-After"] = str(settings.SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response
