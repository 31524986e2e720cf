"""Shared plumbing of the bench scripts: the bench database, Django set-up, small helpers.

Safety: every script works on a database whose name ends in ``_bench`` and refuses
anything else, so a mistyped DATABASE_URL can never fill or drop the product database.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/storedesk_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
RESULTS_DIR = ROOT / "bench" / "results"

HOT_SLUG = "bench-000"
PASSWORD = "bench-password"
# A ticket page with this many messages is what the ticket-page scenario reads.
THREAD_MESSAGES = 30

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def db_params(url: str | None = None) -> dict:
    """psycopg2 connect() keywords for the bench database (refuses non-bench databases)."""
    parsed = urllib.parse.urlparse(url or database_url())
    name = parsed.path.lstrip("/")
    if parsed.scheme not in ("postgres", "postgresql", "pgsql"):
        raise SystemExit(f"bench: DATABASE_URL must be a Postgres URL, got {parsed.scheme!r}")
    if not name.endswith("_bench"):
        raise SystemExit(f"bench: refusing database {name!r}: the bench only uses databases named *_bench")
    params = {
        "dbname": name,
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": urllib.parse.unquote(parsed.username or "postgres"),
    }
    if parsed.password:
        params["password"] = urllib.parse.unquote(parsed.password)
    return params


def connect(dbname: str | None = None, autocommit: bool = False):
    import psycopg2

    params = db_params()
    if dbname:
        params["dbname"] = dbname
    conn = psycopg2.connect(**params)
    conn.autocommit = autocommit
    return conn


@contextlib.contextmanager
def cursor(dbname: str | None = None) -> Iterator:
    """An autocommit cursor on the bench database (or `dbname`), closed afterwards."""
    conn = connect(dbname, autocommit=True)
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def describe_db() -> str:
    p = db_params()
    return f"postgres://{p['user']}@{p['host']}:{p['port']}/{p['dbname']}"


def database_exists() -> bool:
    name = db_params()["dbname"]
    with cursor("postgres") as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cur.fetchone() is not None


def django_env(**extra: str) -> dict[str, str]:
    """Environment for Django processes (manage.py, in-process set-up) on the bench DB."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis_url(),
            "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
            "DEBUG": "0",
            "SECURE_SSL_REDIRECT": "0",
            "SECRET_KEY": "bench-not-secret-0123456789abcdefghijklmnopqrstuvwxyz",
            "EMAIL_URL": "memory:",
        }
    )
    env.update(extra)
    return env


def migrate() -> None:
    """Apply the product's migrations to the bench database."""
    db_params()  # refuse non-bench databases before running anything
    proc = subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=django_env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit("bench: manage.py migrate failed on the bench database")


def setup_django(**extra_env: str) -> None:
    """django.setup() in this process against the bench database."""
    db_params()
    os.environ.update(django_env(ALLOWED_HOSTS="127.0.0.1,localhost,testserver", **extra_env))
    import django

    django.setup()


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


# --- CPU accounting (Linux /proc): noise-robust figures on a shared machine -------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0.0 when it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (gunicorn's workers), by scanning /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


def load_average() -> float:
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return float("nan")
