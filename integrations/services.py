"""Writers for store connections and their webhook inbox, and the readers the webhook path
and the store health page need.

Connections: `connection_create`, `connection_update_credentials`, `connection_rotate_secret`,
`connection_disconnect`, `connections_reencrypt`. Every change is audited; no secret or
credential ever reaches the audit log.

Inbox (Invariant 3, persist then process):
- `delivery_accept` is the acknowledgement path: one INSERT … ON CONFLICT DO NOTHING, and
  processing is enqueued after commit only when the row is new.
- `delivery_drain` (new rows, in batches) and `delivery_process` (one row: sweeps,
  replays) run in a worker: they claim rows (`SELECT … FOR UPDATE SKIP LOCKED` among
  pending/retrying rows), normalise each payload, apply its records in a savepoint and
  record the outcomes in the same transaction — done, ignored (nothing we use), dead (the
  payload lacks what we need; the reason is kept) or retrying with exponential backoff
  (anything transient), dead after MAX_ATTEMPTS.
- `delivery_sweep` finds rows whose message was lost (a pending or retrying row past its
  `next_attempt_at`) so the beat task re-enqueues them; `delivery_replay` sends a dead
  letter round again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import secrets
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Aggregate, Count, DurationField, F, Q
from django.db.models.expressions import ExpressionWrapper
from django.urls import reverse
from django.utils import timezone

from helpdesk.group_commit import GroupCommit
from helpdesk.models import Tenant
from helpdesk.prepared import prepared_rows
from helpdesk.services import Actor, audit_record
from integrations import crypto
from integrations.models import Connection, Platform, WebhookDelivery

logger = logging.getLogger(__name__)

Delivery = WebhookDelivery.State

# Shopify may keep signing with the old secret for up to an hour after a rotation.
ROTATION_GRACE = timedelta(hours=1)
# A fresh row belongs to its Celery message; the sweeper only steps in after this.
PENDING_GRACE = timedelta(minutes=2)
# A swept row is not swept again for this long, so a slow queue does not pile up copies.
SWEEP_LEASE = timedelta(minutes=5)
SWEEP_BATCH = 500
MAX_ATTEMPTS = 8
# Inbox drains (see "The inbox: drain"): a lease lives this long when its drain dies; one
# drain task works this long or this many deliveries, then hands over to a new message
# (fair to other tenants' work); a busy tenant gets up to DRAIN_SLOTS drains at once.
DRAIN_LEASE = 30
DRAIN_SECONDS = 10.0
DRAIN_MAX = 2_000
DRAIN_SLOTS = 2
DRAIN_FAN_OUT_AFTER = 20
# Rows one drain claims and commits together (one transaction, a savepoint per row).
DRAIN_BATCH = 25
# A drain in a burst (it has worked off DRAIN_LINGER_AFTER rows) that finds the inbox empty
# looks again every DRAIN_LINGER seconds, DRAIN_LINGER_MAX in all, before it ends: acks
# meanwhile find its lease and send no new message, and its batches stay full. A quiet
# shop's few deliveries never wait, and the cap keeps a trickle from holding a worker.
DRAIN_LINGER_AFTER = 50
DRAIN_LINGER = 0.02
DRAIN_LINGER_MAX = 0.5
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 60 * 60
# Verification material is cached so the hot path does not query per delivery. Rotation,
# disconnection and credential updates delete the entry at once and again after commit.
MATERIAL_TTL = 300
MISSING_TTL = 30
# ... and kept in each process for a few seconds in front of Redis (the Redis GET was ~10%
# of an ack). A stale copy is safe: a signature that fails on it is checked again on fresh
# material (a rotation works at once), and the inbox INSERT itself refuses a disconnected
# connection (delivery_accept), so a disconnect answers 404 at once too.
LOCAL_MATERIAL_TTL = 5.0
LOCAL_MATERIAL_MAX = 10_000
# last_delivery_at is written at most this often per connection (not once per delivery).
TOUCH_INTERVAL = timedelta(minutes=1)
SIGNATURE_FAILURE_HOURS = 24
SILENCE_WARNING = timedelta(hours=24)
DEAD_LETTERS_SHOWN = 50

# API credentials each platform needs for its API client: (key, label).
CREDENTIAL_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    Platform.SHOPIFY: (("access_token", "Admin API access token"),),
    Platform.WOOCOMMERCE: (
        ("consumer_key", "Consumer key (ck_…)"),
        ("consumer_secret", "Consumer secret (cs_…)"),
    ),
    Platform.MAGENTO: (("access_token", "Integration access token"),),
    Platform.GENERIC: (),
}
# Which address field identifies the store, per platform (None: neither is required).
STORE_ADDRESS: dict[str, str | None] = {
    Platform.SHOPIFY: "shop_domain",
    Platform.WOOCOMMERCE: "api_url",
    Platform.MAGENTO: "api_url",
    Platform.GENERIC: None,
}
SHOPIFY_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\.myshopify\.com$")
# Any secret the platform uses (Shopify's is the app's, not ours to choose); ours are 256-bit.
SECRET_PATTERN = re.compile(r"^\S{1,200}$")


# --- Validation ----------------------------------------------------------------------------


def _clean_shop_domain(value: str) -> str:
    value = (value or "").strip().lower()
    value = re.sub(r"^https?://", "", value)
    return value.rstrip("/")


def _clean_credentials(platform: str, credentials: Any, errors: dict[str, str]) -> dict[str, str]:
    """Credentials as {key: value} for `platform`: all of its keys, or none at all."""
    if credentials in (None, ""):
        return {}
    if not isinstance(credentials, dict):
        errors["credentials"] = "An object with the platform’s API credentials."
        return {}
    allowed = [key for key, _ in CREDENTIAL_FIELDS[platform]]
    unknown = sorted(set(credentials) - set(allowed))
    if unknown:
        expected = ", ".join(allowed) or "none"
        errors["credentials"] = f"Unknown for this platform: {', '.join(unknown)} (expected: {expected})."
        return {}
    cleaned = {}
    for key, value in credentials.items():
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > 500:
            errors["credentials"] = f"“{key}” must be text of at most 500 characters."
            return {}
        if value.strip():
            cleaned[key] = value.strip()
    missing = [key for key in allowed if key not in cleaned]
    if cleaned and missing:
        errors["credentials"] = f"Also give: {', '.join(missing)}."
        return {}
    return cleaned


def _clean_secret(value: str, errors: dict[str, str]) -> str:
    value = (value or "").strip()
    if value and not SECRET_PATTERN.match(value):
        errors["webhook_secret"] = "At most 200 characters, without spaces (e.g. the app’s client secret)."
    return value


def _clean_public_key(value: str, errors: dict[str, str]) -> str:
    value = (value or "").strip()
    if not value:
        return ""
    from integrations.magento.receiver import load_public_key

    if load_public_key(value) is None:
        errors["public_key_pem"] = "Paste the RSA public key in PEM form (-----BEGIN PUBLIC KEY-----…)."
    return value + "\n"


def _clean_address(platform: str, shop_domain: str, api_url: str, errors: dict[str, str]) -> tuple[str, str]:
    shop_domain = _clean_shop_domain(shop_domain)
    api_url = (api_url or "").strip()
    required = STORE_ADDRESS[platform]
    if required == "shop_domain" and not shop_domain:
        errors["shop_domain"] = "The shop’s myshopify.com domain, e.g. acme-socks.myshopify.com."
    elif platform == Platform.SHOPIFY and not SHOPIFY_DOMAIN.match(shop_domain):
        errors["shop_domain"] = "Use the shop’s myshopify.com domain (not a custom domain)."
    elif platform != Platform.SHOPIFY and shop_domain:
        errors["shop_domain"] = "Only Shopify connections have a shop domain; give the API URL."
    if required == "api_url" and not api_url:
        errors["api_url"] = "The store’s address, e.g. https://shop.example/."
    elif api_url:
        try:
            URLValidator(schemes=["http", "https"])(api_url)
        except ValidationError:
            errors["api_url"] = "An http:// or https:// address."
        if len(api_url) > 200:
            errors["api_url"] = "At most 200 characters."
    return shop_domain, api_url


def _raise(errors: dict[str, str]) -> None:
    if errors:
        raise ValidationError({key: [message] for key, message in errors.items()})


def webhook_url(connection: Connection) -> str:
    """The public URL the platform posts to: HOOKS_BASE_URL (default BASE_URL) + /hooks/<platform>/<id>/."""
    path = reverse(f"hooks_{connection.platform}", kwargs={"connection_uuid": connection.pk})
    return f"{settings.HOOKS_BASE_URL}{path}"


def credentials_for(connection: Connection) -> dict[str, str]:
    """The decrypted API credentials (for the platform API clients); {} when none."""
    return crypto.decrypt_json(connection.credentials_encrypted)


def _lock(connection: Connection) -> Connection:
    return Connection.objects.select_for_update().get(tenant_id=connection.tenant_id, pk=connection.pk)


def _copy_back(target: Connection, source: Connection) -> None:
    for f in Connection._meta.concrete_fields:
        setattr(target, f.attname, getattr(source, f.attname))


# --- Connections -----------------------------------------------------------------------------


@transaction.atomic
def connection_create(
    *,
    tenant: Tenant,
    platform: str,
    name: str,
    actor: Actor,
    shop_domain: str = "",
    api_url: str = "",
    credentials: dict | None = None,
    webhook_secret: str = "",
    public_key_pem: str = "",
) -> tuple[Connection, str]:
    """Connect a store. Returns the connection and its webhook secret, shown this once.

    The secret is the one given (Shopify signs with the app's client secret, which the admin
    pastes) or a fresh random one (WooCommerce and the generic format: paste it there).
    """
    errors: dict[str, str] = {}
    if platform not in Platform.values:
        errors["platform"] = f"One of: {', '.join(Platform.values)}."
        _raise(errors)
    name = (name or "").strip()
    if not name:
        errors["name"] = "Give the connection a name, e.g. the store’s name."
    elif len(name) > 100:
        errors["name"] = "At most 100 characters."
    shop_domain, api_url = _clean_address(platform, shop_domain, api_url, errors)
    cleaned = _clean_credentials(platform, credentials, errors)
    supplied = _clean_secret(webhook_secret, errors)
    pem = _clean_public_key(public_key_pem, errors) if platform == Platform.MAGENTO else ""
    if public_key_pem and platform != Platform.MAGENTO:
        errors["public_key_pem"] = "Only Adobe Commerce (Magento) signs with a public key."
    _raise(errors)
    secret = supplied or secrets.token_urlsafe(32)
    connection = Connection.objects.create(
        tenant=tenant,
        platform=platform,
        name=name,
        shop_domain=shop_domain,
        api_url=api_url,
        credentials_encrypted=crypto.encrypt_json(cleaned),
        webhook_secret_encrypted=crypto.encrypt(secret),
        public_key_pem=pem,
    )
    audit_record(
        tenant=tenant,
        actor=actor,
        action="connection.create",
        target=connection,
        changes={
            "platform": platform,
            "name": name,
            "shop_domain": shop_domain,
            "api_url": api_url,
            "credentials": sorted(cleaned),
            "webhook_secret": "supplied" if supplied else "generated",
            "public_key": bool(pem),
        },
    )
    _forget_material(connection.pk)  # a cached "no such id" must not outlive the row
    return connection, secret


@transaction.atomic
def connection_update_credentials(
    *,
    connection: Connection,
    actor: Actor,
    credentials: dict | None = None,
    public_key_pem: str | None = None,
    name: str | None = None,
) -> Connection:
    """Replace API credentials (re-encrypted under the newest key), the Adobe public key or
    the name. A credential left blank keeps its stored value: secrets are never shown back."""
    locked = _lock(connection)
    if not locked.is_active:
        raise ValidationError("This connection is disconnected; connect the store again instead.")
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {}
    if credentials is not None:
        stored = crypto.decrypt_json(locked.credentials_encrypted)
        if isinstance(credentials, dict):
            blank = {k for k, v in credentials.items() if v is None or (isinstance(v, str) and not v.strip())}
            credentials = {**stored, **{k: v for k, v in credentials.items() if k not in blank}}
        merged = _clean_credentials(locked.platform, credentials, errors)
        updated = sorted(k for k in merged if stored.get(k) != merged[k])
        if updated and not errors:
            locked.credentials_encrypted = crypto.encrypt_json(merged)
            changes["credentials"] = {"updated": updated}
    if public_key_pem is not None and public_key_pem.strip():
        if locked.platform != Platform.MAGENTO:
            errors["public_key_pem"] = "Only Adobe Commerce (Magento) signs with a public key."
        else:
            pem = _clean_public_key(public_key_pem, errors)
            if pem != locked.public_key_pem:
                locked.public_key_pem = pem
                changes["public_key"] = "replaced"
    if name is not None:
        name = name.strip()
        if not name or len(name) > 100:
            errors["name"] = "A name of 1 to 100 characters."
        elif name != locked.name:
            changes["name"] = [locked.name, name]
            locked.name = name
    _raise(errors)
    if changes:
        locked.save(update_fields=["credentials_encrypted", "public_key_pem", "name"])
        audit_record(
            tenant=locked.tenant,
            actor=actor,
            action="connection.update_credentials",
            target=locked,
            changes=changes,
        )
        _forget_material(locked.pk)
    _copy_back(connection, locked)
    return connection


@transaction.atomic
def connection_rotate_secret(*, connection: Connection, actor: Actor, new_secret: str = "") -> str:
    """Give the connection a new webhook secret; returns it (shown this once).

    The previous secret keeps verifying for ROTATION_GRACE (Shopify switches within the
    hour). Rotating again inside that hour drops the oldest secret.
    """
    locked = _lock(connection)
    if not locked.is_active:
        raise ValidationError("This connection is disconnected.")
    errors: dict[str, str] = {}
    supplied = _clean_secret(new_secret, errors)
    _raise(errors)
    secret = supplied or secrets.token_urlsafe(32)
    locked.previous_secret_encrypted = locked.webhook_secret_encrypted
    locked.previous_secret_expires_at = timezone.now() + ROTATION_GRACE
    locked.webhook_secret_encrypted = crypto.encrypt(secret)
    locked.save(
        update_fields=[
            "previous_secret_encrypted",
            "previous_secret_expires_at",
            "webhook_secret_encrypted",
        ]
    )
    audit_record(
        tenant=locked.tenant,
        actor=actor,
        action="connection.rotate_secret",
        target=locked,
        changes={
            "webhook_secret": "supplied" if supplied else "generated",
            "previous_secret_valid_until": locked.previous_secret_expires_at.isoformat(),
        },
    )
    _forget_material(locked.pk)
    _copy_back(connection, locked)
    return secret


@transaction.atomic
def connection_disconnect(*, connection: Connection, actor: Actor) -> Connection:
    """Stop taking deliveries from a store. Orders and the inbox stay as history; the API
    credentials and webhook secrets are erased; unprocessed deliveries are set aside."""
    locked = _lock(connection)
    if not locked.is_active:
        _copy_back(connection, locked)
        return connection
    now = timezone.now()
    locked.status = Connection.State.DISCONNECTED
    locked.disconnected_at = now
    locked.credentials_encrypted = ""
    locked.webhook_secret_encrypted = ""
    locked.previous_secret_encrypted = ""
    locked.previous_secret_expires_at = None
    locked.save(
        update_fields=[
            "status",
            "disconnected_at",
            "credentials_encrypted",
            "webhook_secret_encrypted",
            "previous_secret_encrypted",
            "previous_secret_expires_at",
        ]
    )
    set_aside = WebhookDelivery.objects.filter(
        tenant_id=locked.tenant_id,
        connection=locked,
        status__in=[Delivery.PENDING, Delivery.RETRYING],
    ).update(
        status=Delivery.IGNORED,
        last_error="The connection was disconnected before this delivery was processed.",
        processed_at=now,
        next_attempt_at=None,
    )
    audit_record(
        tenant=locked.tenant,
        actor=actor,
        action="connection.disconnect",
        target=locked,
        changes={"unprocessed_deliveries_ignored": set_aside},
    )
    _forget_material(locked.pk)
    _copy_back(connection, locked)
    return connection


@transaction.atomic
def connections_reencrypt(*, tenant: Tenant) -> int:
    """Re-encrypt every stored credential and secret of `tenant` under the newest
    ENCRYPTION_KEYS key (after a key was prepended). Returns how many connections changed."""
    changed = 0
    fields = ["credentials_encrypted", "webhook_secret_encrypted", "previous_secret_encrypted"]
    for connection in Connection.objects.select_for_update().filter(tenant=tenant).order_by("pk"):
        for name in fields:
            setattr(connection, name, crypto.rotate(getattr(connection, name)))
        connection.save(update_fields=fields)
        _forget_material(connection.pk)
        changed += 1
    if changed:
        audit_record(
            tenant=tenant,
            actor=Actor.system(),
            action="connection.reencrypt",
            changes={"connections": changed},
        )
    return changed


# --- Verification material (the hot path's one read) ----------------------------------------


@lru_cache(maxsize=4096)
def _plaintext(token: str) -> str:
    """A decrypted secret. Tokens are immutable, so each is decrypted once per process."""
    try:
        return crypto.decrypt(token)
    except crypto.InvalidToken:
        logger.error("A webhook secret cannot be decrypted with any ENCRYPTION_KEYS key")
        return ""


@dataclass(frozen=True)
class VerificationMaterial:
    """What checking one connection's signatures takes; cached in the Django cache (Redis).

    Secrets stay encrypted in the cache; they are decrypted in the process that verifies.
    """

    connection_id: str
    tenant_id: int
    platform: str
    active: bool
    shop_domain: str = ""
    public_key_pem: str = ""
    secret_token: str = ""
    previous_token: str = ""
    previous_expires_at: datetime | None = None

    def secrets(self) -> tuple[str, ...]:
        """The secrets that verify now: the current one, and the previous one in its hour."""
        found = [_plaintext(self.secret_token)] if self.secret_token else []
        if self.previous_token and self.previous_expires_at is not None and timezone.now() < self.previous_expires_at:
            found.append(_plaintext(self.previous_token))
        return tuple(s for s in found if s)


_MATERIAL_KEY = "integrations:verify:v1:{}"
_MISSING = "missing"


def _material_key(connection_id: uuid.UUID | str) -> str:
    return _MATERIAL_KEY.format(connection_id)


def _dangerously_load_material(connection_id: uuid.UUID) -> VerificationMaterial | None:
    """Read a connection by its id alone, across tenants.

    The one unscoped read: a webhook URL names only the connection (an unguessable UUID),
    and the tenant is learnt from this row. Everything after it is scoped to that tenant.
    """
    row = (
        Connection.objects.filter(pk=connection_id)
        .values(
            "tenant_id",
            "platform",
            "status",
            "shop_domain",
            "public_key_pem",
            "webhook_secret_encrypted",
            "previous_secret_encrypted",
            "previous_secret_expires_at",
        )
        .first()
    )
    if row is None:
        return None
    return VerificationMaterial(
        connection_id=str(connection_id),
        tenant_id=row["tenant_id"],
        platform=row["platform"],
        active=row["status"] == Connection.State.ACTIVE,
        shop_domain=row["shop_domain"],
        public_key_pem=row["public_key_pem"],
        secret_token=row["webhook_secret_encrypted"],
        previous_token=row["previous_secret_encrypted"],
        previous_expires_at=row["previous_secret_expires_at"],
    )


# connection id -> (expires at, on time.monotonic(); material). Unknown ids are not kept.
_local_material: dict[str, tuple[float, VerificationMaterial]] = {}


def verification_material(connection_id: uuid.UUID, *, fresh: bool = False) -> VerificationMaterial | None:
    """The connection's verification material, from this process or the cache when it is
    there (`fresh`: never this process's copy); None for an id no connection has. A cache
    outage falls back to the database."""
    local_key = str(connection_id)
    if not fresh:
        kept = _local_material.get(local_key)
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
    material = _shared_material(connection_id)
    if material is not None:
        if len(_local_material) >= LOCAL_MATERIAL_MAX:
            _local_material.clear()
        _local_material[local_key] = (time.monotonic() + LOCAL_MATERIAL_TTL, material)
    else:
        _local_material.pop(local_key, None)
    return material


def _shared_material(connection_id: uuid.UUID) -> VerificationMaterial | None:
    key = _material_key(connection_id)
    try:
        cached = cache.get(key)
    except Exception:
        logger.warning("cache unavailable; reading connection %s from the database", connection_id)
        return _dangerously_load_material(connection_id)
    if cached == _MISSING:
        return None
    if isinstance(cached, dict):
        return VerificationMaterial(**cached)
    material = _dangerously_load_material(connection_id)
    try:
        if material is None:
            cache.set(key, _MISSING, MISSING_TTL)
        else:
            cache.set(key, dataclasses.asdict(material), MATERIAL_TTL)
    except Exception:
        logger.warning("cache unavailable; connection %s not cached", connection_id)
    return material


def _forget_material(connection_id: uuid.UUID) -> None:
    """Drop the cached material now, and again after commit: a delivery verified between the
    two would have re-read the old row and cached it again."""

    def forget() -> None:
        _local_material.pop(str(connection_id), None)
        try:
            cache.delete(_material_key(connection_id))
        except Exception:
            logger.exception("could not drop cached verification material of %s", connection_id)

    forget()
    transaction.on_commit(forget)


# --- Signature failures (for the health page) ----------------------------------------------
# Kept in the cache (Redis) as hourly counters, not in a table: a forged request must not
# become a database write (an attacker could otherwise turn garbage into write load), and
# the figure is diagnostic — losing it with Redis loses nothing of record (Invariant 2).


def _failure_key(connection_id: str, hour: datetime) -> str:
    return f"integrations:sigfail:{connection_id}:{hour:%Y%m%d%H}"


def signature_failure_record(connection_id: str) -> None:
    key = _failure_key(connection_id, timezone.now())
    try:
        cache.add(key, 0, timeout=(SIGNATURE_FAILURE_HOURS + 1) * 3600)
        cache.incr(key)
    except Exception:
        logger.warning("could not count a signature failure for %s", connection_id)


def signature_failures(connection_id: str) -> int:
    """Failed signature checks in the last 24 hours (hourly buckets)."""
    now = timezone.now()
    keys = [_failure_key(connection_id, now - timedelta(hours=h)) for h in range(SIGNATURE_FAILURE_HOURS)]
    try:
        return sum(int(v) for v in cache.get_many(keys).values())
    except Exception:
        return 0


# --- The inbox: accept ----------------------------------------------------------------------

_INSERT_FIELDS = (
    "tenant",
    "connection",
    "delivery_id",
    "event_id",
    "topic",
    "received_at",
    "triggered_at",
    "headers",
    "body",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
)


class ConnectionGone(Exception):
    """The connection was disconnected (or deleted) after its material was read: nothing
    was stored, and the delivery is answered like an unknown connection (404)."""


@lru_cache(maxsize=4)
def _inbox_insert_sql(vendor: str) -> tuple[tuple[Any, ...], str, str]:
    """(fields, liveness query, insert) for `_insert_ignoring_duplicates` on SQLite (the
    embedded demo), built once per process. Postgres uses `_inbox_prepared_sql`."""
    meta = WebhookDelivery._meta
    quote = db_connection.ops.quote_name
    fields = tuple(f for f in meta.concrete_fields if f.name in _INSERT_FIELDS)
    by_name = {f.name: quote(str(f.column)) for f in meta.concrete_fields}
    columns = ", ".join(by_name[f.name] for f in fields)
    conflict = ", ".join(by_name[n] for n in ("tenant", "connection", "delivery_id"))
    pk = by_name[meta.pk.name]
    connection_meta = Connection._meta
    # Table and column names come from the models' meta, never from input.
    live = (
        f"SELECT 1 FROM {quote(connection_meta.db_table)} WHERE {quote('tenant_id')} = %s "  # noqa: S608
        f"AND {quote(str(connection_meta.pk.column))} = %s AND {quote('status')} = %s"
    )
    # INSERT … SELECT … WHERE EXISTS (the WHERE also settles SQLite's parse of ON CONFLICT
    # after a SELECT); only "no row" needs a second look.
    placeholders = ", ".join(["%s"] * len(fields))
    insert = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {placeholders} "  # noqa: S608
        f"WHERE EXISTS ({live}) ON CONFLICT ({conflict}) DO NOTHING RETURNING {pk}"
    )
    return fields, live, insert


_PREPARED_INSERT = "storedesk_inbox_insert_v2_{size}"
# The most rows one grouped insert carries (a process has at most as many request threads).
MAX_GROUPED_ROWS = 16


@lru_cache(maxsize=MAX_GROUPED_ROWS)
def _inbox_prepared_sql(size: int) -> tuple[tuple[tuple[str, bool, Any], ...], str, str, str]:
    """Postgres, `size` rows at once: ((field name, is JSON, its encoder) per insert field,
    statement name, PREPARE, EXECUTE).

    One statement inserts the rows whose connection is active and answers, per row in
    order, its new id (NULL for a duplicate) and whether its connection was active. It runs
    as a prepared statement, parsed and planned once per database session and size rather
    than per delivery (≈0.3 ms of Postgres CPU and ≈0.2 ms of ours an ack); the comment
    keeps what it is readable in logs and captured queries."""
    meta = WebhookDelivery._meta
    quote = db_connection.ops.quote_name
    fields = tuple(f for f in meta.concrete_fields if f.name in _INSERT_FIELDS)
    col = {f.name: quote(str(f.column)) for f in meta.concrete_fields}
    columns = ", ".join(col[f.name] for f in fields)
    pk, tenant, conn, delivery = col[meta.pk.name], col["tenant"], col["connection"], col["delivery_id"]
    casts = ", ".join(f"CAST(%s AS {f.db_type(db_connection)})" for f in fields)
    values = ", ".join(f"({n}, {casts})" for n in range(size))
    connection_meta = Connection._meta
    # Table and column names come from the models' meta, never from input. A row goes in
    # only while its connection row is active, so the ack never trusts cached material
    # about that.
    body = (
        f"WITH v (ord, {columns}) AS (VALUES {values}), "  # noqa: S608
        f"live AS (SELECT v.ord FROM v JOIN {quote(connection_meta.db_table)} c "
        f"ON c.{quote('tenant_id')} = v.{tenant} AND c.{quote(str(connection_meta.pk.column))} = v.{conn} "
        f"AND c.{quote('status')} = %s), "
        f"ins AS (INSERT INTO {quote(meta.db_table)} ({columns}) "
        f"SELECT {', '.join(f'v.{col[f.name]}' for f in fields)} FROM v WHERE v.ord IN (SELECT ord FROM live) "
        f"ON CONFLICT ({tenant}, {conn}, {delivery}) DO NOTHING RETURNING {pk}, {tenant}, {conn}, {delivery}) "
        f"SELECT ins.{pk}, v.ord IN (SELECT ord FROM live) FROM v LEFT JOIN ins "
        f"ON ins.{tenant} = v.{tenant} AND ins.{conn} = v.{conn} AND ins.{delivery} = v.{delivery} ORDER BY v.ord"
    )
    numbered = body.split("%s")
    name = _PREPARED_INSERT.format(size=size)
    prepare = f"PREPARE {name} AS " + numbered[0] + "".join(f"${n}{rest}" for n, rest in enumerate(numbered[1:], 1))
    execute = (
        f"EXECUTE {name} ({', '.join(['%s'] * (len(numbered) - 1))}) "
        f"/* INSERT … ON CONFLICT DO NOTHING into the webhook inbox, {size} row(s) */"
    )
    # Values as Django's get_db_prep_save would pass them: JSON as its text, the rest as is.
    shapes = tuple((f.name, f.get_internal_type() == "JSONField", getattr(f, "encoder", None)) for f in fields)
    return shapes, name, prepare, execute


def _insert_ignoring_duplicates(values: dict[str, Any]) -> int | None:
    """INSERT one inbox row unless (tenant, connection, delivery_id) exists; its id or None.
    Raises ConnectionGone, storing nothing, when the connection is not active (any more).

    Raw SQL because the ORM's `bulk_create(ignore_conflicts=True)` cannot say whether the
    row was new, and only a new row may request processing. On Postgres one statement, one
    round trip: the insert only happens when the connection row is active, and the answer
    says which case it was, so the ack path never trusts cached material about that.
    """
    if db_connection.vendor == "postgresql":
        (outcome,) = _insert_rows([values])
        if outcome is _GONE:
            raise ConnectionGone
        return outcome
    fields, live, insert = _inbox_insert_sql(db_connection.vendor)
    params = [f.get_db_prep_save(values[f.name], db_connection) for f in fields]
    live_params = [
        values["tenant"],
        Connection._meta.pk.get_db_prep_save(values["connection"], db_connection),
        Connection.State.ACTIVE.value,
    ]
    with db_connection.cursor() as cursor:
        # The embedded SQLite demo: a second statement only when nothing was inserted.
        cursor.execute(insert, [*params, *live_params])
        row = cursor.fetchone()
        if row is not None:
            return row[0]
        cursor.execute(live, live_params)
        if cursor.fetchone() is None:
            raise ConnectionGone
    return None


_GONE = object()  # an outcome of `_insert_rows`: the row's connection is not active


def _insert_rows(rows: list[dict[str, Any]]) -> list[Any]:
    """Postgres: insert inbox rows in one statement (one commit in autocommit); per row its
    new id, None for a duplicate, or _GONE. Two rows with the same delivery id: the second
    is the first's duplicate."""
    first_of: dict[tuple[Any, ...], int] = {}
    unique: list[dict[str, Any]] = []
    slot = []
    for values in rows:
        key = (values["tenant"], values["connection"], values["delivery_id"])
        if key not in first_of:
            first_of[key] = len(unique)
            unique.append(values)
        slot.append(first_of[key])
    shapes, name, prepare, execute = _inbox_prepared_sql(len(unique))
    params: list[Any] = []
    for values in unique:
        params.extend(json.dumps(values[f], cls=encoder) if is_json else values[f] for f, is_json, encoder in shapes)
    params.append(Connection.State.ACTIVE.value)
    answers = [new_pk if active else _GONE for new_pk, active in prepared_rows(name, prepare, execute, params)]
    seen: set[int] = set()
    outcomes = []
    for index in slot:
        outcome = answers[index]
        outcomes.append(None if index in seen and outcome is not _GONE else outcome)
        seen.add(index)
    return outcomes


def _insert_grouped(rows: Sequence[dict[str, Any]]) -> list[Any]:
    """GroupCommit's call: the rows of concurrent acks in one statement, then one drain
    request per tenant with a new row (the statement has committed: autocommit)."""
    outcomes = _insert_rows(list(rows))
    for tenant_id in dict.fromkeys(v["tenant"] for v, o in zip(rows, outcomes, strict=True) if _is_new(o)):
        delivery_request_drain(tenant_id=tenant_id)
    return outcomes


def _is_new(outcome: Any) -> bool:
    return outcome is not None and outcome is not _GONE


# Acks of this process's request threads share statements and commits (helpdesk.group_commit).
_inbox_group: GroupCommit[dict[str, Any], Any] = GroupCommit(_insert_grouped, max_items=MAX_GROUPED_ROWS)


def _groups_commits() -> bool:
    """Whether this ack may share its statement with other threads' acks: Postgres, and no
    transaction of the caller's open (another thread's row would join it)."""
    return db_connection.vendor == "postgresql" and db_connection.get_autocommit() and not db_connection.in_atomic_block


def delivery_accept(
    *,
    material: VerificationMaterial,
    delivery_id: str,
    topic: str,
    headers: dict[str, str],
    body: str,
    event_id: str = "",
    triggered_at: datetime | None = None,
) -> bool:
    """Store one verified delivery; True when it is new (and a drain of the tenant's inbox
    was requested after commit), False for a duplicate, which stores nothing. Raises
    ConnectionGone when the connection is no longer active (nothing stored).

    Outside a transaction (the live ack path) concurrent acks of this process are grouped
    into one statement and commit (helpdesk.group_commit); each still gets its own answer."""
    now = timezone.now()
    values = {
        "tenant": material.tenant_id,
        "connection": uuid.UUID(material.connection_id),
        "delivery_id": delivery_id,
        "event_id": event_id,
        "topic": topic,
        "received_at": now,
        "triggered_at": triggered_at,
        "headers": headers,
        "body": body,
        "status": Delivery.PENDING,
        "attempts": 0,
        "next_attempt_at": now + PENDING_GRACE,
        "last_error": "",
    }
    try:
        if _groups_commits():
            outcome = _inbox_group.submit(values)  # the drain is requested by the group's call
            if outcome is _GONE:
                raise ConnectionGone
            return outcome is not None
        pk = _insert_ignoring_duplicates(values)
    except ConnectionGone:
        _local_material.pop(material.connection_id, None)  # this process's copy was stale
        raise
    if pk is None:
        return False
    tenant_id = material.tenant_id
    transaction.on_commit(lambda: delivery_request_drain(tenant_id=tenant_id))
    return True


def delivery_enqueue(*, tenant_id: int, delivery_pk: int) -> None:
    """Send one row to a worker (the sweeper, replays). A broker outage is logged, not
    raised: the row is stored and the sweeper enqueues it again."""
    from integrations.tasks import process_delivery

    try:
        process_delivery.delay(tenant_id, delivery_pk)
    except Exception:
        logger.exception("could not enqueue delivery %s; the sweeper will", delivery_pk)


# --- The inbox: drain -------------------------------------------------------------------------
# New deliveries are not sent to workers one message each (a Celery publish was the largest
# part of an ack). The inbox row is the work item: a drain task claims the tenant's pending
# rows in batches (FOR UPDATE SKIP LOCKED, DRAIN_BATCH at a time, each batch one transaction
# with a savepoint per row) until none is left. The ack path requests a drain
# with one atomic "add" in the shared cache (a lease per tenant) and publishes a message only
# when it took the lease, so a busy tenant costs one message per drain, not per delivery.
#
# Why no delivery is left behind: the ack adds the lease after its INSERT committed. If the
# add fails, a drain holds the lease; that drain deletes the lease *before* its final look
# for pending rows, so that look sees the row (or another drain has it locked). A drain
# that dies leaves the lease to expire (DRAIN_LEASE) and its rows to the sweeper.


def _drain_key(tenant_id: int, slot: int) -> str:
    return f"integrations:drain:{tenant_id}:{slot}"


@lru_cache(maxsize=1)
def _shared_leases() -> bool:
    """Leases need a cache every process shares (Redis). The embedded demo's in-process
    cache is not: there every delivery sends its own drain message."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    return isinstance(caches["default"], RedisCache)


def _publish_drain(tenant_id: int, slot: int) -> bool:
    from integrations.tasks import drain_inbox

    try:
        drain_inbox.delay(tenant_id, slot)
    except Exception:
        logger.exception("could not request an inbox drain for tenant %s; the sweeper will", tenant_id)
        _release_drain(tenant_id, slot)  # let the next delivery try again
        return False
    return True


def _take_drain(tenant_id: int, slot: int) -> bool:
    if not _shared_leases():
        return True
    try:
        return bool(cache.add(_drain_key(tenant_id, slot), 1, DRAIN_LEASE))
    except Exception:
        logger.warning("cache unavailable; requesting an inbox drain for tenant %s anyway", tenant_id)
        return True


def _release_drain(tenant_id: int, slot: int) -> None:
    if not _shared_leases():
        return
    try:
        cache.delete(_drain_key(tenant_id, slot))
    except Exception:
        logger.warning("cache unavailable; the drain lease of tenant %s expires by itself", tenant_id)


def _refresh_drain(tenant_id: int, slot: int) -> None:
    if not _shared_leases():
        return
    try:
        cache.set(_drain_key(tenant_id, slot), 1, DRAIN_LEASE)
    except Exception:
        logger.warning("cache unavailable; could not extend the drain lease of tenant %s", tenant_id)


def delivery_request_drain(*, tenant_id: int) -> bool:
    """After a new inbox row committed: make sure a drain of the tenant's inbox will see it.
    True when this call sent the drain message (False: a running drain will)."""
    if not _take_drain(tenant_id, 0):
        return False
    return _publish_drain(tenant_id, 0)


# --- The inbox: process ---------------------------------------------------------------------


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the `attempts`-th failure: 30 s, 1 min, 2 min, … capped at an hour."""
    return timedelta(seconds=min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS))


