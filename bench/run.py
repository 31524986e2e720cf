"""Storedesk benchmarks: realistic data, the production web server, figures in a table.

    make bench                                  # 100 tenants x 10,000 tickets, all scenarios
    make bench BENCH_ARGS="--tenants 3 --tickets-per-tenant 2000 --duration 3"
    .venv/bin/python bench/run.py --help

Steps: migrate the bench database and generate data when it holds less than asked
(bench/generate.py); count SQL queries per request in-process (Django test Client +
CaptureQueriesContext); start granian on a free 127.0.0.1 port the way production would
(compose `web`; gunicorn on request, to compare); drive each HTTP scenario with wrk
(bench/wrk.py) or bench/load.py (a separate process, N keep-alive clients, bounded in time);
stop the server by its PID; time one SLA sweep over every tenant in-process and EXPLAIN its
due-clock query; the webhook scenarios (bench/webhooks.py: signed Shopify deliveries to a
second server as compose's `hooks`, and end to end with one real Celery worker); print a
table and write bench/results/latest.json.

Isolation: the bench talks to its servers on 127.0.0.1 only, uses only a database named
*_bench, and by default Redis DB 15 instead of the DB in REDIS_URL (--redis-db keep to
change that), so its cache entries (e.g. SLA policies keyed by tenant id) and any Celery
messages never mix with a dev server's or the tests' on the same Redis.

A scenario whose route is missing (404), or still the "not set up yet" placeholder, is
skipped with a line saying so. Nothing here asserts timing: targets are printed beside the
figures for the report.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import http.cookies
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import generate, webhooks  # noqa: E402
from bench.common import (  # noqa: E402
    HOT_SLUG,
    PASSWORD,
    PYTHON,
    RESULTS_DIR,
    ROOT,
    THREAD_MESSAGES,
    child_pids,
    cursor,
    database_exists,
    database_url,
    describe_db,
    load_average,
    migrate,
    percentile,
    proc_cpu_seconds,
    redis_url,
    setup_django,
)

PLACEHOLDER_MARKER = "Not set up yet"
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
GRANIAN = str(ROOT / ".venv" / "bin" / "granian")


@dataclass
class Scenario:
    name: str
    method: str
    path: str  # may contain {ticket}
    auth: str  # "none" | "session" | "token"
    target: str = ""
    accept: str = "*/*"
    body_kind: str | None = None
    in_default: bool = True
    result: dict = field(default_factory=dict)
    skipped: str = ""
    queries: dict = field(default_factory=dict)


def scenarios() -> list[Scenario]:
    t = HOT_SLUG
    return [
        Scenario("healthz", "GET", "/healthz", "none", "baseline"),
        Scenario("api_me", "GET", "/api/v1/me/", "token", "baseline", accept="application/json"),
        Scenario("queue", "GET", f"/t/{t}/queue/", "session", ">=180 req/s, p99<100ms", "text/html"),
        Scenario(
            "queue_all",
            "GET",
            f"/t/{t}/queue/?view=all",
            "session",
            ">=180 req/s, p99<100ms",
            "text/html",
        ),
        Scenario(
            "api_tickets",
            "GET",
            "/api/v1/tickets/",
            "token",
            ">=220 req/s, p99<100ms",
            "application/json",
        ),
        Scenario(
            "ticket_page",
            "GET",
            f"/t/{t}/tickets/{{ticket}}/",
            "session",
            f">=100 req/s ({THREAD_MESSAGES} messages)",
            "text/html",
        ),
        Scenario(
            "api_create",
            "POST",
            "/api/v1/tickets/",
            "token",
            ">=300 req/s",
            "application/json",
            body_kind="ticket-create",
        ),
        # Signed Shopify deliveries to a connection made for bench-000 (bench/webhooks.py).
        Scenario("webhook_ack", "POST", "/hooks/shopify/<id>/", "webhook", webhooks.ACK_TARGET, "application/json"),
        Scenario("webhook_e2e", "POST", "/hooks/shopify/<id>/", "webhook", webhooks.E2E_TARGET, "application/json"),
    ]


# --- Small HTTP helpers (127.0.0.1 only) -----------------------------------------------


def http_request(
    port: int,
    method: str,
    path: str,
    headers: dict | None = None,
    body: bytes | None = None,
    timeout: float = 30,
):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.getheaders(), data
    finally:
        conn.close()


def cookies_from(headers: list[tuple[str, str]]) -> dict[str, str]:
    jar: dict[str, str] = {}
    for name, value in headers:
        if name.lower() == "set-cookie":
            parsed = http.cookies.SimpleCookie()
            parsed.load(value)
            for key, morsel in parsed.items():
                jar[key] = morsel.value
    return jar


def login(port: int, email: str) -> str:
    """Sign in through the real login form (CSRF included); returns a Cookie header value."""
    status, headers, body = http_request(port, "GET", "/accounts/login/")
    if status != 200:
        raise RuntimeError(f"GET /accounts/login/ answered {status}")
    jar = cookies_from(headers)
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    if "csrftoken" not in jar or not match:
        raise RuntimeError("login page carries no CSRF token")
    form = urllib.parse.urlencode(
        {"username": email, "password": PASSWORD, "csrfmiddlewaretoken": match.group(1).decode()}
    ).encode()
    status, headers, body = http_request(
        port,
        "POST",
        "/accounts/login/",
        {
            "Cookie": f"csrftoken={jar['csrftoken']}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"http://127.0.0.1:{port}/accounts/login/",
        },
        form,
    )
    jar.update(cookies_from(headers))
    if status != 302 or "sessionid" not in jar:
        raise RuntimeError(f"login as {email} failed (HTTP {status})")
    return f"csrftoken={jar['csrftoken']}; sessionid={jar['sessionid']}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the server ----------------------------------------------------------------------------


def parse_server(spec: str) -> tuple[str, int, int]:
    """ "gthread:2x4" -> ("gthread", 2 workers, 4 threads); "sync:3" -> ("sync", 3, 1);
    "granian:2x1" -> ("granian", 2 processes, 1 thread each)."""
    kind, _, size = spec.partition(":")
    if kind not in ("sync", "gthread", "granian"):
        raise SystemExit(f"bench: unknown server kind {kind!r} (sync, gthread or granian)")
    workers, _, threads = (size or "2").partition("x")
    return kind, int(workers), int(threads or (4 if kind == "gthread" else 1))


class Server:
    """A web server as production runs it (granian, for web and for the hooks service; gunicorn
    to compare), on a free 127.0.0.1 port; stopped by its PID."""

    def __init__(self, spec: str, redis: str):
        self.kind, self.workers, self.threads = parse_server(spec)
        self.port = free_port()
        self.redis = redis
        self.proc: subprocess.Popen | None = None
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = RESULTS_DIR / f"{'granian' if self.kind == 'granian' else 'gunicorn'}.log"

    @property
    def label(self) -> str:
        if self.kind == "sync":
            return f"gunicorn sync, {self.workers} workers"
        if self.kind == "granian":
            return f"granian, {self.workers} processes x {self.threads} threads"
        return f"gunicorn gthread, {self.workers} workers x {self.threads} threads"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
        env.update(
            {
                "DATABASE_URL": database_url(),
                "REDIS_URL": self.redis,
                "DEBUG": "0",
                "SECRET_KEY": "bench-not-secret-0123456789abcdefghijklmnopqrstuvwxyz",
                "ALLOWED_HOSTS": "127.0.0.1",
                "SECURE_SSL_REDIRECT": "0",
                "API_RATE_LIMIT": "1000000/min",
                "DB_CONN_MAX_AGE": "600",
                "BASE_URL": f"http://127.0.0.1:{self.port}",
                "EMAIL_URL": "memory:",
                "LOG_LEVEL": "WARNING",
                "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
            }
        )
        return env

    def command(self) -> list[str]:
        if self.kind == "granian":  # as compose's hooks service
            from helpdesk.server import granian_args

            return [
                GRANIAN,
                *granian_args(host="127.0.0.1", port=self.port, workers=self.workers, threads=self.threads),
            ]
        cmd = [
            GUNICORN,
            "helpdesk.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            self.kind,
            "--log-level",
            "warning",
            "--error-logfile",
            str(self.log_path),
            "--timeout",
            "60",
        ]
        if self.kind == "gthread":
            cmd += ["--threads", str(self.threads), "--keep-alive", "5"]
        return cmd

    def start(self) -> None:
        cmd = self.command()
        self.log_path.write_text("")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _, _ = http_request(self.port, "GET", "/healthz", timeout=5)
                if status == 200:
                    return
            time.sleep(0.3)
        tail = self.log_path.read_text()[-3000:]
        self.stop()
        raise SystemExit(f"bench: {self.label} did not answer /healthz with 200:\n{tail}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # the master stops its workers gracefully
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


# --- Preparing identities ----------------------------------------------------------------


def prepare_identities(n_agents: int) -> dict:
    """The hot tenant, an API token for it (secret kept in memory), agents, the thread ticket."""
    from helpdesk.models import Tenant, User
    from helpdesk.services import Actor, api_token_create
    from tickets.models import Customer, Ticket

    tenant = Tenant.objects.get(slug=HOT_SLUG)
    token, plaintext = api_token_create(
        tenant=tenant, name=f"bench {time.strftime('%Y-%m-%d %H:%M:%S')}", actor=Actor.system()
    )
    emails = [f"agent{k}@{HOT_SLUG}.example.com" for k in range(1, 9)]
    agents = list(User.objects.filter(email__in=emails).order_by("email"))
    thread = (
        Ticket.objects.filter(tenant=tenant, message_count=THREAD_MESSAGES)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    reuse = list(
        Customer.objects.filter(tenant=tenant)
        .exclude(email="")
        .exclude(email__startswith="bench-")
        .order_by("id")
        .values_list("email", flat=True)[:500]
    )
    return {
        "tenant": tenant,
        "reuse_emails": reuse,
        "token": token,
        "auth": f"Bearer {plaintext}",
        "agents": agents[: max(1, n_agents)],
        "thread_number": thread,
    }


def revoke(token) -> None:
    from helpdesk.services import Actor, api_token_revoke

    api_token_revoke(token=token, actor=Actor.system())


# --- Queries per request (in-process) ------------------------------------------------------

_NUM = re.compile(r"\b\d+\b")
_STR = re.compile(r"'(?:[^']|'')*'")


def _shape(sql: str) -> str:
    return _NUM.sub("?", _STR.sub("?", sql))


def own_backend_cpu() -> float:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return proc_cpu_seconds(cur.fetchone()[0])


def count_queries(sc: Scenario, ids: dict, path: str, repeat: int = 10) -> dict:
    """Queries of one request (first = cold caches, then steady state), and CPU per request."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    extra = {"HTTP_ACCEPT": sc.accept}
    if sc.auth == "session":
        client.force_login(ids["agents"][0], backend="helpdesk.auth_backends.CachedModelBackend")
    elif sc.auth == "token":
        extra["HTTP_AUTHORIZATION"] = ids["auth"]

    def call():
        if sc.method == "POST":
            body = json.dumps(
                {
                    "subject": "Query count probe",
                    "body": "Where is my order?",
                    "customer": {
                        "email": f"bench-queries-{time.time_ns()}@example.com",
                        "name": "Probe",
                    },
                    "priority": "normal",
                    "channel": "email",
                }
            )
            return client.post(path, body, content_type="application/json", **extra)
        return client.get(path, **extra)

    # Copy the captured lists at once: the next request's request_started resets the log.
    with CaptureQueriesContext(connection) as ctx:
        call()
    cold = list(ctx.captured_queries)
    with CaptureQueriesContext(connection) as ctx:
        response = call()
    warm = list(ctx.captured_queries)
    # CPU per request in steady state: this process (Django) and its Postgres backend.
    app0, db0 = time.process_time(), own_backend_cpu()
    for _ in range(repeat):
        call()
    app_ms = (time.process_time() - app0) * 1000 / repeat
    db_ms = (own_backend_cpu() - db0) * 1000 / repeat
    shapes: dict[str, int] = {}
    for q in warm:
        shapes[_shape(q["sql"])] = shapes.get(_shape(q["sql"]), 0) + 1
    repeated = sorted(((n, s) for s, n in shapes.items() if n > 1), reverse=True)
    slowest = max(warm, key=lambda q: float(q["time"]), default=None)
    result = {
        "status": response.status_code,
        "bytes": len(response.content),
        "queries_first": len(cold),
        "queries": len(warm),
        "distinct": len(shapes),
        "repeated": [{"count": n, "sql": s[:300]} for n, s in repeated[:3]],
        "app_cpu_ms": round(app_ms, 2),
        "db_cpu_ms": round(db_ms, 2),
        "sql": [q["sql"] for q in warm],
    }
    if slowest is not None and slowest["sql"].lstrip().upper().startswith("SELECT"):
        result["slowest"] = {"ms": round(float(slowest["time"]) * 1000, 2), "sql": slowest["sql"]}
        result["slowest"]["plan"] = explain(slowest["sql"])
    return result


