"""Server-side prepared statements (Postgres) for the hottest writes.

Django compiles and Postgres parses and plans every statement anew; for the few writes
that run on every webhook or ticket create, `PREPARE` once per database session and
`EXECUTE` after. Prepared statements last as long as the session (a rollback keeps them),
so each is prepared once per underlying connection, and again after Django reconnects.
They need a direct or session-mode pooled connection (README, Production).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper


def prepared_rows(name: str, prepare: str, execute: str, params: list[Any]) -> list[tuple]:
    """Run the prepared statement `name` (made by `prepare` on first use on this thread's
    connection) with `execute` and `params`; its rows."""
    wrapper = connections[DEFAULT_DB_ALIAS]  # this thread's (`connection` is a shared proxy)
    with wrapper.cursor() as cursor:
        prepared_on = wrapper.__dict__.setdefault("_storedesk_prepared_on", {})
        if prepared_on.get(name) is not wrapper.connection:
            cursor.execute(prepare)
            prepared_on[name] = wrapper.connection
        cursor.execute(execute, params)
        return cursor.fetchall()


# --- Row values as the ORM's insert compiler prepares them, without its per-value detour ---
# `field.get_db_prep_save(field.pre_save(obj, True))` costs ~15 µs a field (to_python,
# get_prep_value, the backend's adapt_*), 60 fields a ticket create. For the field classes
# below, a value already of the column's Python type (or None) comes out unchanged, so it
# is passed as it is; anything else (JSON, decimals, UUIDs, other types or classes, auto_now
# fields, expressions) takes the ORM's own path.

_TEXT = (models.CharField, models.TextField, models.EmailField, models.SlugField, models.URLField)
_INTEGER = (
    models.IntegerField,
    models.BigIntegerField,
    models.SmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.PositiveBigIntegerField,
)
_PLAIN: dict[type[models.Field], tuple[type, ...]] = {
    **dict.fromkeys(_TEXT, (str,)),
    **dict.fromkeys(_INTEGER, (int,)),
    models.BooleanField: (bool,),
    models.DateTimeField: (datetime,),
}


class ExpressionValue(ValueError):
    """A field holds an expression (e.g. F() or a database default): only the ORM writes it."""


@cache
def _plain_types(field: models.Field, vendor: str) -> tuple[type, ...]:
    """The value types `field` stores unchanged on `vendor` (exact types: a bool is not an
    int here). Datetimes only on Postgres: other backends adapt them to text."""
    if isinstance(field, models.ForeignKey):
        target = field.target_field
        return _plain_types(target, vendor) if isinstance(target, models.AutoField) else ()
    if isinstance(field, models.AutoField):
        return (int,)
    if isinstance(field, models.DateTimeField) and (field.auto_now or field.auto_now_add or vendor != "postgresql"):
        return ()  # pre_save sets them / the backend adapts them
    return _PLAIN.get(type(field), ())


def db_values(fields: list[models.Field], obj: models.Model, conn: BaseDatabaseWrapper) -> list[Any]:
    """`obj`'s values of `fields`, as Model.save and bulk_create send them to `conn`.
    Raises ExpressionValue for an expression."""
    values = []
    vendor = conn.vendor
    for field in fields:
        plain = _plain_types(field, vendor)
        if plain:
            value = getattr(obj, field.attname)
            if value is None or (type(value) in plain and (plain[0] is not datetime or value.tzinfo is not None)):
                values.append(value)
                continue
        value = field.pre_save(obj, True)
        if hasattr(value, "resolve_expression"):
            raise ExpressionValue(field.name)
        values.append(field.get_db_prep_save(value, conn))
    return values
