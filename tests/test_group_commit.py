"""Group commit (helpdesk.group_commit) and the webhook inbox's use of it: concurrent acks of
one process share one INSERT and one commit, and each still gets its own answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from django.db import connections, transaction

from helpdesk.group_commit import GroupCommit
from integrations import services
from integrations.models import Connection, WebhookDelivery
from tests.test_webhooks import connect


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


def _start(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


class _Gated:
    """A `run` for GroupCommit that records its calls and holds the first until released."""

    def __init__(self, fail_on: object = None):
        self.calls: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if self.fail_on in items:
            raise ValueError(f"item {self.fail_on} is bad")
        return [item * 10 for item in items]


def _submit_all(group: GroupCommit, items: list[int], results: dict, gated: _Gated) -> list[threading.Thread]:
    def one(item: int) -> None:
        try:
            results[item] = group.submit(item)
        except ValueError as exc:
            results[item] = exc

    first = _start(one, items[0])
    assert gated.entered.wait(10)
    rest = [_start(one, item) for item in items[1:]]
    _wait_for(lambda: len(group._queue) == len(items) - 1)  # all queued behind the first call
    gated.release.set()
    threads = [first, *rest]
    for thread in threads:
        thread.join(10)
    return threads


def test_a_lone_caller_runs_at_once_and_gets_its_result():
    calls = []
    group = GroupCommit(lambda items: calls.append(list(items)) or [i + 1 for i in items])
    assert group.submit(1) == 2
    assert group.submit(5) == 6
    assert calls == [[1], [5]]


def test_callers_arriving_during_a_call_share_the_next_one_and_each_gets_its_own_result():
    gated = _Gated()
    group = GroupCommit(gated)
    results: dict = {}
    _submit_all(group, [1, 2, 3, 4, 5], results, gated)
    assert gated.calls[0] == [1]
    assert sorted(gated.calls[1]) == [2, 3, 4, 5] and len(gated.calls) == 2
    assert results == {1: 10, 2: 20, 3: 30, 4: 40, 5: 50}
    assert group.submit(6) == 60 and not group._busy  # idle again: the next caller runs alone


def test_a_call_carries_at_most_max_items_and_the_rest_follow():
    gated = _Gated()
    group = GroupCommit(gated, max_items=2)
    results: dict = {}
    _submit_all(group, [1, 2, 3, 4, 5], results, gated)
    assert [len(call) for call in gated.calls] == [1, 2, 2]
    assert results == {n: n * 10 for n in range(1, 6)}


def test_a_failing_call_fails_every_caller_in_it_and_no_other() -> None:
    gated = _Gated(fail_on=3)
    group = GroupCommit(gated)
    results: dict = {}
    _submit_all(group, [1, 2, 3, 4], results, gated)
    assert results[1] == 10
    assert all(isinstance(results[n], ValueError) for n in (2, 3, 4))
    assert group.submit(7) == 70  # the group works on after a failure


def test_a_run_answering_the_wrong_number_of_results_is_an_error_not_a_mixup():
    group = GroupCommit(lambda items: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        group.submit(1)
    with pytest.raises(ValueError):
        GroupCommit(lambda items: items, max_items=0)


# --- The webhook inbox, on real Postgres --------------------------------------------------


def _accept(connection: Connection, delivery_id: str) -> bool | str:
    material = services.verification_material(connection.pk, fresh=True)
    assert material is not None
    try:
        return services.delivery_accept(
            material=material, delivery_id=delivery_id, topic="orders/create", headers={}, body="{}"
        )
    except services.ConnectionGone:
        return "gone"
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_concurrent_acks_share_one_insert_and_each_gets_its_own_answer(cast) -> None:
    shop = connect(cast, "shopify")
    other = connect(cast, "woocommerce")
    services._insert_ignoring_duplicates(
        {
            "tenant": shop.tenant_id,
            "connection": shop.pk,
            "delivery_id": "seen-before",
            "event_id": "",
            "topic": "orders/create",
            "received_at": shop.created_at,
            "triggered_at": None,
            "headers": {},
            "body": "{}",
            "status": WebhookDelivery.State.IGNORED,
            "attempts": 0,
            "next_attempt_at": None,
            "last_error": "",
        }
    )
    # Grouping happens outside transactions only: the test's own connection must not hold one.
    assert services._groups_commits()
    waves = [
        ("first", shop),  # runs alone, held below by a row lock on its connection
        ("a", shop),
        ("b", shop),
        ("b", shop),  # the same delivery twice in one statement: one is new, one a duplicate
        ("seen-before", shop),  # a duplicate of a stored row
        ("c", other),  # gone: disconnected while queued
    ]
    results: dict[int, bool | str] = {}

    def one(index: int) -> None:
        delivery_id, conn = waves[index]
        results[index] = _accept(conn, delivery_id)

    with transaction.atomic():
        # The first insert's foreign-key check waits for this lock; the others queue.
        Connection.objects.select_for_update().get(pk=shop.pk)
        Connection.objects.filter(pk=other.pk).update(status=Connection.State.DISCONNECTED)
        first = _start(one, 0)
        _wait_for(lambda: services._inbox_group._busy)
        rest = [_start(one, i) for i in range(1, len(waves))]
        _wait_for(lambda: len(services._inbox_group._queue) == len(waves) - 1)
    for thread in [first, *rest]:
        thread.join(20)

    assert results[0] is True and results[1] is True
    assert sorted([results[2], results[3]]) == [False, True]
    assert results[4] is False
    assert results[5] == "gone"
    stored = WebhookDelivery.objects.filter(tenant=cast.tenant)
    assert sorted(stored.values_list("delivery_id", flat=True)) == ["a", "b", "first", "seen-before"]
    assert not stored.filter(connection=other).exists()
    # The new rows asked for a drain, which ran (tasks are eager here): none is left pending.
    assert not stored.filter(status=WebhookDelivery.State.PENDING).exists()


@pytest.mark.django_db
def test_inside_a_transaction_the_ack_writes_alone_on_its_own_connection(cast):
    shop = connect(cast, "shopify")
    assert not services._groups_commits()  # the test runs inside a transaction
    material = services.verification_material(shop.pk, fresh=True)
    assert services.delivery_accept(material=material, delivery_id="x", topic="t", headers={}, body="{}")
    assert not services.delivery_accept(material=material, delivery_id="x", topic="t", headers={}, body="{}")
    assert not services._inbox_group._busy
