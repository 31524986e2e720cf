"""Webhook benchmarks: the Shopify acknowledgement path under load, and ingest end to end.

Run through bench/run.py (scenarios ``webhook_ack`` and ``webhook_e2e``):

    .venv/bin/python bench/run.py --skip-generate --only webhook_ack,webhook_e2e

- ``webhook_ack``: a Shopify connection is made for ``bench-000`` (through
  ``integrations.services.connection_create``, with a random secret kept in memory); N
  keep-alive senders on 127.0.0.1 post signed ``orders/updated`` bodies (2–4 KB, REST
  shape of CONTRACTS.md §1.5, a fresh ``X-Shopify-Webhook-Id`` per request) to the hooks server
  run.py started, for the usual warm-up + duration. Reported: acks/s, latency
  percentiles, non-2xx, and in-process the SQL per delivery (Django test Client +
  CaptureQueriesContext, warm cache) and a cProfile breakdown of the ack path. A new
  delivery requests a drain of the tenant's inbox after commit (one cache ADD; a Celery
  message only when it takes the drain lease); no worker runs, so the bench Redis queue
  (``celery``) is purged and the drain leases released afterwards.
- ``webhook_e2e``: one real Celery worker (prefork, ``--worker-concurrency`` processes,
  queue ``celery``, same environment as the server) is started and warmed up; then N
  distinct deliveries (``--webhook-events``, default 5,000; each a different order) are
  posted as fast as the senders go, and the bench polls the inbox until every one of them
  is settled. Reported: events/s from the first delivery received to the last one
  processed (inbox timestamps), ack rate while posting, processing lag p50/p99, statuses,
  orders created, queue depth, worker CPU, and the SQL of one processed delivery. The
  worker is stopped by its PID.

Data hygiene: the connections made here are deleted at the end (their inbox rows and
orders go with them), as are the customers the e2e orders created; bench-000 customers
that received an order lose the connection's key in ``external_ids`` again. Each existing
customer gets at most one order, so no tier (and no SLA) changes.

The sender is this file run as a script (``python bench/webhooks.py send …``): a separate
process, like load.py, so the driver and the orchestrator do not share a GIL. The secret
comes from the environment (BENCH_WEBHOOK_SECRET), never the command line.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import hmac
import http.client
import itertools
import json
import os
import pstats
import random
import resource
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    HOT_SLUG,
    PYTHON,
    RESULTS_DIR,
    ROOT,
    child_pids,
    percentile,
    proc_cpu_seconds,
)

CELERY = str(ROOT / ".venv" / "bin" / "celery")
ALLOWED_HOSTS = ("127.0.0.1", "localhost")
TOPIC = "orders/updated"
API_VERSION = "2026-04"
QUEUE = "celery"  # Celery's default queue, the one drain_inbox goes to
ACK_TARGET = ">=1,200 acks/s (aim 1,500), p99<50ms"
E2E_TARGET = ">=500 events/s"
ACK_POOL = 2_000  # distinct bodies the ack senders cycle through (each delivery id is new)

PRODUCTS = (
    ("Linen shirt", "LIN-SHIRT", "69.00"),
    ("Merino sweater", "MER-SWT", "89.00"),
    ("Slim chinos", "CHINO", "79.00"),
    ("Wrap dress", "WRAP-DRS", "59.90"),
    ("Organic T-shirt", "ORG-TEE", "29.00"),
    ("Merino socks (2-pack)", "SOCK-2PK", "15.00"),
    ("Rain shell", "RAIN-SHL", "149.00"),
    ("Leather belt", "BELT", "49.00"),
)
CITIES = (
    ("Kastanienallee 21", "Berlin", "10435", "Germany", "DE"),
    ("Calle Mayor 5", "Madrid", "28013", "Spain", "ES"),
    ("Via Tortona 15", "Milano", "20144", "Italy", "IT"),
    ("Prinsengracht 263", "Amsterdam", "1016 GV", "Netherlands", "NL"),
    ("Rue de Charonne 34", "Paris", "75011", "France", "FR"),
)


# --- Payloads (pure: the sender builds them without Django) ---------------------------------


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def order_body(n: int, run: str, email: str, now: datetime) -> bytes:
    """A Shopify `orders/updated` body (compact JSON, 2–4 KB) for order n of this run."""
    rng = random.Random(f"{run}:{n}")  # noqa: S311 - bench data
    run_key = int(hashlib.sha256(run.encode()).hexdigest(), 16) % 10_000
    order_id = 6_100_000_000_000 + run_key * 10_000_000 + n
    number = 100_000 + n
    created = now - timedelta(hours=rng.uniform(2, 72))
    street, city, zip_code, country, code = CITIES[n % len(CITIES)]
    first, last = f"Bench{n % 997}", f"Customer{n}"
    address = {
        "first_name": first,
        "last_name": last,
        "name": f"{first} {last}",
        "company": None,
        "address1": street,
        "address2": "",
        "city": city,
        "province": None,
        "province_code": None,
        "zip": zip_code,
        "country": country,
        "country_code": code,
        "phone": None,
    }
    lines = []
    subtotal = 0.0
    for i, (title, sku, price) in enumerate(rng.sample(PRODUCTS, rng.randint(1, 3))):
        quantity = rng.choice((1, 1, 1, 2))
        subtotal += float(price) * quantity
        shipped = rng.random() < 0.5
        lines.append(
            {
                "id": order_id * 10 + i,
                "admin_graphql_api_id": f"gid://shopify/LineItem/{order_id * 10 + i}",
                "product_id": 8_120_000_000 + i,
                "variant_id": 44_100_000_000 + i,
                "sku": f"{sku}-M",
                "title": title,
                "variant_title": "M",
                "name": f"{title} - M",
                "vendor": "Bench Apparel",
                "quantity": quantity,
                "price": price,
                "total_discount": "0.00",
                "fulfillable_quantity": 0 if shipped else quantity,
                "fulfillment_status": "fulfilled" if shipped else None,
                "requires_shipping": True,
                "taxable": True,
                "gift_card": False,
                "properties": [],
            }
        )
    shipping = 0.0 if subtotal >= 80 else 4.95
    total = subtotal + shipping
    fulfilled = [line for line in lines if line["fulfillment_status"]]
    body = {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": f"#{number}",
        "order_number": number,
        "number": number - 1000,
        "email": email,
        "contact_email": email,
        "phone": None,
        "financial_status": "paid",
        "fulfillment_status": None if not fulfilled else "fulfilled" if len(fulfilled) == len(lines) else "partial",
        "currency": "EUR",
        "presentment_currency": "EUR",
        "taxes_included": True,
        "total_line_items_price": f"{subtotal:.2f}",
        "subtotal_price": f"{subtotal:.2f}",
        "total_discounts": "0.00",
        "total_tax": f"{total - total / 1.19:.2f}",
        "total_price": f"{total:.2f}",
        "created_at": _iso(created),
        "processed_at": _iso(created),
        "updated_at": _iso(now),
        "cancelled_at": None,
        "cancel_reason": None,
        "closed_at": None,
        "source_name": "web",
        "payment_gateway_names": ["shopify_payments"],
        "tags": "bench",
        "note": None,
        "test": False,
        "customer": {
            "id": 7_300_000_000_000 + run_key * 10_000_000 + n,
            "email": email,
            "first_name": first,
            "last_name": last,
            "phone": None,
            "state": "enabled",
            "verified_email": True,
        },
        "shipping_address": address,
        "billing_address": address,
        "shipping_lines": [
            {"id": order_id * 10 + 9, "title": "Standard", "code": "standard", "price": f"{shipping:.2f}"}
        ],
        "line_items": lines,
        "fulfillments": [],
        "refunds": [],
    }
    if fulfilled:
        tracking = f"00340434{order_id % 10**12:012d}"
        body["fulfillments"].append(
            {
                "id": order_id * 10 + 8,
                "order_id": order_id,
                "name": f"#{number}.1",
                "status": "success",
                "shipment_status": rng.choice(["in_transit", "in_transit", "out_for_delivery", "delivered"]),
                "created_at": _iso(created + timedelta(hours=20)),
                "updated_at": _iso(now),
                "tracking_company": "DHL Paket",
                "tracking_number": tracking,
                "tracking_numbers": [tracking],
                "tracking_url": f"https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode={tracking}",
                "line_items": [{"id": line["id"], "quantity": line["quantity"]} for line in fulfilled],
            }
        )
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers_for(shop: str, signature: str, delivery_id: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "Shopify-Captain-Hook",
        "X-Shopify-Topic": TOPIC,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": API_VERSION,
        "X-Shopify-Webhook-Id": delivery_id,
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "X-Shopify-Hmac-Sha256": signature,
    }


def build_bodies(run: str, start: int, count: int, reuse: list[str], reuse_share: float) -> list[bytes]:
    """`count` distinct orders; a share of them for existing customers (each at most once)."""
    now = datetime.now(UTC)
    every = round(1 / reuse_share) if reuse_share > 0 else 0
    reuse_iter = iter(reuse)
    bodies = []
    for n in range(start, start + count):
        email = next(reuse_iter, None) if every and n % every == 0 else None
        bodies.append(order_body(n, run, email or f"bench-wh-{run}-{n}@example.com", now))
    return bodies


# --- The sender (a separate process) ---------------------------------------------------------


class Sender(threading.Thread):
    def __init__(self, cfg: dict, shared: dict):
        super().__init__(daemon=True)
        self.cfg = cfg
        self.shared = shared
        self.latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.errors = 0
        self.first_error = ""
        self.last_ack = 0.0

    def next_index(self) -> int | None:
        shared, cfg = self.shared, self.cfg
        with shared["lock"]:
            if shared["sent"] >= cfg["max_requests"]:
                return None
            index = shared["sent"]
            shared["sent"] += 1
        return index

    def run(self) -> None:
        cfg, shared = self.cfg, self.shared
        bodies, signatures = cfg["bodies"], cfg["signatures"]
        conn = http.client.HTTPConnection(cfg["host"], cfg["port"], timeout=30)
        perf = time.perf_counter
        while True:
            start = perf()
            if start >= shared["stop_at"]:
                break
            index = self.next_index()
            if index is None:
                break
            k = index % len(bodies)
            headers = headers_for(cfg["shop"], signatures[k], f"{cfg['run']}-{index}-{uuid.uuid4().hex[:12]}")
            try:
                conn.request("POST", cfg["path"], body=bodies[k], headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(cfg["host"], cfg["port"], timeout=30)
                if start >= shared["measure_from"]:
                    self.errors += 1
                    self.statuses["transport"] = self.statuses.get("transport", 0) + 1
                    self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"
                continue
            elapsed = perf() - start
            self.last_ack = time.time()
            if start < shared["measure_from"]:
                continue
            self.latencies.append(elapsed)
            key = str(status)
            self.statuses[key] = self.statuses.get(key, 0) + 1
            if not 200 <= status < 300:
                self.errors += 1
                if not self.first_error:
                    self.first_error = f"HTTP {status}: {data[:300].decode(errors='replace')}"
        conn.close()


def send(args: argparse.Namespace) -> dict:
    url = urllib.parse.urlsplit(args.url)
    if url.scheme != "http" or url.hostname not in ALLOWED_HOSTS:
        raise SystemExit(f"webhooks: only http://127.0.0.1 targets are allowed, not {args.url}")
    secret = os.environ.get("BENCH_WEBHOOK_SECRET", "")
    if not secret:
        raise SystemExit("webhooks: BENCH_WEBHOOK_SECRET is not set")
    reuse = [e for e in os.environ.get("BENCH_REUSE_EMAILS", "").splitlines() if e.strip()]
    timed = args.count == 0
    built = time.perf_counter()
    bodies = build_bodies(args.run, args.start, ACK_POOL if timed else args.count, reuse, args.reuse_share)
    signatures = [sign(secret, body) for body in bodies]
    build_s = time.perf_counter() - built
    sizes = sorted(len(b) for b in bodies)
    if use_wrk(args):
        result = send_wrk(args, url, bodies, signatures, timed)
        result.update({"body_bytes": {"min": sizes[0], "p50": sizes[len(sizes) // 2], "max": sizes[-1]}})
        result["build_s"] = round(build_s, 2)
        return result
    cfg = {
        "host": url.hostname,
        "port": url.port or 80,
        "path": url.path,
        "shop": args.shop,
        "run": args.run,
        "bodies": bodies,
        "signatures": signatures,
        "max_requests": args.max_requests if timed else args.count,
    }
    now = time.perf_counter()
    warmup = args.warmup if timed else 0.0
    duration = args.duration if timed else args.timeout
    shared = {
        "measure_from": now + warmup,
        "stop_at": now + warmup + duration,
        "lock": threading.Lock(),
        "sent": 0,
    }
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    first_sent = time.time()
    senders = [Sender(cfg, shared) for _ in range(args.clients)]
    for s in senders:
        s.start()
    for s in senders:
        s.join(timeout=warmup + duration + 60)
    end = time.perf_counter()
    wall = (min(end, shared["stop_at"]) if timed else end) - shared["measure_from"]
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    latencies = sorted(x for s in senders for x in s.latencies)
    statuses: dict[str, int] = {}
    for s in senders:
        for k, v in s.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    n = len(latencies)
    ms = 1000.0
    return {
        "requests": n,
        "all_requests": shared["sent"],
        "seconds": round(wall, 3),
        "rps": round(n / wall, 1) if wall > 0 else 0.0,
        "p50_ms": round(percentile(latencies, 50) * ms, 2) if n else None,
        "p90_ms": round(percentile(latencies, 90) * ms, 2) if n else None,
        "p99_ms": round(percentile(latencies, 99) * ms, 2) if n else None,
        "max_ms": round(latencies[-1] * ms, 2) if n else None,
        "errors": sum(s.errors for s in senders),
        "non_2xx": sum(v for k, v in statuses.items() if not k.startswith("2")),
        "statuses": statuses,
        "first_error": next((s.first_error for s in senders if s.first_error), ""),
        "clients": args.clients,
        "client_cpu_pct": round(100 * cpu / max(wall + warmup, 1e-9), 1),
        "body_bytes": {"min": sizes[0], "p50": sizes[len(sizes) // 2], "max": sizes[-1]},
        "build_s": round(build_s, 2),
        "first_sent_unix": first_sent,
        "last_ack_unix": max((s.last_ack for s in senders), default=0.0),
        "driver": "python",
    }


def use_wrk(args: argparse.Namespace) -> bool:
    from bench.wrk import available

    if args.driver == "wrk" and not available():
        raise SystemExit("webhooks: --driver wrk, but wrk is not installed (apt-get install wrk)")
    return args.driver != "python" and available()


def send_wrk(args: argparse.Namespace, url, bodies: list[bytes], signatures: list[str], timed: bool) -> dict:
    """The same deliveries through wrk (bench/wrk.py): each request a new Webhook-Id and
    Event-Id (run prefix + request number), bodies cycled with their signatures."""
    from bench.wrk import Wrk

    headers = headers_for(args.shop, "", "")
    for name in ("X-Shopify-Webhook-Id", "X-Shopify-Event-Id", "X-Shopify-Hmac-Sha256"):
        del headers[name]
    load = Wrk(
        host=url.hostname or "",
        port=url.port or 80,
        method="POST",
        path=url.path,
        clients=args.clients,
        headers=headers,
        bodies=bodies,
        body_headers=[{"X-Shopify-Hmac-Sha256": s} for s in signatures],
        unique={"X-Shopify-Webhook-Id": f"{args.run}-", "X-Shopify-Event-Id": f"{args.run}-e"},
    )
    first_sent = time.time()
    if timed:
        result = load.timed(warmup=args.warmup, duration=args.duration)
    else:
        result = load.count(args.count, timeout=args.timeout)
    result["first_sent_unix"] = first_sent
    return result


def drive(
    port: int,
    path: str,
    shop: str,
    secret: str,
    args,
    *,
    count: int = 0,
    run: str,
    start: int = 0,
    reuse: list[str] | None = None,
    reuse_share: float = 0.0,
    wait: bool = True,
):
    """Start the sender process; its JSON result (wait=True) or the Popen (wait=False)."""
    cmd = [
        PYTHON,
        str(Path(__file__).resolve()),
        "send",
        "--url",
        f"http://127.0.0.1:{port}{path}",
        "--shop",
        shop,
        "--run",
        run,
        "--start",
        str(start),
        "--clients",
        str(args.clients),
        "--reuse-share",
        str(reuse_share),
        "--driver",
        getattr(args, "driver", "auto"),
    ]
    if count:
        cmd += ["--count", str(count), "--timeout", str(args.webhook_timeout)]
    else:
        cmd += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env["BENCH_WEBHOOK_SECRET"] = secret
    if reuse:
        env["BENCH_REUSE_EMAILS"] = "\n".join(reuse)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return proc
    return finish(proc, timeout=args.warmup + args.duration + args.webhook_timeout + 120)


def finish(proc: subprocess.Popen, timeout: float) -> dict:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
    if proc.returncode != 0:
        raise RuntimeError(f"webhook sender failed: {err[-1000:]}")
    return json.loads(out.strip().splitlines()[-1])


# --- In-process set-up and measurements (Django is set up by run.py) ------------------------


class Hooks:
    """The bench's webhook connections and what to clean up afterwards."""

    def __init__(self, reuse_emails: list[str]):
        self.run = f"{time.strftime('%m%d%H%M%S')}{secrets.token_hex(2)}"
        self.reuse_emails = reuse_emails
        self.connections: list = []
        self.ack = None  # (connection, secret, shop, path)

    def connect(self, label: str):
        """A Shopify connection for bench-000 with a known secret: (connection, secret, shop, path)."""
        from helpdesk.models import Tenant
        from helpdesk.services import Actor
        from integrations.services import connection_create

        tenant = Tenant.objects.get(slug=HOT_SLUG)
        shop = f"{HOT_SLUG}-{label}-{self.run}.myshopify.com"
        secret = secrets.token_urlsafe(32)
        connection, _ = connection_create(
            tenant=tenant,
            platform="shopify",
            name=f"bench {label} {self.run}",
            actor=Actor.system(),
            shop_domain=shop,
            webhook_secret=secret,
        )
        self.connections.append(connection)
        return connection, secret, shop, f"/hooks/shopify/{connection.pk}/"

    def ack_connection(self):
        if self.ack is None:
            self.ack = self.connect("ack")
        return self.ack