def explain(sql: str) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) inside a transaction that is rolled back."""
    from django.db import connection, transaction

    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            lines = [r[0] for r in cur.fetchall()]
        transaction.set_rollback(True)
    return lines


def plan_summary(plan: list[str]) -> str:
    """The access paths of a plan on one line (index and seq scans, sorts)."""
    parts = []
    for line in plan:
        text = line.strip().lstrip("-> ").strip()
        if re.match(r"(Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan|Sort|Incremental Sort)", text):
            parts.append(re.sub(r"\s+\(cost=.*", "", text))
    exec_time = next((line.split(":")[1].strip() for line in plan if line.startswith("Execution Time")), "")
    return "; ".join(parts) + (f" [{exec_time}]" if exec_time else "")


# --- The SLA sweep (in-process) --------------------------------------------------------------


def _timed_sweep() -> dict:
    """What the beat task tickets.tasks.sla_sweep does: one indexed probe finds the tenants
    with due clocks, then each of those is swept (claim, fire, record, notify)."""
    from tickets.services import sla_sweep_tenant, tenants_with_due_clocks

    per_tenant = []
    fired = {"breaches": 0, "warnings": 0}
    start = time.perf_counter()
    app0, db0 = time.process_time(), own_backend_cpu()
    ids = tenants_with_due_clocks()
    find_ms = (time.perf_counter() - start) * 1000
    for tid in ids:
        t0 = time.perf_counter()
        result = sla_sweep_tenant(tid)
        per_tenant.append((time.perf_counter() - t0) * 1000)
        for k in fired:
            fired[k] += result.get(k, 0)
    return {
        "ids": ids,
        "per_tenant": sorted(per_tenant) or [0.0],
        "fired": fired,
        "find_ms": find_ms,
        "total_ms": (time.perf_counter() - start) * 1000,
        "app_cpu": time.process_time() - app0,
        "db_cpu": own_backend_cpu() - db0,
    }


def sweep_scenario(due_per_tenant: int = 2) -> dict:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from helpdesk.models import Tenant
    from tickets.services import sla_sweep_tenant

    now = timezone.now()
    hot = Tenant.objects.get(slug=HOT_SLUG)
    with connection.cursor() as cur:
        # What the beat would have fired since the data was generated (bulk, no timeline).
        cur.execute(
            "UPDATE tickets_slaclock SET status = 'breached', breached_at = due_at "
            "WHERE status = 'active' AND due_at <= %s",
            [now],
        )
        caught_up = cur.rowcount
        cur.execute(
            "UPDATE tickets_slaclock SET warned_at = warn_at "
            "WHERE status = 'active' AND warned_at IS NULL AND warn_at <= %s",
            [now],
        )
        caught_up += cur.rowcount
        # Make a few clocks per tenant due now (~200 over 100 tenants).
        made_due = 0
        tenant_ids = list(Tenant.objects.order_by("id").values_list("id", flat=True))
        for tid in tenant_ids:
            cur.execute(
                "SELECT id, ticket_id, warn_before_seconds FROM tickets_slaclock "
                "WHERE tenant_id = %s AND status = 'active' ORDER BY due_at LIMIT %s",
                [tid, due_per_tenant],
            )
            for n, (clock_id, ticket_id, warn_before) in enumerate(cur.fetchall()):
                due = now - timedelta(minutes=1 + n)
                cur.execute(
                    "UPDATE tickets_slaclock SET due_at = %s, warn_at = %s, warned_at = NULL "
                    "WHERE tenant_id = %s AND id = %s",
                    [due, due - timedelta(seconds=warn_before or 60), tid, clock_id],
                )
                cur.execute(
                    "UPDATE tickets_ticket SET sla_due_at = LEAST(sla_due_at, %s) WHERE tenant_id = %s AND id = %s",
                    [due, tid, ticket_id],
                )
                made_due += 1

    # The exact SQL the sweep runs, captured on the hot tenant and rolled back.
    with transaction.atomic():
        with CaptureQueriesContext(connection) as ctx:
            sla_sweep_tenant(hot.pk)
        transaction.set_rollback(True)
    captured = list(ctx.captured_queries)
    probes = {}
    for q in captured:
        sql = q["sql"]
        if "tickets_slaclock" in sql and sql.lstrip().upper().startswith("SELECT") and "FOR UPDATE" in sql:
            key = "warn" if "warn_at" in sql.split("WHERE", 1)[-1] else "due"
            probes.setdefault(key, sql)
    plans = {key: explain(sql) for key, sql in probes.items()}

    # The timed sweep: what the beat task does, every tenant in turn; then once more with
    # nothing due (what most minutes cost).
    timed = _timed_sweep()
    idle = _timed_sweep()
    per_sorted, fired, ids = timed["per_tenant"], timed["fired"], timed["ids"]
    total_ms, app_cpu, db_cpu = timed["total_ms"], timed["app_cpu"], timed["db_cpu"]
    from helpdesk.models import Tenant as _Tenant

    return {
        "tenants": _Tenant.objects.count(),
        "tenants_due": len(ids),
        "find_ms": round(timed["find_ms"], 1),
        "idle_find_ms": round(idle["find_ms"], 1),
        "made_due": made_due,
        "caught_up_before": caught_up,
        "total_ms": round(total_ms, 1),
        "per_tenant_p50_ms": round(percentile(per_sorted, 50), 2),
        "per_tenant_p99_ms": round(percentile(per_sorted, 99), 2),
        "per_tenant_mean_ms": round(statistics.fmean(per_sorted), 2),
        "fired": fired,
        "idle_total_ms": round(idle["total_ms"], 1),
        "idle_app_cpu_ms": round(idle["app_cpu"] * 1000, 1),
        "idle_db_cpu_ms": round(idle["db_cpu"] * 1000, 1),
        "sweep_queries_hot_tenant": len(captured),
        "app_cpu_ms": round(app_cpu * 1000, 1),
        "db_cpu_ms": round(db_cpu * 1000, 1),
        "due_query": probes.get("due", ""),
        "due_plan": plans.get("due", []),
        "warn_plan": plans.get("warn", []),
        "due_uses_index": any("slaclock_due" in line for line in plans.get("due", [])),
        "warn_uses_index": any("slaclock_warn" in line for line in plans.get("warn", [])),
    }


# --- Driving load ---------------------------------------------------------------------------


def probe(port: int, sc: Scenario, path: str, headers: dict) -> str:
    """'' when the route answers 2xx with the real page; otherwise why the scenario is skipped."""
    body = None
    if sc.method == "POST":
        body = json.dumps(
            {
                "subject": "Probe",
                "body": "Probe ticket from the bench",
                "customer": {"email": "bench-probe@example.com"},
                "priority": "normal",
                "channel": "email",
            }
        ).encode()
        headers = {**headers, "Content-Type": "application/json"}
    status, _, data = http_request(port, sc.method, path, headers, body)
    if status in (404, 405):
        return f"route not available ({status})"
    if not 200 <= status < 300:
        return f"probe answered HTTP {status}: {data[:200].decode(errors='replace')!r}"
    if PLACEHOLDER_MARKER.encode() in data:
        return "route is still the 'not set up yet' placeholder"
    return ""


def pg_backend_pids() -> list[int]:
    """Client backends of the bench database, except this process's own connection."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return [r[0] for r in cur.fetchall()]


