"""Server API keys: creation (the secret is returned once, only its hash is kept) and the audit of each request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from billing.models import AuditLog, MerchantApiKey


def api_key_create(
    *, name: str, scopes: Sequence[str], expiry_date: dt.datetime | None = None
) -> tuple[MerchantApiKey, str]:
    """A new key and its secret (`sk_….…`), which is never stored and cannot be shown again."""
    unknown = set(scopes) - set(MerchantApiKey.Scope.values)
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    return MerchantApiKey.objects.create_key(name=name, scopes=sorted(set(scopes)), expiry_date=expiry_date)


def api_key_request_audit(
    *, key: MerchantApiKey, at: dt.datetime, method: str, path: str, status_code: int, request_id: str, ip: str | None
) -> None:
    """One audit row per request made with a server key, whatever it answered."""
    AuditLog.objects.create(
        at=at,
        actor_label=f"key:{key.prefix}",
        action="api_key.request",
        object_type="billing.merchantapikey",
        object_id=key.prefix,
        data={"method": method, "path": path[:300], "status": status_code, "request_id": request_id, "ip": ip},
    )