def _test_post(client, path: str, shop: str, secret: str, body: bytes, delivery_id: str):
    headers = headers_for(shop, sign(secret, body), delivery_id)
    meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items() if k != "Content-Type"}
    return client.post(path, body, content_type="application/json", **meta)


def _backend_cpu() -> float:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return proc_cpu_seconds(cur.fetchone()[0])


# Functions whose cumulative time tells where the ack path goes (file suffix, name, label).
PROFILE_POINTS = (
    ("django/core/handlers/base.py", "_get_response", "view + view middleware"),
    ("integrations/receivers.py", "receive", "receivers.receive (the view)"),
    ("integrations/services.py", "verification_material", "verification_material (cache GET)"),
    ("integrations/shopify/receiver.py", "verify", "ShopifyReceiver.verify (HMAC)"),
    ("json/__init__.py", "loads", "json.loads (body)"),
    ("integrations/shopify/receiver.py", "identify", "ShopifyReceiver.identify"),
    ("integrations/receivers.py", "kept_headers", "kept_headers"),
    ("integrations/services.py", "delivery_accept", "delivery_accept"),
    ("integrations/services.py", "_insert_ignoring_duplicates", "  INSERT … ON CONFLICT"),
    ("django/db/backends/utils.py", "execute", "    cursor.execute (all SQL)"),
    ("integrations/services.py", "delivery_request_drain", "  delivery_request_drain (lease ADD)"),
    ("integrations/services.py", "_publish_drain", "    _publish_drain (Celery publish, lease taken)"),
    ("celery/app/task.py", "apply_async", "    Task.apply_async"),
    ("kombu/messaging.py", "_publish", "      kombu publish (Redis round trip)"),
    ("django/http/response.py", "__init__", "JsonResponse"),
)


