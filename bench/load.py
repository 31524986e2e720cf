"""A small closed-loop HTTP load driver for 127.0.0.1: N clients, keep-alive, bounded in time.

    .venv/bin/python bench/load.py --url http://127.0.0.1:8000/healthz [--clients 8]
        [--duration 10] [--warmup 2] [--method GET] [--header "Accept: text/html"]
        [--body-kind ticket-create] [--max-requests 1000000]

Each client is a thread with its own persistent ``http.client`` connection (it reconnects
by itself when the server closes, e.g. gunicorn's sync worker). A client sends its next
request as soon as the previous answer is read (closed loop), so req/s is the server's
throughput at that concurrency. Requests started during the warm-up are not counted; the
run stops after warm-up + duration or after --max-requests, whichever comes first.

Secrets never go on the command line: the Authorization header value comes from the
environment variable BENCH_AUTH, and per-client cookies from BENCH_COOKIES (one Cookie
header value per line; client i uses line i mod n).

Prints one JSON object: requests, rps, p50/p90/p99/max latency in ms, errors (non-2xx and
transport errors), status counts, and the driver's own CPU use (to tell whether the
client, rather than the server, is the bottleneck).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import resource
import secrets
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import percentile  # noqa: E402

ALLOWED_HOSTS = ("127.0.0.1", "localhost")


SUBJECTS = ["Where is my parcel?", "Refund please", "Wrong size", "Discount code", "Broken"]


def ticket_body(n: int | str, email: str, subject: str) -> bytes:
    return json.dumps(
        {
            "subject": f"{subject} (bench {n})",
            "body": f"Hello, this is bench request {n}. My order has not arrived yet.",
            "customer": {"email": email, "name": f"Bench customer {n}"},
            "priority": "normal",
            "channel": "email",
        }
    ).encode()


def mixed_email(run_id: str, n: int | str, i: int, reuse: list[str]) -> str:
    """Request i of the "mixed" pattern: even ones a new customer, odd ones an existing one."""
    if not reuse or i % 2 == 0:
        return f"bench-{run_id}-{n}@example.com"
    return reuse[(i // 2) % len(reuse)]


def ticket_bodies(run_id: str, pattern: str, reuse: list[str]):
    """POST /api/v1/tickets/ bodies.

    "mixed" (default): even requests bring a new customer (unique email), odd requests an
    existing customer of the hot tenant (from BENCH_REUSE_EMAILS), so half the requests
    create a customer. "race": requests 2k and 2k+1 share a new email and go out at the same
    time — this reproduces concurrent first contacts of one customer.
    """
    counter = itertools.count()
    lock = threading.Lock()

    def make() -> bytes:
        with lock:
            n = next(counter)
        if pattern == "race":
            email = f"bench-{run_id}-{n // 2}@example.com"
        else:
            email = mixed_email(run_id, n, n, reuse)
        return ticket_body(n, email, SUBJECTS[n % len(SUBJECTS)])

    return make


def ticket_body_templates(run_id: str, reuse: list[str]) -> list[bytes]:
    """The "mixed" pattern for wrk: one cycle of bodies in which "{n}" stands for the request
    number (bench/driver.lua fills it in), so request n gets the body make() gives request n."""
    cycle = math.lcm(2 * len(SUBJECTS), 2 * max(1, len(reuse)))
    return [ticket_body("{n}", mixed_email(run_id, "{n}", i, reuse), SUBJECTS[i % len(SUBJECTS)]) for i in range(cycle)]


class Client(threading.Thread):
    def __init__(self, index: int, cfg: dict, shared: dict):
        super().__init__(daemon=True)
        self.index = index
        self.cfg = cfg
        self.shared = shared
        self.latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.errors = 0
        self.first_error = ""

    def run(self) -> None:
        cfg, shared = self.cfg, self.shared
        headers = dict(cfg["headers"])
        cookies = cfg["cookies"]
        if cookies:
            headers["Cookie"] = cookies[self.index % len(cookies)]
        make_body = cfg["make_body"]
        conn = http.client.HTTPConnection(cfg["host"], cfg["port"], timeout=30)
        measure_from, stop_at = shared["measure_from"], shared["stop_at"]
        perf = time.perf_counter
        while True:
            start = perf()
            if start >= stop_at:
                break
            with shared["lock"]:
                if shared["sent"] >= cfg["max_requests"]:
                    break
                shared["sent"] += 1
            body = make_body() if make_body else None
            try:
                conn.request(cfg["method"], cfg["path"], body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(cfg["host"], cfg["port"], timeout=30)
                if start >= measure_from:
                    self.errors += 1
                    self.statuses["transport"] = self.statuses.get("transport", 0) + 1
                    self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"
                continue
            elapsed = perf() - start
            if start < measure_from:
                continue
            self.latencies.append(elapsed)
            key = str(status)
            self.statuses[key] = self.statuses.get(key, 0) + 1
            if not 200 <= status < 300:
                self.errors += 1
                if not self.first_error:
                    self.first_error = f"HTTP {status}: {data[:300].decode(errors='replace')}"
        conn.close()


def run(args: argparse.Namespace) -> dict:
    url = urllib.parse.urlsplit(args.url)
    if url.scheme != "http" or url.hostname not in ALLOWED_HOSTS:
        raise SystemExit(f"load: only http://127.0.0.1 targets are allowed, not {args.url}")
    headers = {"Accept": args.accept, "User-Agent": "storedesk-bench/1"}
    for raw in args.header:
        name, _, value = raw.partition(":")
        headers[name.strip()] = value.strip()
    if os.environ.get("BENCH_AUTH"):
        headers["Authorization"] = os.environ["BENCH_AUTH"]
    make_body = None
    if args.body_kind == "ticket-create":
        reuse = [e for e in os.environ.get("BENCH_REUSE_EMAILS", "").splitlines() if e.strip()]
        make_body = ticket_bodies(secrets.token_hex(4), args.create_pattern, reuse)
        headers["Content-Type"] = "application/json"
    cookies = [c for c in os.environ.get("BENCH_COOKIES", "").splitlines() if c.strip()]
    if use_wrk(args):
        from bench.wrk import Wrk

        reuse = [e for e in os.environ.get("BENCH_REUSE_EMAILS", "").splitlines() if e.strip()]
        load = Wrk(
            host=url.hostname or "",
            port=url.port or 80,
            method=args.method,
            path=url.path + (f"?{url.query}" if url.query else ""),
            clients=args.clients,
            headers=headers,
            per_client_headers=[{"Cookie": c} for c in cookies],
            bodies=ticket_body_templates(secrets.token_hex(4), reuse) if make_body else (),
            template=bool(make_body),
        )
        return load.timed(warmup=args.warmup, duration=args.duration)
    cfg = {
        "host": url.hostname,
        "port": url.port or 80,
        "path": url.path + (f"?{url.query}" if url.query else ""),
        "method": args.method,
        "headers": headers,
        "cookies": cookies,
        "make_body": make_body,
        "max_requests": args.max_requests,
    }
    now = time.perf_counter()
    shared = {
        "measure_from": now + args.warmup,
        "stop_at": now + args.warmup + args.duration,
        "lock": threading.Lock(),
        "sent": 0,
    }
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    clients = [Client(i, cfg, shared) for i in range(args.clients)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(timeout=args.warmup + args.duration + 60)
    wall = min(time.perf_counter(), shared["stop_at"]) - shared["measure_from"]
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)

    latencies = sorted(x for c in clients for x in c.latencies)
    statuses: dict[str, int] = {}
    for c in clients:
        for k, v in c.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    errors = sum(c.errors for c in clients)
    first_error = next((c.first_error for c in clients if c.first_error), "")
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
        "errors": errors,
        "statuses": statuses,
        "first_error": first_error,
        "clients": args.clients,
        "client_cpu_pct": round(100 * cpu / (args.warmup + args.duration), 1),
        "driver": "python",
    }


def use_wrk(args: argparse.Namespace) -> bool:
    """wrk when asked for, or by default when installed; the race pattern needs the Python
    driver (it pairs requests in time, which wrk's per-connection order cannot)."""
    from bench.wrk import available

    if args.driver == "python" or args.create_pattern == "race":
        return False
    if args.driver == "wrk" and not available():
        raise SystemExit("load: --driver wrk, but wrk is not installed (apt-get install wrk)")
    return available()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="closed-loop HTTP load on 127.0.0.1")
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--accept", default="*/*")
    parser.add_argument("--header", action="append", default=[], help='"Name: value"')
    parser.add_argument("--body-kind", choices=["ticket-create"], default=None)
    parser.add_argument("--create-pattern", choices=["mixed", "race"], default="mixed")
    parser.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256:
        parser.error("--clients must be 1..256")
    if not 0 < args.duration <= 600 or not 0 <= args.warmup <= 120:
        parser.error("--duration must be in (0, 600] s and --warmup in [0, 120] s")
    print(json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