def _claim(tenant: Tenant, delivery_pk: int) -> WebhookDelivery | None:
    # The row lock is the claim: a second worker skips it, and a crash releases it with
    # the rolled-back work, leaving the row for the sweeper.
    return (
        WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("connection__tenant")  # upserts may create customers of the tenant
        .filter(tenant=tenant, pk=delivery_pk, status__in=[Delivery.PENDING, Delivery.RETRYING])
        .first()
    )


def _claim_batch(tenant: Tenant, limit: int) -> list[WebhookDelivery]:
    """Up to `limit` of the tenant's oldest pending rows that no one else holds, locked."""
    # Oldest first, by the partial index delivery_due; SKIP LOCKED lets drains run side by
    # side. Retrying rows wait for their backoff: the sweeper sends those.
    return list(
        WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("connection__tenant")
        .filter(tenant=tenant, status=Delivery.PENDING)
        .order_by("next_attempt_at")[:limit]
    )


def _fanout_key(delivery: WebhookDelivery) -> tuple[Any, str, str]:
    return (delivery.connection_id, delivery.event_id, delivery.topic)


@lru_cache(maxsize=1)
def _done_copies_sql() -> str:
    quote = db_connection.ops.quote_name
    table = quote(WebhookDelivery._meta.db_table)
    columns = ", ".join(f"d.{quote(c)}" for c in ("id", "connection_id", "event_id", "topic", "received_at"))
    # One index lookup per key, on every column of delivery_event. A plain IN list let the
    # planner read the connection's whole history through (tenant, connection) and filter
    # the event ids, whenever its statistics were older than a burst of deliveries.
    return (
        f"SELECT {columns} FROM unnest(%s::uuid[], %s::text[], %s::text[]) AS k(connection_id, event_id, topic) "  # noqa: S608
        f"CROSS JOIN LATERAL (SELECT * FROM {table} d WHERE d.{quote('tenant_id')} = %s "
        f"AND d.{quote('connection_id')} = k.connection_id AND d.{quote('event_id')} = k.event_id "
        f"AND d.{quote('topic')} = k.topic AND NOT (d.{quote('event_id')} = '') "
        f"AND d.{quote('status')} = %s) d"
    )