def _timed(fn, n: int) -> dict:
    """CPU and wall ms per call of fn(i), without a profiler."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(n):
        fn(i)
    return {
        "cpu_ms": round((time.process_time() - cpu0) * 1000 / n, 3),
        "wall_ms": round((time.perf_counter() - wall0) * 1000 / n, 3),
    }


def ack_components(hooks: Hooks, n: int = 1_000) -> list[dict]:
    """The ack path's steps timed one by one (no profiler, so no distortion), in-process."""
    from django.http.request import HttpHeaders
    from django.test import Client
    from django.utils import timezone

    from integrations import services
    from integrations.receivers import kept_headers, receiver_for
    from integrations.tasks import drain_inbox

    conn, secret, shop, path = hooks.ack_connection()
    body = build_bodies(f"{hooks.run}c", 0, 1, [], 0.0)[0]
    meta = {
        "HTTP_" + k.upper().replace("-", "_"): v
        for k, v in headers_for(shop, sign(secret, body), "c-0").items()
        if k != "Content-Type"
    }
    meta["CONTENT_TYPE"] = "application/json"
    headers = HttpHeaders(meta)
    receiver = receiver_for("shopify")
    material = services.verification_material(conn.pk)
    client = Client()

    def parse(i):
        payload = json.loads(body.decode("utf-8"))
        receiver.identify(headers, body, payload, {})
        kept_headers(headers)

    def insert(i):
        now = timezone.now()
        services._insert_ignoring_duplicates(
            {
                "tenant": material.tenant_id,
                "connection": uuid.UUID(material.connection_id),
                "delivery_id": f"c-{hooks.run}-{i}-{time.perf_counter_ns()}",
                "event_id": "",
                "topic": TOPIC,
                "received_at": now,
                "triggered_at": None,
                "headers": kept_headers(headers),
                "body": body.decode("utf-8"),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": "",
            }
        )

    steps = [
        ("Django request cycle + middleware, GET /healthz (1 SELECT)", lambda i: client.get("/healthz")),
        ("verification_material (in-process copy)", lambda i: services.verification_material(conn.pk)),
        (
            "verification_material (Redis GET, fresh)",
            lambda i: services.verification_material(conn.pk, fresh=True),
        ),
        ("ShopifyReceiver.verify (HMAC-SHA256 of the body)", lambda i: receiver.verify(material, headers, body)),
        ("json.loads + identify + kept_headers", parse),
        ("INSERT … ON CONFLICT DO NOTHING RETURNING id", insert),
        (
            "delivery_request_drain (lease held: one cache ADD, no message)",
            lambda i: services.delivery_request_drain(tenant_id=material.tenant_id),
        ),
        ("drain_inbox.delay (Celery message, once per drain)", lambda i: drain_inbox.delay(-1)),
    ]
    out = []
    for label, fn in steps:
        fn(-1)  # warm
        out.append({"what": label, **_timed(fn, n)})
    return out


