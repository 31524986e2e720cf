"""The Postgres backend (ENGINE "helpdesk.db"): Django's, with a cheaper health check.

With CONN_HEALTH_CHECKS, Django checks a persistent connection with a `SELECT 1` round trip
before the first query of every request (and Celery task). A connection that ran a query
a moment ago has just shown that it works, so the check is skipped for HEALTH_CHECK_DELAY
seconds after the connection was last used, as PgBouncer's `server_check_delay` does. A
connection idle for longer is checked as before, and one whose last use had an error is
checked (and closed when unusable) at the end of that request, as Django does. What it
costs: a server that went away within the last HEALTH_CHECK_DELAY seconds fails one request
per connection instead of none.
"""

from __future__ import annotations

import time

from django.db.backends.postgresql import base

# Seconds after a connection's last use during which it is not checked again.
HEALTH_CHECK_DELAY = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    used_at: float | None = None

    def close_if_health_check_failed(self) -> None:
        """Before every cursor and transaction: check, or skip the check when just used."""
        now = time.monotonic()
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and self.used_at is not None
            and now - self.used_at < HEALTH_CHECK_DELAY
        ):
            self.health_check_done = True
        else:
            super().close_if_health_check_failed()
        self.used_at = now

    def connect(self) -> None:
        super().connect()
        self.used_at = time.monotonic()