def _done_copies(tenant_id: int, keys: list[tuple[Any, str, str]]) -> list[tuple[Any, ...]]:
    """(id, connection_id, event_id, topic, received_at) of the tenant's done deliveries
    with these (connection, event id, topic) keys."""
    if db_connection.vendor != "postgresql":
        which = Q(pk__in=[])
        for connection_id, event_id, topic in keys:
            which |= Q(connection_id=connection_id, event_id=event_id, topic=topic)
        return list(
            WebhookDelivery.objects.filter(which, tenant_id=tenant_id, status=Delivery.DONE).values_list(
                "pk", "connection_id", "event_id", "topic", "received_at"
            )
        )
    columns = list(zip(*keys, strict=True))
    with db_connection.cursor() as cursor:
        cursor.execute(
            _done_copies_sql(),
            [[str(c) for c in columns[0]], list(columns[1]), list(columns[2]), tenant_id, Delivery.DONE],
        )
        return cursor.fetchall()


class _Copies:
    """Which rows of a batch are copies of a merchant action already done: the same Shopify
    Event-Id and topic on the same connection, done (by an earlier batch, or earlier in
    this one) and received at most a day before. One query per batch, not per row."""

    def __init__(self, batch: list[WebhookDelivery]) -> None:
        self.done: dict[tuple[Any, str, str], list[datetime]] = {}
        with_event = [d for d in batch if d.event_id]
        if not with_event:
            return
        keys = sorted({_fanout_key(d) for d in with_event}, key=str)
        ours = {d.pk for d in batch}
        found = [row[1:] for row in _done_copies(with_event[0].tenant_id, keys) if row[0] not in ours]
        for connection_id, event_id, topic, received_at in found:
            self.done.setdefault((connection_id, event_id, topic), []).append(received_at)

    def is_copy(self, delivery: WebhookDelivery) -> bool:
        if not delivery.event_id:
            return False
        since = delivery.received_at - timedelta(days=1)
        return any(at >= since for at in self.done.get(_fanout_key(delivery), ()))

    def settled(self, delivery: WebhookDelivery) -> None:
        if delivery.event_id and delivery.status == Delivery.DONE:
            self.done.setdefault(_fanout_key(delivery), []).append(delivery.received_at)


