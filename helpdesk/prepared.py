"""Server-side prepared statements (Postgres) for the hottest writes.

Django compiles and Postgres parses and plans every statement anew; for the few writes
that run on every webhook or ticket create, `PREPARE` once per database session and
`EXECUTE` after. Prepared statements last as long as the session (a rollback keeps them),
so each is prepared once per underlying connection, and again after Django reconnects.
They need a direct or session-mode pooled connection (README, Production).
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections


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