def server_cpu(master_pid: int) -> dict[str, dict[int, float]]:
    """CPU seconds so far of the server's processes and of the bench DB's backends, per pid."""
    return {
        "app": {pid: proc_cpu_seconds(pid) for pid in child_pids(master_pid)},
        "db": {pid: proc_cpu_seconds(pid) for pid in pg_backend_pids()},
    }


def cpu_delta(before: dict, after: dict) -> dict[str, float]:
    return {
        kind: sum(max(0.0, v - before[kind].get(pid, 0.0)) for pid, v in after[kind].items()) for kind in ("app", "db")
    }


def drive(port: int, sc: Scenario, path: str, args, secrets_env: dict) -> dict:
    cmd = [
        PYTHON,
        str(ROOT / "bench" / "load.py"),
        "--url",
        f"http://127.0.0.1:{port}{path}",
        "--method",
        sc.method,
        "--clients",
        str(args.clients),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
        "--accept",
        sc.accept,
        "--driver",
        args.driver,
    ]
    if sc.body_kind:
        cmd += ["--body-kind", sc.body_kind, "--create-pattern", args.create_pattern]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env.update(secrets_env)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.warmup + args.duration + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"load.py failed: {proc.stderr[-1000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_webhook(gun: Server, sc: Scenario, args, hooks: webhooks.Hooks) -> None:
    """webhook_ack / webhook_e2e against this server, the hooks service (bench/webhooks.py)."""
    load_before = load_average()
    cpu_before = server_cpu(gun.proc.pid)
    if sc.name == "webhook_ack":
        sc.result = webhooks.run_ack(gun.port, hooks, args)
    else:
        sc.result = webhooks.run_e2e(gun.port, hooks, args, gun.env())
    cpu = cpu_delta(cpu_before, server_cpu(gun.proc.pid))
    r = sc.result
    r["load_avg"] = [load_before, load_average()]
    if sc.name == "webhook_ack":
        n_all = max(1, r.get("all_requests") or r["requests"])
        r["app_cpu_ms_per_req"] = round(cpu["app"] * 1000 / n_all, 2)
        r["db_cpu_ms_per_req"] = round(cpu["db"] * 1000 / n_all, 2)
        print(
            f"  {sc.name:<12} {r['rps']:>8.1f} acks/s  p50 {r['p50_ms']:>7.1f}  p90 {r['p90_ms']:>7.1f}  "
            f"p99 {r['p99_ms']:>7.1f} ms  non-2xx {r['non_2xx']} (errors {r['errors']})  server CPU/ack app "
            f"{r['app_cpu_ms_per_req']:.2f} + db {r['db_cpu_ms_per_req']:.2f} ms  (client CPU "
            f"{r['client_cpu_pct']}%, bodies {r['body_bytes']['min']}-{r['body_bytes']['max']} B, "
            f"load {r['load_avg'][0]:.1f}->{r['load_avg'][1]:.1f})"
            + (f"\n      first error: {r['first_error'][:200]}" if r["errors"] else "")
        )
        print(
            f"  {'':<12} inbox rows stored {r['stored']:,}; queued tasks {r['queue_depth']:,} (no worker), "
            f"purged {r['purged']:,}"
        )
        return
    settled = max(1, r.get("settled", 0))
    r["web_cpu_ms_per_event"] = round(cpu["app"] * 1000 / settled, 2)
    print(
        f"  {sc.name:<12} {r['events_per_s']:>8.1f} events/s  ({r['settled']:,}/{r['events']:,} settled in "
        f"{r['seconds']:.1f} s, first received -> last processed; complete: {r['complete']})  statuses {r['statuses']}"
    )
    print(
        f"  {'':<12} posting: {r['ack_rps_while_posting']:.0f} acks/s, p99 {r['ack_p99_ms']} ms, non-2xx "
        f"{r['non_2xx']}, all received in {r['posting_seconds']:.1f} s; queue peak {r['queue_depth_peak']:,}; "
        f"lag p50 {r['lag'].get('p50_s')} s / p99 {r['lag'].get('p99_s')} s"
    )
    print(
        f"  {'':<12} orders created {r['orders_created']:,}, customers created {r['customers_created']:,}; "
        f"per event: worker CPU {r['worker_cpu_ms_per_event']:.2f} ms, web CPU {r['web_cpu_ms_per_event']:.2f} ms, "
        f"Postgres statement time {r['db_active_ms_per_event']:.2f} ms; {r['db_sessions_opened']:,} Postgres sessions "
        f"opened; worker {r['worker']}, warm-up {r['warmup_s']} s, worker log errors {r['worker_log_errors']}; "
        f"load {r['load_avg'][0]:.1f}->{r['load_avg'][1]:.1f}"
    )