def _is_fanout_copy(delivery: WebhookDelivery) -> bool:
    """Another copy of the same merchant action (same Shopify Event-Id and topic) is done."""
    return _Copies([delivery]).is_copy(delivery)


def _settle(delivery: WebhookDelivery, status: str, error: str = "", now: datetime | None = None) -> None:
    now = now or timezone.now()
    delivery.status = status
    delivery.last_error = error[:2000]
    if status == Delivery.RETRYING:
        delivery.next_attempt_at = now + retry_delay(delivery.attempts)
        delivery.processed_at = None
    else:
        delivery.next_attempt_at = None
        delivery.processed_at = now


def _process_claimed(
    delivery: WebhookDelivery, copies: _Copies | None = None, batch: Any = None, optimistic: bool = False
) -> None:
    """Process a claimed (locked) row and set its outcome on the instance (not saved): the
    caller writes it in its transaction (`_save_outcomes`). `optimistic`: no savepoint
    around the row's writes; a failure raises _Redo (see _drain_batch)."""
    records = _records(delivery, copies)
    if records:
        _apply(delivery, records, batch, optimistic)
    if copies is not None:
        copies.settled(delivery)


def _records(delivery: WebhookDelivery, copies: _Copies | None = None) -> list[Any] | None:
    """The claimed row's normalised records to apply (counting the attempt); None when
    there are none, with the row's outcome set: ignored (disconnected, a copy, nothing to
    apply), dead (bad payload) or retrying."""
    from integrations.normalize import normalize
    from integrations.normalized import PayloadError

    delivery.attempts += 1
    if not delivery.connection.is_active:
        _settle(delivery, Delivery.IGNORED, "The connection was disconnected before this delivery was processed.")
        return None
    if copies.is_copy(delivery) if copies is not None else _is_fanout_copy(delivery):
        _settle(delivery, Delivery.IGNORED, f"A copy of event {delivery.event_id} was already processed.")
        return None
    try:
        payload = json.loads(delivery.body)
    except ValueError as exc:  # verified as JSON on arrival, so only data rot gets here
        _settle(delivery, Delivery.DEAD, f"The stored body is not JSON: {exc}")
        return None
    try:
        records = normalize(delivery.connection.platform, delivery.topic, payload)  # pure: no writes
    except PayloadError as exc:
        _settle(delivery, Delivery.DEAD, str(exc) or "The payload lacks a required field.")
        return None
    except Exception as exc:
        _failed(delivery, exc)
        return None
    if not records:
        _settle(delivery, Delivery.IGNORED)
        return None
    return records


