"""Group commit: concurrent callers in one process share one statement and one commit.

A write that must be durable before its caller answers (a webhook ack) pays for a commit,
that is a WAL flush, each time. Postgres groups flushes only when commits coincide; at a
few hundred per second they mostly do not, and the per-commit cost was twice the cost of
the row itself. So the threads of one process meet here:

- a caller that finds nothing in flight runs its item at once, alone (no waiting, no
  added latency when the load is light);
- callers that arrive while a statement is in flight queue up, and when it finishes the
  first of them runs everything queued in one call ("leader and followers", the way
  Postgres's own commit_delay groups flushes);
- each caller gets its own result, or the exception of the call its item was in.

`run(items)` must return one result per item, in order. It runs on the leader's thread,
with that thread's database connection; the caller decides when grouping is allowed (for
example never inside a transaction, where another thread's item would join it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class _Waiter[Item]:
    item: Item
    ready: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    result: Any = None
    error: BaseException | None = None


class GroupCommit[Item, Result]:
    """Run `run` over the items that concurrent `submit` calls bring, `max_items` at most
    per call."""

    def __init__(self, run: Callable[[Sequence[Item]], Sequence[Result]], *, max_items: int = 16) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self._run = run
        self._max_items = max_items
        self._lock = threading.Lock()
        self._queue: list[_Waiter[Item]] = []
        self._busy = False  # a leader is running; the queue is never left non-empty while idle

    def submit(self, item: Item) -> Result:
        """`item`'s result, once the call that carried it has returned (its exception if
        that call raised)."""
        waiter: _Waiter[Item] = _Waiter(item)
        with self._lock:
            self._queue.append(waiter)
            waiter.leads = not self._busy
            self._busy = True
        if not waiter.leads:
            waiter.ready.wait()  # set with a result, or with `leads` when it is our turn
        if waiter.leads:
            self._lead()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    def _lead(self) -> None:
        with self._lock:
            batch = self._queue[: self._max_items]
            del self._queue[: self._max_items]
        try:
            results = self._run([w.item for w in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"group commit: {len(results)} results for {len(batch)} items")
            for waiter, result in zip(batch, results, strict=True):
                waiter.result = result
        except BaseException as exc:  # every caller in the call sees its failure
            for waiter in batch:
                waiter.error = exc
        finally:
            with self._lock:
                if self._queue:  # hand over: the next caller leads the next call
                    following = self._queue[0]
                    following.leads = True
                    following.ready.set()
                else:
                    self._busy = False
            for waiter in batch[1:]:  # batch[0] is the leader itself
                waiter.ready.set()
