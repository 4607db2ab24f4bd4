"""Set-based writes the ORM has no single statement for: update many rows, each to its own values, at once.

`rows_update` sends one `UPDATE ... FROM (VALUES ...)` for any number of rows, optionally guarded by a
condition (e.g. "still pending"), and returns the primary keys it actually changed, so a caller can hand the
rows that lost a race to the careful one-row path. Django's `bulk_update` would send a CASE expression per
field and cannot say which rows matched a guard.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from django.db import connections, router
from django.db.models import Model


def rows_update(
    model: type[Model],
    objs: Iterable[Model],
    fields: Sequence[str],
    *,
    where: str = "",
    params: Sequence = (),
) -> set:
    """Write `fields` of every object in `objs` to its row in one statement; returns the pks it updated.

    `where` is an extra SQL condition on the target table's columns (qualified by the table name), with
    `params` for its placeholders: rows failing it are left alone and are missing from the result.
    """
    objs = list(objs)
    if not objs:
        return set()
    db = router.db_for_write(model)
    connection = connections[db]
    meta = model._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    pk = meta.pk
    columns = [meta.get_field(name) for name in fields]
    casts = [pk.cast_db_type(connection)] + [field.cast_db_type(connection) for field in columns]
    # Only the first row carries the casts: VALUES takes each column's type from it.
    first = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
    rest = "(" + ", ".join(["%s"] * len(casts)) + ")"
    values_sql = ", ".join([first] + [rest] * (len(objs) - 1))
    values: list = []
    for obj in objs:
        values.append(pk.get_db_prep_value(obj.pk, connection))
        values.extend(field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns)
    names = [quote(pk.column)] + [quote(field.column) for field in columns]
    assignments = ", ".join(f"{quote(field.column)} = v.{quote(field.column)}" for field in columns)
    # Identifiers come from the model's metadata, values travel as parameters; `where` is the caller's constant.
    sql = (
        f"UPDATE {table} SET {assignments} FROM (VALUES {values_sql}) AS v ({', '.join(names)}) "  # noqa: S608
        f"WHERE {table}.{quote(pk.column)} = v.{quote(pk.column)}"
        + (f" AND ({where})" if where else "")
        + f" RETURNING {table}.{quote(pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *params])
        return {row[0] for row in cursor.fetchall()}


def rows_move(
    model: type[Model],
    moves: Sequence[tuple[Model, str]],
    *,
    to: str,
    allowed_from: Mapping[str, frozenset[str]],
    fields: Sequence[str],
) -> list[tuple[Model, str]]:
    """The mechanics every status transition shares: check each (object, the status its row must still have)
    against `allowed_from[to]` (ValueError otherwise), set `status` in memory, and write `status` and `fields`
    with one guarded UPDATE per starting status. Returns the moves that happened, in order; a row no longer in
    its expected status is left alone. The caller audits what moved (billing/services/payments/attempts.py,
    billing/services/invoices.py)."""
    label = model._meta.label_lower
    for obj, previous in moves:
        if previous not in allowed_from[to]:
            raise ValueError(f"{label} {obj.pk}: {previous} -> {to} is not allowed")
        obj.status = to
    table = model._meta.db_table
    moved_ids: set = set()
    for previous in sorted({start for _obj, start in moves}):
        moved_ids |= rows_update(
            model,
            [obj for obj, start in moves if start == previous],
            ("status", *fields),
            where=f"{table}.status = %s",
            params=[previous],
        )
    return [(obj, previous) for obj, previous in moves if obj.pk in moved_ids]
