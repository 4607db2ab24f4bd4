"""Infrastructure errors raised by gateway adapters. Never shown raw to users.

Every error keeps ``method``, ``path`` (ids are fine, query strings are not kept), the HTTP ``status`` (or
``None`` when no response arrived) and a ``body`` trimmed to 500 characters with card-like digits redacted.

How the payments service should read them:

* ``GatewayRejected`` (and ``GatewayNotFound``): Iamport answered and refused; this call charged nothing.
* ``GatewayAuthError``: credentials/token problem; nothing was processed.
* ``GatewayUnavailable``: ``maybe_processed`` tells whether the request could have taken effect
  (``False``: it never reached Iamport; ``True``: a 5xx or dropped connection on a write).
* ``GatewayThrottled`` (a ``GatewayUnavailable`` that was never processed): HTTP 429, too many requests;
  ``retry_after`` says when to try again.
* ``GatewayTimeout``: a write was sent and no answer came back: outcome unknown; reconcile by merchant_uid.
"""

from __future__ import annotations

import re

BODY_LIMIT = 500

# 13-19 consecutive digits, optionally grouped with dashes/spaces: an unmasked PAN. Masked numbers
# ("4242-42**-****-4242") never match because of the asterisks.
_PAN_RE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def trim_body(text: object, *, secrets: tuple[str | None, ...] = ()) -> str | None:
    """Shorten a response body for logs/errors and strip anything that looks like a card number or secret."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        text = str(text)  # e.g. a lazily rendered response body
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _PAN_RE.sub("[redacted]", text)
    if len(text) > BODY_LIMIT:
        text = text[: BODY_LIMIT - 3] + "..."
    return text


class GatewayError(Exception):
    """Base class: the gateway call did not give a usable answer."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        body: object = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.status = status
        self.body = trim_body(body)

    def __str__(self) -> str:
        where = f"{self.method} {self.path}" if self.method else ""
        status = f" -> HTTP {self.status}" if self.status is not None else ""
        suffix = f" [{where}{status}]" if where or status else ""
        return f"{self.message}{suffix}"


class GatewayUnavailable(GatewayError):
    """Could not talk to the gateway (connect error, dropped connection, 5xx).

    ``maybe_processed`` is ``False`` when the request certainly did not reach the gateway (connect error,
    any failure on a read) and ``True`` when a write may have been carried out anyway.
    """

    def __init__(self, message: str, *, maybe_processed: bool, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.maybe_processed = maybe_processed


class GatewayThrottled(GatewayUnavailable):
    """HTTP 429: the gateway (or the PG behind it) refused the request for its rate before processing it.

    Iamport publishes no rate limit or 429 shape for its V1 API; PGs behind it cap billing-key charges (Daou:
    at most 50 per second). We read a 429 the defensive way: refused before any processing (so a write
    charged nothing and may be sent again as a new attempt), with ``retry_after`` seconds from its
    Retry-After header when it has one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, maybe_processed=False, **kwargs)
        self.retry_after = retry_after


class GatewayTimeout(GatewayError):
    """A write was sent but no response arrived within the read timeout: the outcome is unknown."""

    maybe_processed = True


class GatewayAuthError(GatewayError):
    """Bad imp_key/imp_secret, or 401 even after one token refresh and retry."""


class GatewayRejected(GatewayError):
    """Iamport answered with ``code != 0`` (or a 4xx): the request was refused."""

    def __init__(self, code: int | None, message: str | None, **kwargs) -> None:
        self.code = code
        self.gateway_message = message or ""
        super().__init__(f"Iamport refused the request (code={code}): {message or 'no message'}", **kwargs)


class GatewayNotFound(GatewayRejected):
    """The payment, billing key, schedule or prepared amount does not exist (HTTP 404 or 200 + code != 0)."""
