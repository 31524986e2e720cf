"""How production runs granian (compose `web` and `hooks`, the image's CMD), for the bench
and the tests that start it: the WSGI application helpdesk.wsgi, HTTP parsed in Rust,
`threads` Python threads per process."""

from __future__ import annotations


def granian_args(*, host: str, port: int, workers: int, threads: int, log_level: str = "warning") -> list[str]:
    """granian's command-line arguments (after `granian` or `python -m granian`)."""
    return [
        "--interface",
        "wsgi",
        "helpdesk.wsgi:application",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--respawn-failed-workers",
        "--log-level",
        log_level,
    ]