def run_http(args, ids: dict, wanted: list[Scenario], server: str, hooks: webhooks.Hooks | None = None) -> None:
    web = [sc for sc in wanted if sc.auth != "webhook"]
    hook = [sc for sc in wanted if sc.auth == "webhook"]
    if web:
        serve(args, ids, web, server, hooks)
    if hook and hooks is not None:
        # Webhooks go to their own service as production runs it (compose `hooks`), unless
        # --hooks-server says otherwise (e.g. the web server's spec, to compare).
        serve(args, ids, hook, args.hooks_server or server, hooks)


def serve(args, ids: dict, wanted: list[Scenario], server: str, hooks: webhooks.Hooks | None) -> None:
    gun = Server(server, args.redis_url)
    print(
        f"\n== HTTP scenarios: {gun.label} on 127.0.0.1:{gun.port}; "
        f"{args.clients} clients, {args.warmup:g}s warm-up + {args.duration:g}s each"
    )
    gun.start()
    try:
        sessions = []
        if any(sc.auth == "session" for sc in wanted):
            for user in ids["agents"][: args.clients]:
                try:
                    sessions.append(login(gun.port, user.email))
                except RuntimeError as exc:
                    print(f"  login failed: {exc}")
                    break
        for sc in wanted:
            if sc.auth == "webhook":
                if hooks is None:
                    continue
                try:
                    run_webhook(gun, sc, args, hooks)
                except RuntimeError as exc:
                    sc.skipped = str(exc)[:500]
                    print(f"  {sc.name:<12} failed: {sc.skipped}")
                continue
            path = sc.path.format(ticket=ids["thread_number"] or 0)
            headers = {"Accept": sc.accept}
            secrets_env: dict[str, str] = {}
            if sc.auth == "token":
                headers["Authorization"] = ids["auth"]
                secrets_env["BENCH_AUTH"] = ids["auth"]
            elif sc.auth == "session":
                if not sessions:
                    sc.skipped = "no signed-in session (login failed)"
                    print(f"  {sc.name:<12} skipped: {sc.skipped}")
                    continue
                headers["Cookie"] = sessions[0]
                secrets_env["BENCH_COOKIES"] = "\n".join(sessions)
            if "{ticket}" in sc.path and not ids["thread_number"]:
                sc.skipped = f"no ticket with {THREAD_MESSAGES} messages in {HOT_SLUG}"
            else:
                sc.skipped = probe(gun.port, sc, path, headers)
            if sc.skipped:
                print(f"  {sc.name:<12} skipped: {sc.skipped}")
                continue
            if sc.body_kind == "ticket-create":
                secrets_env["BENCH_REUSE_EMAILS"] = "\n".join(ids["reuse_emails"])
            load_before = load_average()
            cpu_before = server_cpu(gun.proc.pid)
            sc.result = drive(gun.port, sc, path, args, secrets_env)
            cpu = cpu_delta(cpu_before, server_cpu(gun.proc.pid))
            r = sc.result
            n_all = max(1, r.get("all_requests") or r["requests"])
            r["app_cpu_ms_per_req"] = round(cpu["app"] * 1000 / n_all, 2)
            r["db_cpu_ms_per_req"] = round(cpu["db"] * 1000 / n_all, 2)
            r["load_avg"] = [load_before, load_average()]
            print(
                f"  {sc.name:<12} {r['rps']:>8.1f} req/s  p50 {r['p50_ms']:>7.1f}  p90 {r['p90_ms']:>7.1f}  "
                f"p99 {r['p99_ms']:>7.1f} ms  errors {r['errors']}  server CPU/req app "
                f"{r['app_cpu_ms_per_req']:.1f} + db {r['db_cpu_ms_per_req']:.1f} ms  "
                f"(client CPU {r['client_cpu_pct']}%, load {r['load_avg'][0]:.1f}->{r['load_avg'][1]:.1f})"
                + (f"\n      first error: {r['first_error'][:200]}" if r["errors"] else "")
            )
    finally:
        gun.stop()
    log = gun.log_path.read_text(errors="replace") if gun.log_path.exists() else ""
    tracebacks = log.count("Traceback (most recent call last)")
    if tracebacks:
        lines = log.splitlines()
        last = max(i for i, line in enumerate(lines) if line.startswith("Traceback"))
        block = [line for line in lines[last:] if line.strip()]
        print(f"  server log: {tracebacks} tracebacks ({gun.log_path}); the last one ends:")
        for line in block[-6:]:
            print("    " + line[:240])