def _failed(delivery: WebhookDelivery, exc: Exception) -> None:
    """Anything but a payload error is taken as transient (a database hiccup, a deploy
    mid-flight, a bug fixed by the next release): retried with backoff, dead after
    MAX_ATTEMPTS."""
    logger.exception("delivery %s failed (attempt %s)", delivery.pk, delivery.attempts)
    reason = f"{type(exc).__name__}: {exc}"
    if delivery.attempts >= MAX_ATTEMPTS:
        _settle(delivery, Delivery.DEAD, f"Gave up after {delivery.attempts} attempts. {reason}")
    else:
        _settle(delivery, Delivery.RETRYING, reason)


_OUTCOME_FIELDS = ("status", "attempts", "last_error", "next_attempt_at", "processed_at")


def _save_outcomes(deliveries: list[WebhookDelivery]) -> None:
    """Write the outcomes of processed rows: one UPDATE per distinct outcome (a batch that
    went well is one statement)."""
    now = timezone.now()
    groups: dict[tuple[Any, ...], list[int]] = {}
    for delivery in deliveries:
        if delivery.processed_at is not None:
            delivery.processed_at = now  # when the outcome is written: one value per batch
        outcome = tuple(getattr(delivery, name) for name in _OUTCOME_FIELDS)
        groups.setdefault(outcome, []).append(delivery.pk)
    for outcome, pks in groups.items():
        WebhookDelivery.objects.filter(pk__in=pks).update(**dict(zip(_OUTCOME_FIELDS, outcome, strict=True)))


