"""Run the same work on several threads released at once (race and double-fire tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections


def at_once(work: Callable[[int], Any], threads: int, timeout: float = 60) -> list[Any]:
    """Call `work(i)` for i in range(threads), each on its own thread and database
    connection, all released by one barrier; their results (in finishing order). Raises the
    first error any of them met, after all have finished."""
    barrier = threading.Barrier(threads)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(work(i))
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    started = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout=timeout)
    if errors:
        raise errors[0]
    return results
