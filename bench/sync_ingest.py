"""Benchmark: visits per second through POST /sync/batches, next to raw inserts of the same rows.

For each backend (SQLite, and PostgreSQL when it answers) this builds a fresh migrated database
with a small seed (the demo regions, one officer, 90 households), starts `fieldsync serve` (one
uvicorn worker, no reload) and sends batches of 100 new visits from N concurrent async clients.
Every request body is built and serialised before the clock starts. Then the very rows the server
stored are read back and inserted into the `visit` table of a second fresh migrated database
(same seed, same driver: aiosqlite or asyncpg, through SQLAlchemy Core `insert` executemany),
one transaction per 100 rows like the batches. The ratio is what the API costs over the insert:
validation, authorisation, the idempotency check and stored answer, the per-record savepoint and
the sync change log.

Why not wrk, as `bench/list_households.py` uses: every batch must carry a distinct body (a new
batch_id and new record ids; the same body again is an idempotent replay that writes nothing),
which wrk can only do with a Lua script generating JSON. The server is the limit here (each
request is 100 records of work), so a Python asyncio client sending prepared bodies is enough;
it shares the machine's cores with the server, as wrk would.

    make bench-sync                 # or: .venv/bin/python bench/sync_ingest.py --batches 100 -c 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Table
from sqlalchemy.engine import make_url

# The benchmark creates and drops its databases as the test suite does.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from results import merge

from tests.databases import new_database

FIELDSYNC = str(Path(sys.executable).with_name("fieldsync"))
POSTGRES_URL = os.environ.get(
    "FIELDSYNC_TEST_POSTGRES_URL", "postgresql+asyncpg://root@127.0.0.1:5432/test"
)
BATCH = 100
WARMUP_BATCHES = 2
OFFICER, PASSWORD = "bench.officer", "bench-password-1"
OFFICER_ID = uuid.UUID("00000000-0000-4000-8000-00000000b001")
VILLAGES = ("371522101201", "371522101202", "371522101203")
HOUSEHOLDS_PER_VILLAGE = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _household_ids() -> list[uuid.UUID]:
    return [
        uuid.uuid5(OFFICER_ID, f"{village}-{seq}")
        for village in VILLAGES
        for seq in range(HOUSEHOLDS_PER_VILLAGE)
    ]


# --- databases ----------------------------------------------------------------------------


def postgres_available(postgres_url: str) -> bool:
    import asyncpg

    dsn = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)

    async def _ping() -> None:
        conn = await asyncpg.connect(dsn, timeout=3)
        await conn.close()

    try:
        asyncio.run(_ping())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


def prepare(url: str) -> None:
    """Migrate and seed: the demo regions, one officer of three villages, their households."""
    from app.core import migrations

    migrations.upgrade(url)
    asyncio.run(_seed(url))


async def add_user(
    session: Any,
    user_id: uuid.UUID,
    username: str,
    role: str,
    display_name: str,
    regions: tuple[str, ...],
    *,
    password_hash: str | None = None,
) -> None:
    """A user with the benchmark's password, assigned to `regions` (`password_hash`: that
    password hashed once for many users)."""
    from app.core.security import hash_password
    from app.users.models import User, UserRegion

    session.add(
        User(
            id=user_id,
            username=username,
            password_hash=password_hash or hash_password(PASSWORD),
            role=role,
            display_name=display_name,
        )
    )
    await session.flush()
    session.add_all(UserRegion(user_id=user_id, region_code=code) for code in regions)


def household(village: str, seq: int, **fields: Any) -> Any:
    """Household `seq` of `village`, registered, as the benchmarks seed them; `fields` differ."""
    from app.households.models import Household

    defaults: dict[str, Any] = {
        "head_name": "王秀英",
        "attribute": "general",
        "status": "in_poverty",
        "main_cause": "illness",
        "identified_year": 2014,
    }
    return Household(number=f"{village}{seq:04d}", village_code=village, **{**defaults, **fields})


async def _seed(url: str) -> None:
    from app.core.config import get_settings
    from app.core.db import make_engine, make_sessionmaker
    from app.wiring import assemble

    assemble()
    from app.demo.seed import regions_csv
    from app.regions import service as regions_service

    engine = make_engine(get_settings(), url=url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            report = await regions_service.import_regions(session, text=regions_csv())
            assert not report.errors, report.errors
            await add_user(session, OFFICER_ID, OFFICER, "officer", "基准测试 信息员", VILLAGES)
            ids = iter(_household_ids())
            for village in VILLAGES:
                for seq in range(HOUSEHOLDS_PER_VILLAGE):
                    session.add(household(village, seq, id=next(ids)))
    finally:
        await engine.dispose()


# --- the HTTP run -------------------------------------------------------------------------


def _visit(household_id: uuid.UUID, n: int, visited_at: str) -> dict[str, Any]:
    return {
        "type": "visit",
        "id": str(uuid.uuid4()),
        "revision": 1,
        "data": {
            "household_id": str(household_id),
            "visited_at": visited_at,
            "mode": "in_home",
            "location": {"lat": 36.2356, "lon": 115.6718, "accuracy_m": 12.5},
            "address": "燕店镇王庄村三组",
            "findings": f"第{n}户: 户主慢性病用药正常, 光伏收益已到账, 住房安全有保障",
            "requests": "希望安排公益岗位",
            "checks": {"food": "ok", "clothing": "ok", "housing": "ok", "water": "ok"},
        },
    }


def build_bodies(count: int, device_id: str) -> list[bytes]:
    households = _household_ids()
    visited_at = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    bodies = []
    for b in range(count):
        batch = {
            "batch_id": str(uuid.uuid4()),
            "device_id": device_id,
            "app_version": "2.3.0",
            "records": [
                _visit(households[(b * BATCH + i) % len(households)], b * BATCH + i, visited_at)
                for i in range(BATCH)
            ],
        }
        bodies.append(json.dumps(batch, ensure_ascii=False).encode())
    return bodies


async def send_batches(
    base: str, token: str, bodies: list[bytes], concurrency: int
) -> tuple[float, list[float], int]:
    """Send every body, `concurrency` at a time: wall seconds, per-batch latencies, 5xx answers.

    A 5xx is retried with the same body, as the phone would (its batch was rolled back).
    """
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    queue = list(reversed(bodies))
    latencies: list[float] = []
    errors = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while queue:
            body = queue.pop()
            clock = time.perf_counter()
            response = await client.post(f"{base}/api/v1/sync/batches", content=body)
            latencies.append(time.perf_counter() - clock)
            if response.status_code >= 500 and errors < 100:
                errors += 1
                queue.append(body)
            elif response.status_code != 200 or response.json()["counts"]["created"] != BATCH:
                raise RuntimeError(f"batch failed: {response.status_code} {response.text[:300]}")

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, errors


def server_env(url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of `fieldsync serve` on `url`: quiet, a free port, fixed keys, `extra`."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")},
        "FIELDSYNC_DATABASE_URL": url,
        "FIELDSYNC_DATA_DIR": str(data_dir),
        "FIELDSYNC_PORT": str(_free_port()),
        "FIELDSYNC_LOG_LEVEL": "WARNING",
        "FIELDSYNC_SECRET_KEY": "bench-signing-key-" + "k" * 40,
        "FIELDSYNC_PII_KEY": "bench-pii-key-" + "p" * 40,
        **extra,
    }


@contextmanager
def serve(env: dict[str, str], log: Path, *, workers: int = 1) -> Iterator[str]:
    """`fieldsync serve` (with `workers` processes) until the block ends; its output goes to
    `log` (a pipe left unread would fill up and stall the server)."""
    command = [FIELDSYNC, "serve", "--workers", str(workers)]
    with log.open("wb") as output:
        server = subprocess.Popen(command, env=env, stdout=output, stderr=output)
    base = f"http://127.0.0.1:{env['FIELDSYNC_PORT']}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _visit_table() -> Table:
    from sqlmodel import SQLModel

    from app.records.models import Visit

    return SQLModel.metadata.tables[Visit.__tablename__]


async def _stored_rows(url: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from app.core.config import get_settings
    from app.core.db import make_engine

    engine = make_engine(get_settings(), url=url)
    visit = _visit_table()
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(visit).order_by(visit.c.received_at))
            return [dict(row._mapping) for row in rows]
    finally:
        await engine.dispose()


async def raw_insert(url: str, rows: list[dict[str, Any]]) -> float:
    """Insert `rows` into `visit`, 100 per transaction; the seconds it took."""
    from sqlalchemy import insert

    from app.core.config import get_settings
    from app.core.db import make_engine

    engine = make_engine(get_settings(), url=url)
    statement = insert(_visit_table())
    try:
        async with engine.connect() as conn:  # connected before the clock starts
            started = time.perf_counter()
            for i in range(0, len(rows), BATCH):
                await conn.execute(statement, rows[i : i + BATCH])
                await conn.commit()
            return time.perf_counter() - started
    finally:
        await engine.dispose()


def run_backend(backend: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with new_database(backend, tmp, args.postgres_url) as url:
        prepare(url)
        env = server_env(url, tmp / f"data-{backend}")
        device = "android-bench"
        warmup = build_bodies(WARMUP_BATCHES, device)
        bodies = build_bodies(args.batches, device)
        with serve(env, tmp / f"server-{backend}.log") as base:
            form = {
                "grant_type": "password",
                "username": OFFICER,
                "password": PASSWORD,
                "device_id": device,
            }
            response = httpx.post(f"{base}/api/v1/auth/token", data=form, timeout=30)
            response.raise_for_status()
            token = response.json()["access_token"]
            asyncio.run(send_batches(base, token, warmup, 1))
            seconds, latencies, errors = asyncio.run(
                send_batches(base, token, bodies, args.concurrency)
            )
        rows = asyncio.run(_stored_rows(url))[WARMUP_BATCHES * BATCH :]
    assert len(rows) == args.batches * BATCH, len(rows)

    with new_database(backend, tmp, args.postgres_url) as url:
        prepare(url)
        raw_seconds = asyncio.run(raw_insert(url, rows))

    latencies.sort()
    records = args.batches * BATCH
    return {
        "backend": backend,
        "http": records / seconds,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "raw": records / raw_seconds,
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batches", type=int, default=40, help="timed batches of 100 visits")
    parser.add_argument("-c", "--concurrency", type=int, default=4, help="batches in flight")
    parser.add_argument(
        "--backend", action="append", choices=("sqlite", "postgresql"), help="default: both"
    )
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    args = parser.parse_args()
    backends = args.backend or ["sqlite", "postgresql"]

    with tempfile.TemporaryDirectory(prefix="fieldsync-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        # Settings of this process (seeding, the raw inserts): a throwaway data directory.
        os.environ.update(FIELDSYNC_DATA_DIR=str(tmp / "data"), FIELDSYNC_LOG_LEVEL="WARNING")
        print(
            f"fieldsync sync ingest benchmark: {args.batches} batches x {BATCH} new visits, "
            f"{args.concurrency} in flight, 1 server process (uvicorn, 1 worker); "
            f"raw: the same rows, Core insert executemany, {BATCH} per transaction"
        )
        print(
            f"  {'backend':<11} {'HTTP visits/s':>14} {'batch p50':>10} {'batch p99':>10}"
            f" {'raw insert/s':>13} {'HTTP / raw':>11} {'5xx retried':>12}"
        )
        for backend in backends:
            if backend == "postgresql" and not postgres_available(args.postgres_url):
                print(f"  {backend:<11} skipped: no PostgreSQL at {args.postgres_url}")
                continue
            r = run_backend(backend, args, tmp)
            print(
                f"  {r['backend']:<11} {r['http']:>14,.0f} {r['p50']:>9.2f}s {r['p99']:>9.2f}s"
                f" {r['raw']:>13,.0f} {r['http'] / r['raw']:>10.1%} {r['errors']:>12}"
            )
            merge("sync_ingest", f"{backend}-c{args.concurrency}", r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