def measure_ack(hooks: Hooks, repeat: int = 200, profile_n: int = 1_500) -> dict:
    """SQL per delivery (first request = cold material cache, then warm), CPU per request
    in-process, and a cProfile breakdown of `profile_n` acks."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    conn, secret, shop, path = hooks.ack_connection()
    bodies = build_bodies(f"{hooks.run}q", 0, 200, [], 0.0)
    client = Client()
    counter = itertools.count()

    def post():
        n = next(counter)
        return _test_post(client, path, shop, secret, bodies[n % len(bodies)], f"q-{hooks.run}-{n}")

    with CaptureQueriesContext(connection) as ctx:
        first = post()
    cold = list(ctx.captured_queries)
    with CaptureQueriesContext(connection) as ctx:
        response = post()
    warm = list(ctx.captured_queries)
    # Duplicate delivery (Shopify retry): acknowledged, nothing stored.
    dup_body = bodies[0]
    _test_post(client, path, shop, secret, dup_body, f"dup-{hooks.run}")
    with CaptureQueriesContext(connection) as ctx:
        dup = _test_post(client, path, shop, secret, dup_body, f"dup-{hooks.run}")
    dup_queries = len(ctx.captured_queries)
    app0, db0 = time.process_time(), _backend_cpu()
    t0 = time.perf_counter()
    for _ in range(repeat):
        post()
    wall_ms = (time.perf_counter() - t0) * 1000 / repeat
    app_ms = (time.process_time() - app0) * 1000 / repeat
    db_ms = (_backend_cpu() - db0) * 1000 / repeat

    profiler = cProfile.Profile()
    profiler.enable()
    t0 = time.perf_counter()
    for _ in range(profile_n):
        post()
    profiled_ms = (time.perf_counter() - t0) * 1000 / profile_n
    profiler.disable()
    stats = pstats.Stats(profiler)
    breakdown = []
    raw = stats.stats  # type: ignore[attr-defined]
    for suffix, name, label in PROFILE_POINTS:
        cum = sum(v[3] for (fname, _, fn), v in raw.items() if fn == name and fname.endswith(suffix))
        calls = sum(v[1] for (fname, _, fn), v in raw.items() if fn == name and fname.endswith(suffix))
        if calls:
            breakdown.append(
                {"what": label, "ms_per_ack": round(cum * 1000 / profile_n, 3), "calls_per_ack": calls / profile_n}
            )
    total_cum = stats.total_tt * 1000 / profile_n  # type: ignore[attr-defined]
    top = sorted(
        ((v[2], v[1], f"{Path(f).name}:{ln}({fn})") for (f, ln, fn), v in raw.items()),
        reverse=True,
    )[:15]
    components = ack_components(hooks)
    return {
        "status": response.status_code,
        "status_first": first.status_code,
        "status_duplicate": dup.status_code,
        "bytes": len(response.content),
        "queries_first": len(cold),
        "queries": len(warm),
        "queries_duplicate": dup_queries,
        "distinct": len({q["sql"] for q in warm}),
        "repeated": [],
        "sql": [q["sql"] for q in warm],
        "sql_first": [q["sql"] for q in cold],
        "app_cpu_ms": round(app_ms, 2),
        "db_cpu_ms": round(db_ms, 2),
        "wall_ms": round(wall_ms, 2),
        "components": components,
        "profile": {
            "acks": profile_n,
            "wall_ms_per_ack_profiled": round(profiled_ms, 3),
            "profiled_ms_per_ack": round(total_cum, 3),
            "breakdown": breakdown,
            "top_self_time": [{"ms_per_ack": round(t * 1000 / profile_n, 4), "calls": c, "fn": f} for t, c, f in top],
        },
    }


def measure_process(hooks: Hooks) -> dict:
    """SQL and CPU of processing one new-order delivery in-process (what the worker runs)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from integrations.models import WebhookDelivery
    from integrations.services import delivery_process

    conn, secret, shop, path = hooks.ack_connection()
    client = Client()
    result = {}
    for label, n in (("new", 900_001), ("steady", 900_002)):
        body = build_bodies(f"{hooks.run}p", n, 1, [], 0.0)[0]
        delivery_id = f"p-{hooks.run}-{n}"
        _test_post(client, path, shop, secret, body, delivery_id)
        row = WebhookDelivery.objects.get(tenant_id=conn.tenant_id, connection=conn, delivery_id=delivery_id)
        app0, db0 = time.process_time(), _backend_cpu()
        with CaptureQueriesContext(connection) as ctx:
            status = delivery_process(tenant=conn.tenant, delivery_pk=row.pk)
        result[label] = {
            "status": status,
            "queries": len(ctx.captured_queries),
            "app_cpu_ms": round((time.process_time() - app0) * 1000, 2),
            "db_cpu_ms": round((_backend_cpu() - db0) * 1000, 2),
            "sql": [q["sql"][:400] for q in ctx.captured_queries],
            "slowest": [
                {"ms": round(float(q["time"]) * 1000, 1), "sql": q["sql"][:600]}
                for q in sorted(ctx.captured_queries, key=lambda q: -float(q["time"]))[:3]
            ],
        }
    return result