def delivery_process(*, tenant: Tenant, delivery_pk: int) -> str | None:
    """Process one inbox row; returns its new status, or None when there was nothing to do
    (already processed, or another worker holds it). Safe to call any number of times."""
    with transaction.atomic():
        delivery = _claim(tenant, delivery_pk)
        if delivery is None:
            return None
        _process_claimed(delivery)
        _save_outcomes([delivery])
    _touch_connection(delivery)
    return delivery.status


class _Redo(Exception):
    """A row of an optimistic batch failed: the batch rolls back and runs again with a
    savepoint per row."""


def _drain_batch(tenant: Tenant, limit: int = DRAIN_BATCH) -> list[WebhookDelivery]:
    """Claim up to `limit` of the tenant's oldest pending rows, process them and commit
    them together; the rows processed (empty when none was left).

    Optimistic first: on Postgres the rows' records are applied together, one statement
    per table for the whole batch (upsert.apply_many); otherwise (or when a row's records
    are privacy requests) one row after the other, without savepoints. When anything fails,
    the whole batch rolls back (its locks go, nothing of it was written) and runs again
    with each row's writes in a savepoint, so the failing row rolls back alone and is
    settled like any failure while the others are applied. The outcomes are written at the
    end, in the same transaction as the work. Reads that cannot change within a batch
    (notice rules, SLA policies) are made once per batch (upsert.Batch).
    """
    try:
        return _drain_batch_once(tenant, limit, optimistic=True)
    except _Redo as exc:
        logger.warning("a delivery failed; redoing its batch with a savepoint per row (%s)", exc.__cause__)
        return _drain_batch_once(tenant, limit, optimistic=False)


