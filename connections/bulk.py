"""Updating many rows at once, each with its own values, in one statement.

Django's ``bulk_update`` builds a ``CASE WHEN pk = … THEN …`` per row and column, which costs far more to
compile than to run at thousands of rows. This sends ``UPDATE … FROM (VALUES …)`` instead, which
PostgreSQL and SQLite (3.33+) both run; on PostgreSQL each value is cast to its column's type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, models, router


def update_rows(
    model: type[models.Model], objects: Sequence[models.Model], fields: Sequence[str], batch_size: int = 1000
) -> int:
    """Write ``fields`` (attribute names) of ``objects`` to their rows; returns the number of rows updated."""
    if not objects or not fields:
        return 0
    alias = router.db_for_write(model)
    connection = connections[alias]
    meta = model._meta
    columns: list[Any] = [meta.get_field(name) for name in fields]
    table = connection.ops.quote_name(meta.db_table)
    primary: Any = meta.pk
    pk = connection.ops.quote_name(primary.column)
    postgres = connection.vendor == "postgresql"

    def value(position: int, field: Any) -> str:
        ref = f"v.column{position}"
        return f"CAST({ref} AS {field.db_type(connection)})" if postgres else ref

    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = {value(n + 2, f)}" for n, f in enumerate(columns))
    key = value(1, primary) if postgres else "v.column1"
    row = "(" + ", ".join(["%s"] * (len(columns) + 1)) + ")"
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(objects), batch_size):
            batch = objects[start : start + batch_size]
            params: list[Any] = []
            for obj in batch:
                params.append(obj.pk)
                params.extend(f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns)
            # Table and column names are quoted by the backend; every value is a parameter.
            values = ", ".join([row] * len(batch))
            sql = f"UPDATE {table} SET {assignments} FROM (VALUES {values}) AS v WHERE {table}.{pk} = {key}"  # noqa: S608
            cursor.execute(sql, params)
            updated += cursor.rowcount
    return updated


def insert_rows(model: type[models.Model], objects: Sequence[models.Model], batch_size: int = 1000) -> None:
    """Insert ``objects`` and set their primary keys, as ``bulk_create`` does.

    On PostgreSQL the rows go through COPY, with their ids taken from the table's sequence first: at
    thousands of rows, building and quoting one INSERT's parameters in Python costs several times more
    than the database's work. Elsewhere this is ``bulk_create``.
    """
    if not objects:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objects, batch_size=batch_size)
        return
    meta = model._meta
    fields: list[Any] = list(meta.concrete_fields)
    primary: Any = meta.pk
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    # Most values go to COPY as they are (psycopg adapts str, int, bool, dates, datetimes, None); only the
    # fields Django must convert, and those that fill themselves in (auto_now), take the slower way.
    plain = [
        not (
            f.get_internal_type() == "JSONField"
            or getattr(f, "auto_now", False)
            or getattr(f, "auto_now_add", False)
            or f.get_internal_type() in ("DecimalField", "UUIDField")
        )
        for f in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, primary.column, len(objects)],
        )
        for obj, (pk,) in zip(objects, cursor.fetchall(), strict=True):
            obj.pk = pk
        with cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for obj in objects:
                copy.write_row(
                    [
                        getattr(obj, f.attname) if simple else f.get_db_prep_save(f.pre_save(obj, True), connection)
                        for f, simple in zip(fields, plain, strict=True)
                    ]
                )
    for obj in objects:
        obj._state.adding = False
        obj._state.db = alias