def purge_queue() -> int:
    """Drop the queued drain messages (no worker will take them) and release the bench
    tenant's drain leases with them: a lease whose message is gone would hold back the next
    scenario's drains until it expires (what a lost message costs in production)."""
    from helpdesk.celery import app
    from helpdesk.models import Tenant
    from integrations import services

    try:
        purged = int(app.control.purge() or 0)
    except Exception as exc:  # a broker hiccup must not hide the figures
        print(f"  could not purge the Celery queue: {exc}")
        return -1
    tenant_id = Tenant.objects.filter(slug=HOT_SLUG).values_list("id", flat=True).first()
    if tenant_id is not None:
        for slot in range(services.DRAIN_SLOTS):
            services._release_drain(tenant_id, slot)
    return purged


def queue_depth() -> int:
    from helpdesk.celery import app

    try:
        with app.connection_for_write() as conn:
            return int(conn.default_channel.client.llen(QUEUE))
    except Exception:
        return -1


def cleanup(hooks: Hooks) -> dict:
    """Delete the bench's connections (inbox rows and orders go with them) and the customers
    the e2e orders made; existing customers lose the connections' keys again."""
    from django.db import transaction

    from tickets.models import Customer

    purged = purge_queue()
    removed = {"connections": 0, "customers": 0, "purged_messages": purged}
    for connection in hooks.connections:
        key = f"shopify:{connection.pk}"
        with transaction.atomic():
            for customer in Customer.objects.filter(tenant_id=connection.tenant_id, external_ids__has_key=key):
                customer.external_ids = {k: v for k, v in customer.external_ids.items() if k != key}
                customer.save(update_fields=["external_ids"])
            connection.delete()
        removed["connections"] += 1
    if hooks.connections:
        tenant_id = hooks.connections[0].tenant_id
        made = Customer.objects.filter(tenant_id=tenant_id, email__startswith=f"bench-wh-{hooks.run}", tickets=None)
        removed["customers"] = made.delete()[0]
    hooks.connections = []
    hooks.ack = None
    return removed