def print_webhook_queries(sc: Scenario, hooks: webhooks.Hooks) -> None:
    """In-process SQL and CPU of the ack path (with a cProfile breakdown) or of processing."""
    try:
        if sc.name == "webhook_ack":
            sc.queries = webhooks.measure_ack(hooks)
        else:
            processed = webhooks.measure_process(hooks)
            steady = processed["steady"]
            sc.queries = {"queries": steady["queries"], "processing": processed}
    except Exception as exc:  # a path under construction may raise
        sc.queries = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"  {sc.name:<12} error: {sc.queries['error'][:200]}")
        return
    q = sc.queries
    if sc.name == "webhook_e2e":
        for label, p in q["processing"].items():
            print(
                f"  {sc.name:<12} processing one {label} order (in-process delivery_process): {p['status']}, "
                f"{p['queries']} queries, CPU app {p['app_cpu_ms']:.1f} + db {p['db_cpu_ms']:.1f} ms"
            )
            for q in p["slowest"][:2]:
                print(f"  {'':<12}   slowest {q['ms']} ms: {q['sql'][:90]} … {q['sql'][-130:]}")
        return
    print(
        f"  {sc.name:<12} HTTP {q['status']} ({q['status_first']} cold, {q['status_duplicate']} duplicate)  "
        f"{q['queries']} queries per delivery ({q['queries_first']} on the first, cold cache; "
        f"{q['queries_duplicate']} for a duplicate)  CPU/ack app {q['app_cpu_ms']:.2f} + db {q['db_cpu_ms']:.2f} ms "
        f"(wall {q['wall_ms']:.2f} ms)"
    )
    for sql in q["sql"]:
        print(f"  {'':<12} SQL: {sql[:200]}")
    print(f"  {'':<12} the ack path step by step (in-process, no profiler), CPU / wall ms per call:")
    for item in q["components"]:
        print(f"  {'':<14}{item['cpu_ms']:>7.3f} / {item['wall_ms']:>7.3f}  {item['what']}")
    prof = q["profile"]
    print(
        f"  {'':<12} cProfile of {prof['acks']:,} acks (test Client, {prof['wall_ms_per_ack_profiled']:.2f} ms each "
        f"under the profiler); cumulative ms per ack:"
    )
    for item in prof["breakdown"]:
        print(f"  {'':<14}{item['ms_per_ack']:>7.3f}  {item['what']}  (x{item['calls_per_ack']:.0f})")


