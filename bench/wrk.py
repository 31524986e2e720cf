"""wrk as the bench's load driver (when it is installed: `apt-get install wrk`).

The Python driver (bench/load.py's threads, bench/webhooks.py's senders) costs 0.3–0.4 ms
of CPU per request on the same two cores as the server it measures, and its GIL-bound
threads add their own scheduling delays: at 1,000 req/s that is a third of a core. wrk is
C on epoll (and LuaJIT for the per-request script, bench/driver.lua), about a tenth of
that. Both drivers print the same JSON figures; `--driver python` keeps the old one.

Secrets (the API token, session cookies, the webhook secret's signatures) go into a data
file in a private temporary directory, never on the command line, and the directory is
removed afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

DRIVER = Path(__file__).resolve().parent / "driver.lua"
ALLOWED_HOSTS = ("127.0.0.1", "localhost")
_ESCAPE = re.compile(rb'[^\x20-\x7e]|["\\\\]')


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua(value: object) -> str:
    """A Lua literal for str / int / bool / None / list / dict values."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        # A quoted string; bytes outside printable ASCII, quotes and backslashes as \ddd escapes.
        return '"' + _ESCAPE.sub(lambda m: b"\\%03d" % m[0][0], value).decode("ascii") + '"'
    if isinstance(value, Mapping):
        return "{" + ",".join(f"[{_lua(str(k))}]={_lua(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "{" + ",\n".join(_lua(v) for v in value) + "}"
    raise TypeError(f"no Lua literal for {type(value).__name__}")


class Wrk:
    """One load definition, run as wrk processes (a warm-up, then the measured run)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        method: str,
        path: str,
        clients: int,
        headers: Mapping[str, str],
        per_client_headers: Sequence[Mapping[str, str]] = (),
        bodies: Sequence[bytes] = (),
        body_headers: Sequence[Mapping[str, str]] = (),
        template: bool = False,
        unique: Mapping[str, str] | None = None,
    ):
        if host not in ALLOWED_HOSTS:
            raise SystemExit(f"wrk: only 127.0.0.1 targets are allowed, not {host}")
        self.url = f"http://{host}:{port}"
        self.clients = clients
        self.spec = {
            "method": method,
            "path": path,
            "headers": dict(headers),
            "per_thread": [dict(h) for h in per_client_headers] or None,
            "bodies": list(bodies) or None,
            "body_headers": [dict(h) for h in body_headers] or None,
            "template": template,
            "unique": dict(unique) if unique else None,
            "threads": clients,
        }

    def _run(self, seconds: float, *, phase: str, offset: int, count: int = 0, stop_at: float = 0.0) -> dict:
        with tempfile.TemporaryDirectory(prefix="storedesk-wrk-") as tmp:
            data = Path(tmp) / "data.lua"
            done_file = Path(tmp) / "done"
            spec = {**self.spec, "count": count, "done_file": str(done_file) if count else None}
            data.write_text("return " + _lua(spec) + "\n")
            os.chmod(data, 0o600)
            cmd = [
                "wrk",
                "-t",
                str(self.clients),
                "-c",
                str(self.clients),
                "-d",
                f"{max(1, round(seconds))}s",
                "--timeout",
                "30s",
                "-s",
                str(DRIVER),
                self.url,
                "--",
                str(data),
                phase,
                str(offset),
            ]
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if count:
                # wrk sleeps for its whole -d even when every thread has stopped: interrupt
                # it (SIGINT: it prints its summary and exits) once every share is answered.
                while proc.poll() is None:
                    if done_file.exists() and len(done_file.read_text().split()) >= self.clients:
                        proc.send_signal(signal.SIGINT)
                        break
                    if stop_at and time.perf_counter() > stop_at:
                        proc.send_signal(signal.SIGINT)
                        break
                    time.sleep(0.02)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            ended = time.perf_counter()
            out = proc.stdout.read() if proc.stdout else ""
            err = proc.stderr.read() if proc.stderr else ""
        line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
        if proc.returncode not in (0, -signal.SIGINT) or line is None:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {err[-1000:] or out[-1000:]}")
        result = json.loads(line[len("WRKJSON ") :])
        result["cpu_s"] = usage.ru_utime + usage.ru_stime
        result["wall_s"] = ended - started
        result["ended_unix"] = time.time() - (time.perf_counter() - ended)
        return result

    def timed(self, *, warmup: float, duration: float) -> dict:
        """A warm-up run (not counted), then `duration` seconds measured: bench figures."""
        warm = self._run(warmup, phase="w", offset=0) if warmup > 0 else None
        r = self._run(duration, phase="m", offset=10_000_000)
        result = self.figures(r, clients=self.clients)
        if warm:  # server CPU is read around both runs: per request of both
            result["all_requests"] += warm["requests"]
            result["client_cpu_pct"] = round(100 * (r["cpu_s"] + warm["cpu_s"]) / (r["wall_s"] + warm["wall_s"]), 1)
        return result

    def count(self, count: int, *, timeout: float) -> dict:
        """Send `count` requests (numbers 0..count-1) as fast as the clients go, then stop."""
        r = self._run(timeout, phase="", offset=0, count=count, stop_at=time.perf_counter() + timeout)
        return self.figures(r, clients=self.clients)

    @staticmethod
    def figures(r: dict, *, clients: int) -> dict:
        seconds = r["duration_us"] / 1e6
        n = r["requests"]
        statuses = {str(k): int(v) for k, v in r["statuses"].items()}
        transport = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
        if transport:
            statuses["transport"] = transport
        non_2xx = sum(v for k, v in statuses.items() if k != "transport" and not k.startswith("2"))
        return {
            "driver": "wrk",
            "requests": n,
            "all_requests": n,
            "seconds": round(seconds, 3),
            "rps": round(n / seconds, 1) if seconds > 0 else 0.0,
            "p50_ms": round(r["p50_us"] / 1000, 2) if n else None,
            "p90_ms": round(r["p90_us"] / 1000, 2) if n else None,
            "p99_ms": round(r["p99_us"] / 1000, 2) if n else None,
            "max_ms": round(r["max_us"] / 1000, 2) if n else None,
            "errors": non_2xx + transport,
            "non_2xx": non_2xx,
            "statuses": statuses,
            "first_error": r["first_error"],
            "clients": clients,
            "client_cpu_pct": round(100 * r["cpu_s"] / max(r["wall_s"], 1e-9), 1),
            "last_ack_unix": r["ended_unix"],
        }