def _drain_batch_once(tenant: Tenant, limit: int, optimistic: bool) -> list[WebhookDelivery]:
    from integrations import upsert

    with transaction.atomic():
        deliveries = _claim_batch(tenant, limit)
        if not deliveries:
            return []
        if db_connection.vendor == "postgresql":
            # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: checked at COMMIT, one
            # bad row would fail the whole batch there, again on every retry. Checked at
            # each statement, it fails inside its row, which the redo path settles alone.
            with db_connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        copies = _Copies(deliveries)
        batch = upsert.Batch()
        if not optimistic:
            for delivery in deliveries:
                _process_claimed(delivery, copies, batch)
        else:
            work = []
            for delivery in deliveries:
                records = _records(delivery, copies)
                if records:
                    _settle(delivery, Delivery.DONE)  # unless the apply fails: then all is redone
                    work.append((delivery, records))
                copies.settled(delivery)
            if work and upsert.batchable(r for _, records in work for r in records):
                try:
                    upsert.apply_many([(d.connection, records, d.received_at) for d, records in work], batch)
                except Exception as exc:
                    raise _Redo(f"deliveries {work[0][0].pk}..{work[-1][0].pk}") from exc
            else:
                for delivery, records in work:
                    _apply(delivery, records, batch, optimistic=True)
        _save_outcomes(deliveries)
    return deliveries


def delivery_drain(*, tenant: Tenant, slot: int = 0) -> int:
    """Process the tenant's pending deliveries until none is left (see "The inbox: drain");
    returns how many. Safe to run any number of times, side by side."""
    deadline = time.monotonic() + DRAIN_SECONDS
    processed = 0
    newest: dict[Any, WebhookDelivery] = {}  # per connection, for last_delivery_at
    fanned_out = slot != 0 or not _shared_leases()
    released = False
    lingered = 0.0
    try:
        while True:
            batch = _drain_batch(tenant, min(DRAIN_BATCH, DRAIN_MAX - processed))
            if not batch:
                if released:
                    break
                if processed >= DRAIN_LINGER_AFTER and lingered < DRAIN_LINGER_MAX and time.monotonic() < deadline:
                    time.sleep(DRAIN_LINGER)  # a burst: the next deliveries are on their way
                    lingered += DRAIN_LINGER
                    continue
                # Let go first, then look once more: a delivery whose ack found the lease
                # taken committed before this point, so the look finds it.
                _release_drain(tenant.pk, slot)
                released = True
                continue
            released = False
            processed += len(batch)
            for delivery in batch:
                newest[delivery.connection_id] = delivery
            if not fanned_out and processed >= DRAIN_FAN_OUT_AFTER:
                fanned_out = True  # a backlog: let more worker processes help
                for extra in range(1, DRAIN_SLOTS):
                    if _take_drain(tenant.pk, extra):
                        _publish_drain(tenant.pk, extra)
            if processed >= DRAIN_MAX or time.monotonic() >= deadline:
                # Hand over to a new message (other tenants' tasks get their turn), keeping
                # the lease so acks meanwhile send nothing.
                _refresh_drain(tenant.pk, slot)
                _publish_drain(tenant.pk, slot)
                break
    except Exception:
        _release_drain(tenant.pk, slot)  # the next delivery requests a new drain
        raise
    finally:
        for delivery in newest.values():
            _touch_connection(delivery)
    return processed


