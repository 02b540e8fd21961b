"""Benchmark: what webhooks cost the writes that cause their events.

The same sync ingest as `bench/sync_ingest.py` (batches of 100 new visits through
POST /sync/batches, one uvicorn worker, bodies built before the clock starts), three times per
backend, each on a fresh migrated database:

* `none`: no webhook is registered;
* `up`: N webhooks subscribed to every event type, delivering to a receiver on loopback (a
  separate process) that answers 204 at once;
* `down`: the same webhooks, but nothing listens at their URL: every delivery fails and waits
  for its retry.

Each batch writes 103 events to the outbox (100 `visit.created`, one `sync.batch_received` per
village of the 3), and the worker in the API process fans each out to every webhook (`outbox`:
the events left there at the end). The table
shows visits per second and batch latency while that happens, then how long the outbox took to
drain after the last batch was answered (every event fanned out: deleted as unwanted with no
webhook, a delivery per webhook otherwise; `up`: each of them delivered) and what the receiver
got: requests, distinct deliveries, and whether every signature verified.

    make bench-webhooks        # or: .venv/bin/python bench/webhook_overhead.py --batches 40 -c 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sync_ingest import (
    BATCH,
    OFFICER,
    PASSWORD,
    POSTGRES_URL,
    VILLAGES,
    WARMUP_BATCHES,
    _free_port,
    add_user,
    build_bodies,
    new_database,
    postgres_available,
    prepare,
    send_batches,
    serve,
)

ADMIN, ADMIN_ID = "bench.admin", uuid.UUID("00000000-0000-4000-8000-00000000b002")
COUNTY = VILLAGES[0][:6] + "000000"
EVENT_TYPES = [
    "visit.created",
    "household.status_changed",
    "household.risk_flagged",
    "measure.completed",
    "sync.batch_received",
]
MODES = ("none", "up", "down")


# --- the receiver (its own process, so that it does not share this one's GIL) --------------


def receive(port: int, secrets: list[str]) -> None:
    """Answer every POST with 204; GET /count tells what arrived and whether it verified."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from app.webhooks.signing import verify

    requests = 0
    deliveries: set[str] = set()
    bad_signatures = 0

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal requests, bad_signatures
            body = self.rfile.read(int(self.headers["Content-Length"]))
            header = self.headers.get("Fieldsync-Signature", "")
            if not any(verify(secret, body, header, now=time.time()) for secret in secrets):
                bad_signatures += 1
            requests += 1
            deliveries.add(self.headers.get("Fieldsync-Delivery", ""))
            self.send_response(204)
            self.end_headers()

        def do_GET(self) -> None:
            answer = json.dumps(
                {"requests": requests, "deliveries": len(deliveries), "bad": bad_signatures}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


# --- one run --------------------------------------------------------------------------------


async def _seed_admin(url: str) -> None:
    from app.core.config import get_settings
    from app.core.db import make_engine, make_sessionmaker
    from app.wiring import assemble

    assemble()

    engine = make_engine(get_settings(), url=url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await add_user(session, ADMIN_ID, ADMIN, "county_admin", "基准测试 县管理员", (COUNTY,))
    finally:
        await engine.dispose()


async def _outbox(url: str) -> dict[str, int]:
    """Events not yet fanned out, deliveries by status."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from app.core.config import get_settings
    from app.core.db import make_engine
    from app.webhooks.models import WebhookDelivery, WebhookEvent

    engine = make_engine(get_settings(), url=url)
    try:
        async with engine.connect() as conn:
            waiting = await conn.scalar(
                select(func.count()).where(col(WebhookEvent.dispatched_at).is_(None))
            )
            counts = dict(
                (
                    await conn.execute(
                        select(col(WebhookDelivery.status), func.count()).group_by(
                            col(WebhookDelivery.status)
                        )
                    )
                ).all()
            )
            events = await conn.scalar(select(func.count()).select_from(WebhookEvent))
        return {"undispatched": int(waiting or 0), "events": int(events or 0), **counts}
    finally:
        await engine.dispose()


def _token(base: str, username: str, **form: str) -> str:
    data = {"grant_type": "password", "username": username, "password": PASSWORD, **form}
    response = httpx.post(f"{base}/api/v1/auth/token", data=data, timeout=30)
    response.raise_for_status()
    return str(response.json()["access_token"])


def run(backend: str, mode: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    receiver_port = _free_port()
    hook_url = f"http://127.0.0.1:{receiver_port}/hooks"
    with new_database(backend, tmp, args.postgres_url) as url:
        prepare(url)
        asyncio.run(_seed_admin(url))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")},
            "FIELDSYNC_DATABASE_URL": url,
            "FIELDSYNC_DATA_DIR": str(tmp / f"data-{backend}-{mode}"),
            "FIELDSYNC_PORT": str(_free_port()),
            "FIELDSYNC_LOG_LEVEL": "WARNING",
            "FIELDSYNC_SECRET_KEY": "bench-signing-key-" + "k" * 40,
            "FIELDSYNC_PII_KEY": "bench-pii-key-" + "p" * 40,
            "FIELDSYNC_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
        }
        device = "android-bench"
        warmup = build_bodies(WARMUP_BATCHES, device)
        bodies = build_bodies(args.batches, device)
        with serve(env, tmp / f"server-{backend}-{mode}.log") as base:
            admin = {"Authorization": f"Bearer {_token(base, ADMIN)}"}
            secrets = []
            for n in range(args.webhooks if mode != "none" else 0):
                created = httpx.post(
                    f"{base}/api/v1/webhooks",
                    json={"url": hook_url, "event_types": EVENT_TYPES, "description": f"#{n}"},
                    headers=admin,
                    timeout=30,
                )
                created.raise_for_status()
                secrets.append(created.json()["secret"])
            receiver = None
            if mode == "up":
                receiver = subprocess.Popen(
                    [sys.executable, __file__, "--receiver", str(receiver_port), *secrets]
                )
                _wait_for(f"http://127.0.0.1:{receiver_port}/count", receiver)
            try:
                token = _token(base, OFFICER, device_id=device)
                asyncio.run(send_batches(base, token, warmup, 1))
                seconds, latencies, errors = asyncio.run(
                    send_batches(base, token, bodies, args.concurrency)
                )
                answered = time.perf_counter()
                expected = (WARMUP_BATCHES + args.batches) * (BATCH + len(VILLAGES))
                drained = None
                want = expected * (args.webhooks if mode != "none" else 0)
                deadline = time.monotonic() + args.drain_timeout
                while time.monotonic() < deadline:
                    state = asyncio.run(_outbox(url))
                    deliveries = (
                        state.get("delivered", 0)
                        if mode == "up"
                        else sum(v for k, v in state.items() if k not in ("events", "undispatched"))
                    )
                    if state["undispatched"] == 0 and deliveries == want:
                        drained = time.perf_counter() - answered
                        break
                    time.sleep(0.2)
                got = (
                    httpx.get(f"http://127.0.0.1:{receiver_port}/count", timeout=10).json()
                    if receiver
                    else None
                )
                state = asyncio.run(_outbox(url))
            finally:
                if receiver is not None:
                    receiver.terminate()
                    receiver.wait()
    latencies.sort()
    return {
        "backend": backend,
        "mode": mode,
        "visits_per_s": args.batches * BATCH / seconds,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "errors": errors,
        "events": state["events"],
        "expected_events": expected,
        "drained": drained,
        "state": state,
        "received": got,
    }


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the receiver did not start")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--receiver":
        receive(int(sys.argv[2]), sys.argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batches", type=int, default=40, help="timed batches of 100 visits")
    parser.add_argument("-c", "--concurrency", type=int, default=4, help="batches in flight")
    parser.add_argument("--webhooks", type=int, default=2, help="webhooks, every event type")
    parser.add_argument("--drain-timeout", type=float, default=300, help="seconds")
    parser.add_argument(
        "--backend", action="append", choices=("sqlite", "postgresql"), help="default: both"
    )
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    args = parser.parse_args()
    backends = args.backend or ["sqlite", "postgresql"]

    with tempfile.TemporaryDirectory(prefix="fieldsync-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        os.environ.update(FIELDSYNC_DATA_DIR=str(tmp / "data"), FIELDSYNC_LOG_LEVEL="WARNING")
        per_batch = BATCH + len(VILLAGES)
        print(
            f"fieldsync webhook overhead: {args.batches} batches x {BATCH} new visits, "
            f"{args.concurrency} in flight, 1 server process; {per_batch} events per batch, "
            f"{args.webhooks} webhooks of every event type (none / receiver up / receiver down)"
        )
        print(
            f"  {'backend':<11} {'webhooks':<9} {'visits/s':>9} {'batch p50':>10}"
            f" {'batch p99':>10} {'outbox':>7} {'drained':>9}  receiver / deliveries"
        )
        for backend in backends:
            if backend == "postgresql" and not postgres_available(args.postgres_url):
                print(f"  {backend:<11} skipped: no PostgreSQL at {args.postgres_url}")
                continue
            for mode in MODES:
                r = run(backend, mode, args, tmp)
                drained = f"{r['drained']:.1f}s" if r["drained"] is not None else "-"
                if r["drained"] is None:
                    drained = "timeout"
                got = r["received"]
                statuses = {
                    k: v for k, v in r["state"].items() if k not in ("events", "undispatched")
                }
                detail = (
                    f"{got['requests']} requests, {got['deliveries']} distinct, "
                    f"{got['bad']} bad signatures; {statuses}"
                    if got
                    else f"{statuses or 'no deliveries'}"
                )
                print(
                    f"  {backend:<11} {mode:<9} {r['visits_per_s']:>9,.0f} {r['p50']:>9.2f}s"
                    f" {r['p99']:>9.2f}s {r['events']:>7} {drained:>9}  {detail}"
                    + (f"  ({r['errors']} 5xx retried)" if r["errors"] else "")
                )
                if mode != "none" and r["events"] != r["expected_events"]:
                    print(f"    events written {r['events']} != {r['expected_events']} expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
