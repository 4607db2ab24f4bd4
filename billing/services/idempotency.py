"""Idempotent POSTs (`Idempotency-Key`, as Stripe's): the first response for a key is kept for 24 hours per key
holder and replayed for the same request; the same key for a different request is refused (422
idempotency_key_reused); a second request while the first runs is refused (409 idempotency_key_in_use).

The claim is one INSERT … ON CONFLICT DO NOTHING on (owner, key), committed before the view runs, so of many
concurrent requests with one key exactly one runs. A response of 5xx (or 401/403, which says nothing about the
request) is not kept: the claim is released and the same key may be retried.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from django.db import connection, transaction

from billing.errors import IdempotencyKeyInUseError, IdempotencyKeyReusedError
from billing.models import IdempotencyRecord

KEEP_FOR = dt.timedelta(hours=24)
State = IdempotencyRecord.State


@dataclass(frozen=True)
class Replay:
    status_code: int
    content_type: str
    body: str


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    """The same request whatever the key order or spacing of its JSON body."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def idempotency_claim(
    *, owner: str, key: str, method: str, path: str, fingerprint: str, now: dt.datetime
) -> int | Replay:
    """The id of the new claim (run the request, then `idempotency_complete` or `idempotency_release`), or the
    stored response to replay. Raises IdempotencyKeyReusedError or IdempotencyKeyInUseError."""
    with transaction.atomic():
        IdempotencyRecord.objects.filter(owner=owner, key=key, expires_at__lte=now).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO billing_idempotencyrecord
                    (owner, key, method, path, request_hash, state, content_type, response_body, created_at, expires_at)
                VALUES (%s, %s, %s, %s, %s, %s, '', '', %s, %s)
                ON CONFLICT (owner, key) DO NOTHING RETURNING id
                """,
                [owner, key, method, path, fingerprint, State.IN_PROGRESS, now, now + KEEP_FOR],
            )
            row = cursor.fetchone()
    if row is not None:
        return row[0]
    record = IdempotencyRecord.objects.filter(owner=owner, key=key).first()
    if record is None:  # released between our INSERT and this read: the caller may simply retry
        raise IdempotencyKeyInUseError()
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReusedError(param="Idempotency-Key")
    if record.state == State.IN_PROGRESS:
        raise IdempotencyKeyInUseError()
    return Replay(status_code=record.status_code, content_type=record.content_type, body=record.response_body)


def idempotency_complete(*, record_id: int, status_code: int, content_type: str, body: str) -> None:
    IdempotencyRecord.objects.filter(pk=record_id).update(
        state=State.COMPLETED, status_code=status_code, content_type=content_type, response_body=body
    )


def idempotency_release(*, record_id: int) -> None:
    IdempotencyRecord.objects.filter(pk=record_id, state=State.IN_PROGRESS).delete()


def idempotency_records_expire(*, now: dt.datetime) -> int:
    """Delete the records past their 24 hours (a sweep; safe to re-run)."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now).delete()
    return deleted
