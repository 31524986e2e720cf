"""Order events applied one by one (upsert.apply) against batched (upsert.apply_many), in
process, on a `seed_demo` database (its store has the starter notice rules on, so every
event also works out its customer notices, as in production):

    DATABASE_URL=postgres://…/storedesk_demo .venv/bin/python bench/upsert_modes.py

For each mode, on a connection of its own (deleted afterwards): 500 new Shopify orders, the
same 500 again with a newer `updated_at` (the steady state of a store), and once more
unchanged (a platform's retries), in drain-sized transactions of 25. Prints wall and CPU
time and statements per event.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from helpdesk.models import Tenant  # noqa: E402
from integrations import upsert  # noqa: E402
from integrations.models import Connection  # noqa: E402
from integrations.normalize import normalize  # noqa: E402

EVENTS = 500
BATCH = 25
FIXTURE = ROOT / "tests" / "fixtures" / "webhooks" / "shopify" / "orders__updated.json"


def events(version: int) -> list[list]:
    base = json.loads(FIXTURE.read_text())
    out = []
    for i in range(EVENTS):
        body = copy.deepcopy(base)
        email = f"modes{i}@example.org"
        body.update(id=77_000_000 + i, order_number=70_000 + i, name=f"#{70_000 + i}", email=email)
        body["customer"] = {**body["customer"], "id": 88_000_000 + i, "email": email}
        body["updated_at"] = f"2026-11-2{version}T10:00:00Z"
        out.append(normalize("shopify", "orders/updated", body))
    return out


def run(mode: str, label: str, records: list[list], shop: Connection) -> None:
    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    now = timezone.now()
    wall, cpu = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(count):
        for start in range(0, len(records), BATCH):
            chunk = records[start : start + BATCH]
            with transaction.atomic():
                if mode == "batched":
                    upsert.apply_many([(shop, r, now) for r in chunk], upsert.Batch())
                else:
                    batch = upsert.Batch()
                    for r in chunk:
                        upsert.apply(connection=shop, records=r, received_at=now, batch=batch, savepoint=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"  {mode:<10} {label:<9} {1000 * wall / len(records):6.2f} ms wall  {1000 * cpu / len(records):6.2f} ms CPU  "
        f"{statements / len(records):5.1f} statements per event"
    )


def main() -> None:
    tenant = Tenant.objects.order_by("pk").first()
    if tenant is None or connection.vendor != "postgresql":
        sys.exit("needs a Postgres database with `manage.py seed_demo` data (DATABASE_URL)")
    print(f"tenant {tenant.slug}; {EVENTS} events per row, transactions of {BATCH}")
    for mode in ("one by one", "batched", "one by one", "batched"):
        shop = Connection.objects.create(tenant=tenant, platform="shopify", name=f"bench {mode}")
        try:
            run(mode, "new", events(1), shop)
            run(mode, "updated", events(2), shop)
            run(mode, "unchanged", events(2), shop)
        finally:
            shop.delete()


if __name__ == "__main__":
    main()
