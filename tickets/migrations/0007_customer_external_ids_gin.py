"""Customers by platform id: a GIN index led by tenant (Postgres only).

`external_ids` maps "<platform>:<connection id>" to the platform's customer id, so no
B-tree expression index fits every key. A GIN index over (tenant_id, external_ids
jsonb_path_ops) — btree_gin lets the tenant lead it, as every index here must — serves the
upsert's `external_ids @> {"key": "id"}` lookup. The embedded SQLite demo has no GIN and
looks the key up directly.
"""

from django.db import migrations, transaction

INDEX = "customer_external_ids"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    except Exception:  # noqa: BLE001 - a role that may not create extensions: no index, same results
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON tickets_customer USING gin (tenant_id, external_ids jsonb_path_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("tickets", "0006_lookup_indexes")]
    operations = [migrations.RunPython(create, drop)]