# --- Main ---------------------------------------------------------------------------------


def bench_redis_url(given: str, db: str) -> str:
    """The bench's own Redis database, so its cache keys and queued tasks never mix with
    those of the dev server or tests sharing the same Redis (same key prefix, other DB)."""
    if db == "keep":
        return given
    parsed = urllib.parse.urlsplit(given)
    return urllib.parse.urlunsplit(parsed._replace(path=f"/{int(db)}"))


def ensure_data(args) -> None:
    size = None
    if database_exists():
        migrate()  # new migrations of the product since the data was generated
        size = generate.generated_size()
    enough = size is not None and size[0] >= args.tenants and size[1] >= args.tickets_per_tenant
    count = 0
    if database_exists():
        with cursor() as cur:
            cur.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'tickets_ticket'")
            row = cur.fetchone()
            count = max(0, row[0]) if row else 0
    wanted = args.tenants * args.tickets_per_tenant
    if enough:
        print(f"data: {describe_db()} holds {size[0]} tenants x {size[1]:,} tickets (~{count:,} tickets now)")
        return
    if args.skip_generate:
        print(f"data: --skip-generate, using {describe_db()} as it is (~{count:,} tickets, asked {wanted:,})")
        return
    print(f"data: {describe_db()} has ~{count:,} generated tickets, fewer than {wanted:,}: generating")
    code = generate.main(
        [
            "--reset",
            "--tenants",
            str(args.tenants),
            "--tickets-per-tenant",
            str(args.tickets_per_tenant),
        ]
    )
    if code:
        raise SystemExit(code)