# --- The scenarios -----------------------------------------------------------------------------


def run_ack(port: int, hooks: Hooks, args) -> dict:
    """webhook_ack against the running hooks server: timed, N keep-alive senders."""
    conn, secret, shop, path = hooks.ack_connection()
    result = drive(port, path, shop, secret, args, run=f"{hooks.run}a")
    from integrations.models import WebhookDelivery

    result["stored"] = WebhookDelivery.objects.filter(tenant_id=conn.tenant_id, connection=conn).count()
    result["queue_depth"] = queue_depth()
    result["purged"] = purge_queue()
    return result


class Worker:
    """One Celery worker (prefork) on the bench database and Redis; stopped by its PID."""

    def __init__(self, env: dict[str, str], concurrency: int):
        self.env = {**env, "CELERY_TASK_ALWAYS_EAGER": "0"}
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None
        self.log_path = RESULTS_DIR / "celery-worker.log"

    def start(self) -> None:
        cmd = [
            CELERY,
            "-A",
            "helpdesk",
            "worker",
            "--pool=prefork",
            f"--concurrency={self.concurrency}",
            "-Q",
            QUEUE,
            "-n",
            f"bench-{uuid.uuid4().hex[:6]}@%h",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ]
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def pids(self) -> list[int]:
        if self.proc is None or self.proc.poll() is not None:
            return []
        return [self.proc.pid, *child_pids(self.proc.pid)]

    def cpu(self) -> dict[int, float]:
        return {pid: proc_cpu_seconds(pid) for pid in self.pids()}

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # warm shutdown: the master stops its children
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _settled(conn, prefix: str) -> dict[str, int]:
    from django.db.models import Count

    from integrations.models import WebhookDelivery

    rows = (
        WebhookDelivery.objects.filter(tenant_id=conn.tenant_id, connection=conn, delivery_id__startswith=prefix)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {r["status"]: r["n"] for r in rows}


def _wait_settled(conn, prefix: str, expected: int, timeout: float, on_poll=None) -> tuple[dict, bool]:
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = _settled(conn, prefix)
        if on_poll:
            on_poll(counts)
        settled = sum(counts.get(s, 0) for s in ("done", "ignored", "dead"))
        if settled >= expected:
            return counts, True
        time.sleep(0.25)
    return counts, False


def _db_activity() -> tuple[float, int]:
    """(ms spent executing statements, sessions opened) in the bench database so far, all
    backends together (pg_stat_database, Postgres 14+). Per-process /proc accounting misses
    the worker's backends: Celery's Django fix-up closes the connection around every task, so
    each task runs on a new backend that is gone before it can be sampled."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute("SELECT active_time, sessions FROM pg_stat_database WHERE datname = current_database()")
        row = cur.fetchone()
    return (float(row[0] or 0), int(row[1] or 0)) if row else (0.0, 0)


def run_e2e(port: int, hooks: Hooks, args, env: dict[str, str]) -> dict:
    """webhook_e2e: one real worker; N distinct deliveries; events/s until the last is done."""
    from django.db import connection as db
    from django.db.models import Max, Min

    from integrations.models import Order, WebhookDelivery
    from tickets.models import Customer

    conn, secret, shop, path = hooks.connect("e2e")
    purge_queue()  # nothing from the ack scenario may reach the worker
    # Nor its inbox rows: a drain takes every pending row of the tenant, oldest first, so the
    # ack scenario's thousands of unprocessed rows would be worked off before this run's.
    retired = (
        WebhookDelivery.objects.filter(tenant_id=conn.tenant_id, status="pending")
        .exclude(connection=conn)
        .filter(connection__in=[c.pk for c in hooks.connections])
        .update(status="ignored", last_error="bench: left unprocessed by the ack scenario")
    )
    worker = Worker(env, args.worker_concurrency)
    result: dict = {
        "events": args.webhook_events,
        "worker": f"prefork x{args.worker_concurrency}",
        "ack_rows_retired": retired,
    }
    worker.start()
    try:
        # Warm-up: the worker is up, imported, connected and has processed a few deliveries.
        t0 = time.monotonic()
        warm_run = f"{hooks.run}w"
        drive(port, path, shop, secret, args, count=20, run=warm_run, start=0)
        counts, ok = _wait_settled(conn, warm_run, 20, timeout=180)
        if not ok:
            tail = worker.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the worker did not process the warm-up deliveries ({counts}):\n{tail}")
        result["warmup_s"] = round(time.monotonic() - t0, 1)

        run = f"{hooks.run}e"
        reuse = hooks.reuse_emails
        share = min(0.25, len(reuse) / max(1, args.webhook_events))
        orders_before = Order.objects.filter(tenant_id=conn.tenant_id, connection=conn).count()
        cpu_worker0, db0 = worker.cpu(), _db_activity()
        depth_peak = 0
        depth_samples = []

        def on_poll(_counts):
            nonlocal depth_peak
            depth = queue_depth()
            depth_peak = max(depth_peak, depth)
            depth_samples.append(depth)

        started = time.time()
        sender = drive(
            port,
            path,
            shop,
            secret,
            args,
            count=args.webhook_events,
            run=run,
            start=1_000,
            reuse=reuse,
            reuse_share=share,
            wait=False,
        )
        counts, ok = _wait_settled(conn, run, args.webhook_events, args.webhook_timeout, on_poll)
        poll_done = time.time()
        sent = finish(sender, timeout=args.webhook_timeout + 60)
        time.sleep(1.5)  # backends report their statistics at least once a second
        cpu_worker1, db1 = worker.cpu(), _db_activity()
        measured = WebhookDelivery.objects.filter(
            tenant_id=conn.tenant_id, connection=conn, delivery_id__startswith=run
        )
        span = measured.aggregate(first=Min("received_at"), last=Max("processed_at"), last_received=Max("received_at"))
        settled = sum(counts.get(s, 0) for s in ("done", "ignored", "dead"))
        seconds = (span["last"] - span["first"]).total_seconds() if span["first"] and span["last"] else 0.0
        lag = {}
        with db.cursor() as cur:
            cur.execute(
                "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at)::float8) "
                "FROM integrations_webhookdelivery WHERE tenant_id = %s AND connection_id = %s "
                "AND delivery_id LIKE %s AND processed_at IS NOT NULL",
                [conn.tenant_id, conn.pk, run + "%"],
            )
            row = cur.fetchone()
            if row and row[0]:
                lag = {"p50_s": round(row[0][0], 2), "p99_s": round(row[0][1], 2)}
        worker_cpu = sum(max(0.0, v - cpu_worker0.get(pid, 0.0)) for pid, v in cpu_worker1.items())
        posting_s = (span["last_received"] - span["first"]).total_seconds() if span["last_received"] else 0.0
        result.update(
            {
                "complete": ok,
                "settled": settled,
                "statuses": counts,
                "seconds": round(seconds, 2),
                "events_per_s": round(settled / seconds, 1) if seconds > 0 else 0.0,
                "poll_seconds": round(poll_done - started, 2),
                "posting_seconds": round(posting_s, 2),
                "ack_rps_while_posting": sent["rps"],
                "ack_p99_ms": sent["p99_ms"],
                "non_2xx": sent["non_2xx"],
                "sender": sent,
                "lag": lag,
                "orders_created": Order.objects.filter(tenant_id=conn.tenant_id, connection=conn).count()
                - orders_before,
                "customers_created": Customer.objects.filter(
                    tenant_id=conn.tenant_id, email__startswith=f"bench-wh-{run}"
                ).count(),
                "existing_customers_share": share,
                "queue_depth_peak": depth_peak,
                "worker_cpu_ms_per_event": round(worker_cpu * 1000 / max(1, settled), 2),
                "db_active_ms_per_event": round((db1[0] - db0[0]) / max(1, settled), 2),
                "db_sessions_opened": db1[1] - db0[1],
            }
        )
    finally:
        worker.stop()
        result["purged_after"] = purge_queue()
    log = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
    result["worker_log_errors"] = log.count("Traceback (most recent call last)") + log.count("ERROR/")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="signed Shopify webhook sender for 127.0.0.1 (see module doc)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("send")
    p.add_argument("--url", required=True)
    p.add_argument("--shop", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--count", type=int, default=0, help="send exactly this many distinct orders (0: timed)")
    p.add_argument("--timeout", type=float, default=600.0, help="bound of a --count run, seconds")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--max-requests", type=int, default=2_000_000)
    p.add_argument("--reuse-share", type=float, default=0.0)
    p.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256:
        parser.error("--clients must be 1..256")
    if not 0 <= args.count <= 200_000:
        parser.error("--count must be 0..200000")
    if not 0 < args.duration <= 600 or not 0 <= args.warmup <= 120 or not 0 < args.timeout <= 3600:
        parser.error("--duration (0, 600], --warmup [0, 120], --timeout (0, 3600] seconds")
    print(json.dumps(send(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
