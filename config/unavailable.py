"""503 while the database (or the broker) is unreachable: no traceback, no 500.

`ServiceUnavailableMiddleware` turns a view's "the database or the broker is not there" error (a failover, a
restart, a connection dropped mid-request) into 503 with Retry-After: the API's error shape under /api/ and for
the Iamport webhook (a non-2xx makes Iamport deliver the webhook again, so nothing is lost), a short page in the
visitor's language elsewhere. `server_error` (handler500) does the same for the rare such error raised outside a
view (a session saved after the response), and is Django's plain 500 page otherwise. Nothing here touches the
database: the page is rendered without context processors.
"""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.http import HttpResponse, HttpResponseServerError, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.defaults import server_error as django_server_error

from config.celery import infrastructure_errors

logger = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/iamport/")


def is_infrastructure_error(exc: BaseException | None) -> bool:
    return exc is not None and isinstance(exc, infrastructure_errors())


def unavailable_response(request, exc: BaseException) -> HttpResponse:
    which = "broker" if type(exc).__module__.startswith("kombu") else "database"
    logger.warning("503 for %s %s: %s unreachable (%s)", request.method, request.path, which, type(exc).__name__)
    retry_after = settings.SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS
    if request.path.startswith(JSON_PREFIXES):
        message = _("The service is briefly unavailable. Please try again shortly.")
        response = JsonResponse({"error": {"code": "service_unavailable", "message": message}}, status=503)
    else:
        response = HttpResponse(render_to_string("unavailable.html", {"retry_after": retry_after}), status=503)
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response


class ServiceUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if is_infrastructure_error(exception):
            return unavailable_response(request, exception)
        return None


def server_error(request, template_name="500.html"):
    exc = sys.exc_info()[1]
    if is_infrastructure_error(exc):
        return unavailable_response(request, exc)
    try:
        return django_server_error(request, template_name=template_name)
    except Exception:  # pragma: no cover - Django's own fallback when the template is missing
        return HttpResponseServerError()
