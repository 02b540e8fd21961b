"""Benchmark: one new visit per request (PUT /visits/{id}) under wrk, next to a bare endpoint.

For each backend (SQLite, and PostgreSQL when it answers) a fresh migrated database with the
seed of `bench/sync_ingest.py` (one officer, 90 households) and `fieldsync serve`. wrk drives
the same server twice: `GET /healthz` (the bare endpoint: routing, middleware, a JSON answer,
no database) and `PUT /api/v1/visits/{id}` through `bench/wrk_put_visit.lua`, a new visit per
request (a fresh UUID made in Lua, the next household), from 8 and from 32 connections. The
ratio is what a write costs over the app's own floor on this machine, with the load client on
the same 2 cores in both runs.

On PostgreSQL the 8-connection PUT run is repeated with two server processes
(`fieldsync serve --workers 2`): writers no longer queue on a common lock, so a second process
should add what the machine's second core can give (wrk and PostgreSQL share it).

Every figure is written to bench/results/put_visits.json for `bench/targets.py`.

    make bench-put                  # or: .venv/bin/python bench/put_visits.py --duration 5
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from results import save
from sync_ingest import (
    OFFICER,
    PASSWORD,
    POSTGRES_URL,
    _household_ids,
    new_database,
    postgres_available,
    prepare,
    serve,
    server_env,
)

LUA = Path(__file__).with_name("wrk_put_visit.lua")
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if match is None:
        raise RuntimeError(f"wrk printed a latency of {value!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def wrk(
    url: str, *, connections: int, duration: int, script: list[str] | None = None
) -> dict[str, Any]:
    """One wrk run; requests/s, p50 and p99 in ms, and the statuses the script counted."""
    threads = 1 if connections == 1 else 2
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    command += ["--timeout", "30s"]
    if script:
        command += ["-s", script[0], url, "--", *script[1:]]
    else:
        command.append(url)
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120)
    output = result.stdout + result.stderr
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    if result.returncode != 0 or rate is None or "Socket errors" in output:
        raise RuntimeError(f"wrk failed:\n{output}")
    statuses: dict[str, int] = {}
    for line in output.splitlines():
        if line.startswith("bench statuses "):
            for item in filter(None, line.split(" ", 2)[2].split(",")):
                status, count = item.split("=")
                statuses[status] = int(count)
    bad = {s: n for s, n in statuses.items() if not s.startswith("2")}
    if bad or "Non-2xx" in output:
        raise RuntimeError(f"wrk saw answers other than 2xx: {bad}\n{output}")
    return {
        "requests_s": float(rate[1]),
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "statuses": statuses,
    }


def _login(base: str) -> str:
    form = {"grant_type": "password", "username": OFFICER, "password": PASSWORD}
    response = httpx.post(f"{base}/api/v1/auth/token", data=form, timeout=30)
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def run_backend(backend: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    households = tmp / "households.txt"
    households.write_text("\n".join(str(h) for h in _household_ids()) + "\n")
    visited_at = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    out: dict[str, Any] = {"backend": backend}
    process_counts = (1, 2) if backend == "postgresql" else (1,)
    with new_database(backend, tmp, args.postgres_url) as url:
        prepare(url)
        for workers in process_counts:
            env = server_env(url, tmp / f"data-{backend}")
            with serve(env, tmp / f"server-{backend}-{workers}.log", workers=workers) as base:
                token = _login(base)
                script = [str(LUA), str(households), token, visited_at]
                put = f"{base}/api/v1/visits"
                wrk(base, connections=8, duration=2, script=script)  # warm-up, every process
                if workers == 1:
                    out["bare_8"] = wrk(f"{base}/healthz", connections=8, duration=args.duration)
                    out["put_8"] = wrk(put, connections=8, duration=args.duration, script=script)
                    out["put_32"] = wrk(put, connections=32, duration=args.duration, script=script)
                else:
                    out["put_8_two_processes"] = wrk(
                        put, connections=8, duration=args.duration, script=script
                    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--backend", action="append", choices=("sqlite", "postgresql"), help="default: both"
    )
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    backends = args.backend or ["sqlite", "postgresql"]
    if "postgresql" in backends and not postgres_available(args.postgres_url):
        print(f"PostgreSQL does not answer at {args.postgres_url}: skipped", file=sys.stderr)
        backends.remove("postgresql")
    results = []
    with tempfile.TemporaryDirectory(prefix="fieldsync-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        os.environ.update(FIELDSYNC_DATA_DIR=str(tmp / "data"), FIELDSYNC_LOG_LEVEL="WARNING")
        for backend in backends:
            results.append(run_backend(backend, args, tmp))
    print(f"fieldsync PUT /visits benchmark: wrk, {args.duration} s per run, new visit per request")
    print(
        f"  {'backend':<11} {'bare/s':>8} {'PUT/s c8':>9} {'of bare':>8} {'p50 c8':>8} "
        f"{'p99 c32':>8} {'2 procs':>8} {'2 vs 1':>7}"
    )
    for r in results:
        two = r.get("put_8_two_processes")
        print(
            f"  {r['backend']:<11} {r['bare_8']['requests_s']:>8,.0f} "
            f"{r['put_8']['requests_s']:>9,.0f} "
            f"{r['put_8']['requests_s'] / r['bare_8']['requests_s']:>8.1%} "
            f"{r['put_8']['p50_ms']:>6.1f}ms {r['put_32']['p99_ms']:>6.0f}ms "
            + (
                f"{two['requests_s']:>8,.0f} {two['requests_s'] / r['put_8']['requests_s']:>6.2f}x"
                if two
                else f"{'–':>8} {'–':>7}"
            )
        )
    save("put_visits", {r["backend"]: r for r in results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