def print_table(all_sc: list[Scenario], sweep: dict | None, args, server: str, data: str) -> None:
    print("\n== Results")
    print(
        f"   data: {data}; server: {server}, webhooks: {args.hooks_server or server}; "
        f"{args.clients} clients ({args.driver} driver), {args.duration:g}s per scenario"
    )
    head = f"   {'scenario':<12}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'errors':>8}{'queries':>9}{'CPU ms':>8}  target / note"
    print(head)
    print("   " + "-" * (len(head) - 3))
    print("   (queries: one steady-state request; CPU ms: server CPU per request, app + db)")
    for sc in all_sc:
        q = sc.queries.get("queries", "")
        qtext = f"{q}" if q != "" else "-"
        if sc.result and "events_per_s" in sc.result:
            r = sc.result
            print(
                f"   {sc.name:<12}{r['events_per_s']:>9.1f}{'':>9}{'':>9}{'':>9}{r['non_2xx']:>8}{qtext:>9}"
                f"{r['worker_cpu_ms_per_event']:>8.1f}  {sc.target} "
                f"(events/s; lag p99 {r['lag'].get('p99_s')} s; {r['orders_created']:,} orders; CPU = worker; "
                f"+{r['db_active_ms_per_event']:.0f} ms Postgres statement time per event)"
            )
        elif sc.result:
            r = sc.result
            print(
                f"   {sc.name:<12}{r['rps']:>9.1f}{r['p50_ms']:>9.1f}{r['p90_ms']:>9.1f}{r['p99_ms']:>9.1f}"
                f"{r['errors']:>8}{qtext:>9}"
                f"{r.get('app_cpu_ms_per_req', 0) + r.get('db_cpu_ms_per_req', 0):>8.1f}  {sc.target}"
            )
        else:
            print(
                f"   {sc.name:<12}{'-':>9}{'-':>9}{'-':>9}{'-':>9}{'-':>8}{qtext:>9}{'-':>8}  skipped: {sc.skipped or 'not run'}"
            )
    if sweep:
        print(
            f"   {'sla_sweep':<12} found due clocks in {sweep['find_ms']:.1f} ms by index "
            f"(nothing due: {sweep['idle_find_ms']:.1f} ms); target < 50 ms\n"
            f"   {'':<12} total {sweep['total_ms']:.1f} ms for {sweep['tenants_due']} of {sweep['tenants']} tenants "
            f"(per tenant p50 {sweep['per_tenant_p50_ms']:.2f} ms, p99 {sweep['per_tenant_p99_ms']:.2f} ms); "
            f"fired {sweep['fired']['breaches']} breaches, {sweep['fired']['warnings']} warnings; "
            f"nothing due: {sweep['idle_total_ms']:.1f} ms"
        )
        print(
            f"   {'':<12} due-clock query uses slaclock_due: {'yes' if sweep['due_uses_index'] else 'NO'}; "
            f"warn query uses slaclock_warn: {'yes' if sweep['warn_uses_index'] else 'NO'}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Storedesk benchmarks (see bench/README.md)")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--tickets-per-tenant", type=int, default=10_000)
    parser.add_argument("--skip-generate", action="store_true", help="use the bench DB as it is")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per scenario")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per scenario")
    parser.add_argument(
        "--server",
        default="granian:2x4",
        help="pages and API: granian:<processes>x<threads> as compose's web (default granian:2x4), "
        "or gunicorn's sync:<workers> / gthread:<workers>x<threads> to compare",
    )
    parser.add_argument(
        "--compare-servers",
        default="",
        help="comma-separated server specs to compare on the HTTP scenarios, e.g. sync:2,sync:4,gthread:2x4",
    )
    parser.add_argument("--only", default="", help="comma-separated scenario names (and/or 'sweep')")
    parser.add_argument("--no-queries", action="store_true", help="skip the in-process query counts")
    parser.add_argument("--redis-db", default="15", help="Redis DB number for the bench, or 'keep'")
    parser.add_argument("--webhook-events", type=int, default=5_000, help="webhook_e2e: distinct deliveries")
    parser.add_argument(
        "--webhook-timeout", type=float, default=900.0, help="webhook_e2e: seconds to wait for the worker"
    )
    parser.add_argument(
        "--worker-concurrency", type=int, default=2, help="webhook_e2e: the one worker's prefork processes"
    )
    parser.add_argument(
        "--create-pattern",
        choices=["mixed", "race"],
        default="mixed",
        help="api_create customers: mixed (half new, half existing) or race (pairs of "
        "concurrent requests for one new customer)",
    )
    parser.add_argument(
        "--hooks-server",
        default="granian:2x4",
        help="the server webhook_ack/webhook_e2e post to: granian:<processes>x<threads> as compose's "
        "hooks service (default granian:2x4), or a gunicorn spec to compare",
    )
    parser.add_argument(
        "--driver",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load driver: wrk (C; default when installed) or python (threads, http.client)",
    )
    args = parser.parse_args(argv)
    args.redis_url = bench_redis_url(redis_url(), args.redis_db)

    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if "notices" in only:  # its own small tenant, SMTP sink and worker (bench/notices.py)
        from bench import notices as notices_bench

        os.environ["REDIS_URL"] = args.redis_url
        notices_bench.run()
        only.discard("notices")
        if not only:
            return 0
    all_sc = [sc for sc in scenarios() if not only or sc.name in only]
    run_sweep = not only or "sweep" in only
    print(f"Storedesk bench — {describe_db()}, Redis {args.redis_url}")
    os.environ["REDIS_URL"] = args.redis_url
    ensure_data(args)
    size = generate.generated_size()
    data = f"{size[0]} tenants x {size[1]:,} tickets" if size else "unknown size"
    setup_django(REDIS_URL=args.redis_url)
    from django.db import connection

    ids = prepare_identities(args.clients)
    print(
        f"identities: tenant {HOT_SLUG} (id {ids['tenant'].pk}), API token {ids['token'].display_prefix} "
        f"(revoked at the end), {len(ids['agents'])} agents, {THREAD_MESSAGES}-message ticket "
        f"#{ids['thread_number']}"
    )
    results: dict = {"data": data, "db": describe_db(), "args": dict(vars(args).items())}
    hooks = webhooks.Hooks(ids["reuse_emails"]) if any(sc.auth == "webhook" for sc in all_sc) else None
    try:
        if not args.no_queries:
            print("\n== Queries per request (in-process, Django test Client, second request)")
            for sc in all_sc:
                if sc.auth == "webhook":
                    print_webhook_queries(sc, hooks)
                    continue
                path = sc.path.format(ticket=ids["thread_number"] or 0)
                try:
                    sc.queries = count_queries(sc, ids, path)
                except Exception as exc:  # a view under construction may raise
                    sc.queries = {"error": f"{type(exc).__name__}: {exc}"}
                    print(f"  {sc.name:<12} error: {sc.queries['error'][:200]}")
                    continue
                q = sc.queries
                line = (
                    f"  {sc.name:<12} HTTP {q['status']} {q['bytes'] // 1024:>4} KB  "
                    f"{q['queries']:>3} queries ({q['queries_first']} on the first request)  "
                    f"CPU/req app {q['app_cpu_ms']:.1f} + db {q['db_cpu_ms']:.1f} ms"
                )
                if q["repeated"]:
                    line += f"; repeated x{q['repeated'][0]['count']}: {q['repeated'][0]['sql'][:110]}"
                print(line)
                if q.get("slowest"):
                    print(f"  {'':<12} slowest {q['slowest']['ms']} ms: {plan_summary(q['slowest']['plan'])[:220]}")
            connection.close()

        servers = [s for s in args.compare_servers.split(",") if s.strip()] or [args.server]
        http_sc = list(all_sc)
        comparison = []
        for server in servers:
            for sc in http_sc:
                sc.result, sc.skipped = {}, ""
            run_http(args, ids, http_sc, server, hooks)
            comparison.append((server, {sc.name: sc.result or {"skipped": sc.skipped} for sc in http_sc}))
        if len(servers) > 1:
            print("\n== Server comparison: req/s / p99 ms / server CPU ms per request (app+db)")
            print("   " + f"{'server':<14}" + "".join(f"{sc.name:>22}" for sc in http_sc))
            for server, res in comparison:
                cells = []
                for sc in http_sc:
                    r = res[sc.name]
                    cpu = r.get("app_cpu_ms_per_req", 0) + r.get("db_cpu_ms_per_req", 0)
                    cells.append(f"{r['rps']:.0f} / {r['p99_ms']:.0f} / {cpu:.1f}" if "rps" in r else "skipped")
                print("   " + f"{server:<14}" + "".join(f"{c:>22}" for c in cells))
        results["servers"] = comparison

        sweep = None
        if run_sweep:
            print("\n== SLA sweep (in-process, every tenant, as the beat task does)")
            sweep = sweep_scenario()
            print(
                f"  made {sweep['made_due']} clocks due ({sweep['caught_up_before']} clocks caught up first); "
                f"{sweep['total_ms']:.1f} ms total, per tenant p50 {sweep['per_tenant_p50_ms']} ms "
                f"p99 {sweep['per_tenant_p99_ms']} ms; fired {sweep['fired']}; CPU app "
                f"{sweep['app_cpu_ms']} ms + db {sweep['db_cpu_ms']} ms"
            )
            print(
                f"  again with nothing due: {sweep['idle_total_ms']} ms total, CPU app "
                f"{sweep['idle_app_cpu_ms']} ms + db {sweep['idle_db_cpu_ms']} ms"
            )
            print(f"  due-clock query plan (EXPLAIN ANALYZE, BUFFERS) on {HOT_SLUG}:")
            for line in sweep["due_plan"]:
                print("    " + line)
            print(
                f"  uses slaclock_due index: {'yes' if sweep['due_uses_index'] else 'NO'}; "
                f"warn query uses slaclock_warn: {'yes' if sweep['warn_uses_index'] else 'NO'} "
                f"({plan_summary(sweep['warn_plan'])})"
            )
            results["sweep"] = sweep
        print_table(all_sc, sweep, args, servers[-1], data)
    finally:
        revoke(ids["token"])
        if hooks is not None:
            print(f"\nwebhook clean-up: {webhooks.cleanup(hooks)}")
    results["scenarios"] = {
        sc.name: {
            "result": sc.result,
            "skipped": sc.skipped,
            "target": sc.target,
            "queries": sc.queries,
        }
        for sc in all_sc
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in (f"run-{stamp}.json", "latest.json"):
        (RESULTS_DIR / name).write_text(json.dumps(results, indent=2, default=str))
    print(f"\nfull results (query lists, plans): {RESULTS_DIR / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