def _apply(delivery: WebhookDelivery, records: list[Any], batch: Any = None, optimistic: bool = False) -> None:
    """Apply one claimed delivery's records inside a savepoint (`optimistic`: without one,
    raising _Redo when the apply fails); settle its status."""
    from integrations import upsert
    from integrations.normalized import PayloadError

    try:
        # upsert.apply is atomic (a savepoint here): a failure rolls back its writes and
        # leaves the claim's transaction usable for the outcome.
        upsert.apply(
            connection=delivery.connection,
            records=records,
            received_at=delivery.received_at,
            batch=batch,
            savepoint=not optimistic,
        )
    except Exception as exc:
        if optimistic:
            raise _Redo(f"delivery {delivery.pk}") from exc  # the apply's writes are not undone
        if isinstance(exc, PayloadError):
            _settle(delivery, Delivery.DEAD, str(exc) or "The payload lacks a required field.")
        else:
            _failed(delivery, exc)
    else:
        _settle(delivery, Delivery.DONE)


def _touch_connection(delivery: WebhookDelivery) -> None:
    # At most one write a minute per connection, outside the processing transaction so
    # that busy workers never queue on the connection row.
    Connection.objects.filter(tenant_id=delivery.tenant_id, pk=delivery.connection_id).filter(
        Q(last_delivery_at__isnull=True) | Q(last_delivery_at__lt=delivery.received_at - TOUCH_INTERVAL)
    ).update(last_delivery_at=delivery.received_at)


@transaction.atomic
def delivery_sweep(*, tenant: Tenant) -> list[int]:
    """Ids of pending/retrying rows whose time has come (their message was lost, or their
    backoff is over), leased for SWEEP_LEASE so the next sweep does not send them again."""
    now = timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            tenant=tenant,
            status__in=[Delivery.PENDING, Delivery.RETRYING],
            next_attempt_at__lte=now,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    if due:
        WebhookDelivery.objects.filter(
            tenant=tenant, pk__in=due, status__in=[Delivery.PENDING, Delivery.RETRYING]
        ).update(next_attempt_at=now + SWEEP_LEASE)
        tenant_id = tenant.pk
        for pk in due:
            transaction.on_commit(partial(delivery_enqueue, tenant_id=tenant_id, delivery_pk=pk))
    return due


@transaction.atomic
def delivery_replay(*, delivery: WebhookDelivery, actor: Actor) -> WebhookDelivery:
    """Send a dead letter round again: back to pending with fresh attempts, enqueued after
    commit. Anything but a dead letter of a live connection is refused."""
    if not delivery.connection.is_active:
        raise ValidationError("The connection is disconnected; its deliveries are history.")
    now = timezone.now()
    previous_error = delivery.last_error
    replayed = WebhookDelivery.objects.filter(
        tenant_id=delivery.tenant_id, pk=delivery.pk, status=Delivery.DEAD
    ).update(
        status=Delivery.PENDING,
        attempts=0,
        last_error="",
        processed_at=None,
        next_attempt_at=now + PENDING_GRACE,
    )
    if not replayed:
        raise ValidationError("Only dead letters can be replayed; this delivery is not one (any more).")
    delivery.refresh_from_db()
    audit_record(
        tenant=delivery.connection.tenant,
        actor=actor,
        action="delivery.replay",
        target=delivery,
        changes={
            "connection": str(delivery.connection_id),
            "topic": delivery.topic,
            "last_error": previous_error[:200],
        },
    )
    tenant_id, pk = delivery.tenant_id, delivery.pk
    transaction.on_commit(lambda: delivery_enqueue(tenant_id=tenant_id, delivery_pk=pk))
    return delivery


# --- Store health (reader) ------------------------------------------------------------------


class _Median(Aggregate):
    """Postgres `percentile_cont(0.5) WITHIN GROUP (ORDER BY …)`."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()


@dataclass
class ConnectionHealth:
    last_hour: dict[str, int]
    last_day: dict[str, int]
    signature_failures: int
    lag_median: timedelta | None
    dead_total: int
    dead_letters: list[WebhookDelivery]
    last_received_at: datetime | None
    last_reconciled_at: datetime | None
    silent: bool

    @property
    def by_status(self) -> list[tuple[str, str, int, int]]:
        """(status, label, last hour, last 24 hours) for every inbox status."""
        return [(value, str(label), self.last_hour[value], self.last_day[value]) for value, label in Delivery.choices]


def connection_health(*, connection: Connection) -> ConnectionHealth:
    """The store health page's figures in a fixed handful of aggregate queries."""
    now = timezone.now()
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    inbox = WebhookDelivery.objects.filter(tenant_id=connection.tenant_id, connection=connection)
    last_hour = dict.fromkeys(Delivery.values, 0)
    last_day = dict.fromkeys(Delivery.values, 0)
    for row in (
        inbox.filter(received_at__gte=day_ago)
        .values("status")
        .annotate(day=Count("id"), hour=Count("id", filter=Q(received_at__gte=hour_ago)))
        .order_by()
    ):
        last_day[row["status"]] = row["day"]
        last_hour[row["status"]] = row["hour"]
    processed = inbox.filter(received_at__gte=hour_ago, processed_at__isnull=False)
    lag = ExpressionWrapper(F("processed_at") - F("received_at"), output_field=DurationField())
    lag_median: timedelta | None
    if db_connection.vendor == "postgresql":
        lag_median = processed.aggregate(median=_Median(lag))["median"]
    else:  # the embedded SQLite demo: a bounded sample, in Python
        lags = list(processed.annotate(lag=lag).values_list("lag", flat=True)[:5000])
        lag_median = statistics.median(lags) if lags else None
    dead = inbox.filter(status=Delivery.DEAD)
    dead_letters = list(
        dead.only(
            "id",
            "tenant_id",
            "connection_id",
            "delivery_id",
            "topic",
            "received_at",
            "attempts",
            "last_error",
        ).order_by("-received_at")[:DEAD_LETTERS_SHOWN]
    )
    dead_total = len(dead_letters) if len(dead_letters) < DEAD_LETTERS_SHOWN else dead.count()
    last_received_at = inbox.order_by("-received_at").values_list("received_at", flat=True).first()
    since = last_received_at or connection.created_at
    return ConnectionHealth(
        last_hour=last_hour,
        last_day=last_day,
        signature_failures=signature_failures(str(connection.pk)),
        lag_median=lag_median,
        dead_total=dead_total,
        dead_letters=dead_letters,
        last_received_at=last_received_at,
        last_reconciled_at=connection.last_reconciled_at,
        silent=connection.is_active and since < now - SILENCE_WARNING,
    )
