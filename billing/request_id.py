"""The id of the API request being served, for log lines (no Django here: logging loads it before the apps)."""

from __future__ import annotations

import contextvars
import logging

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    """Gives every record `request_id`: the API request's (billing/api/middleware.py), "-" outside one."""

    def filter(self, record) -> bool:
        record.request_id = request_id_var.get()
        return True
