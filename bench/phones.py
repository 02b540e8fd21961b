"""Benchmark: the end of the day, N phones syncing at once over slow, lossy links.

For each backend (SQLite, and PostgreSQL when it answers) a fresh migrated database gets a county
of one village per phone (towns of 100 villages), each with its officer and its households (two
members each), written through the ORM so that the change feed holds them. `fieldsync serve`
(one uvicorn worker) starts as in `bench/sync_ingest.py`, and the phone simulator of
`fieldsync simulate` (app/simulator) runs in this process: each phone logs in, downloads its
village from the change feed, records visits and income snapshots offline, syncs them in batches
and reads back what the server holds. Most phones are on slow links (latency, 64 kbit/s, one
request in ten lost, half of them after the server acted); a tenth on a perfect link give the
batch latency the server itself causes under that load.

Two settings differ from a deployment, both for the machine rather than the server:
- The officers' password hashes are argon2 at its lowest cost. At the default cost a login
  verifies for ~0.15 s of CPU inside the event loop, and 2,000 logins would measure that alone.
- The token endpoint's limit per client address is lifted: every phone here comes from 127.0.0.1,
  which in the field they do not.

The server's VmRSS is sampled every 20 ms (bench/photo_upload.py's sampler) and its VmHWM is reset
before the phones start, so the peak covers the run. Afterwards the database itself is read:
every record the phones hold must be stored once, at the revision the phone holds, and no other
record may carry a simulated phone's device. The figures go to bench/results/phones.json, which
bench/targets.py sets against issue 15's target.

    make bench-phones               # or: .venv/bin/python bench/phones.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

from photo_upload import RssSampler, cpu_seconds, memory_kib, reset_peak, server_pid
from progress_read import CITY, COUNTY, PROVINCE
from results import merge
from sync_ingest import (
    PASSWORD,
    POSTGRES_URL,
    add_user,
    household,
    new_database,
    postgres_available,
    serve,
    server_env,
)

from app.simulator import Config, LinkProfile, Plan, Summary, simulate, usernames
from app.simulator.run import SLOW_LINK
from app.simulator.summary import percentile

OFFICER_PREFIX = "bench.phone."
VILLAGES_PER_TOWN = 100
HOUSEHOLDS_PER_VILLAGE = 10
SEED = 20261207
FULL_PHONES, QUICK_PHONES = 2000, 200
# The default --ramp-seconds is phones / this: below what one server process on the 2-core
# machine takes (~15 phones/s on SQLite), so that latency is measured under load, not backlog.
RAMP_PHONES_PER_SECOND = 10


def village_codes(count: int) -> list[str]:
    return [
        f"{COUNTY[:6]}{1 + n // VILLAGES_PER_TOWN:03d}{201 + n % VILLAGES_PER_TOWN:03d}"
        for n in range(count)
    ]


def regions_csv(villages: list[str]) -> str:
    lines = [
        "code,name,parent_code,rural_population",
        f"{PROVINCE},山东省,,",
        f"{CITY},聊城市,{PROVINCE},",
        f"{COUNTY},基准县,{CITY},",
    ]
    for town in sorted({code[:9] for code in villages}):
        lines.append(f"{town}000,第{int(town[6:])}镇,{COUNTY},")
    lines += [f"{code},{code[6:9]}镇{code[9:]}村,{code[:9]}000," for code in villages]
    return "\n".join(lines) + "\n"


async def _seed(url: str, phones: int) -> dict[str, int]:
    """The county, an officer per village and its households; rows of each kind."""
    from argon2 import PasswordHasher

    from app.core.config import get_settings
    from app.core.db import make_engine, make_sessionmaker
    from app.households.models import Member
    from app.regions import service as regions_service
    from app.wiring import assemble

    assemble()  # the change log: the feed must hold the households
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    villages = list(zip(village_codes(phones), usernames(OFFICER_PREFIX, phones), strict=True))
    engine = make_engine(get_settings(), url=url)
    try:
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session, session.begin():
            text = regions_csv([code for code, _ in villages])
            report = await regions_service.import_regions(session, text=text)
            assert not report.errors, report.errors
        for start in range(0, phones, 200):  # 200 villages per transaction
            async with sessionmaker() as session, session.begin():
                households = []
                for n, (village, username) in enumerate(villages[start : start + 200], start):
                    name = f"基准 信息员 {n + 1}"
                    await add_user(
                        session,
                        uuid.uuid4(),
                        username,
                        "officer",
                        name,
                        (village,),
                        password_hash=cheap,
                    )
                    households += [
                        household(village, seq, status="lifted", exit_year=2019)
                        for seq in range(HOUSEHOLDS_PER_VILLAGE)
                    ]
                session.add_all(households)
                await session.flush()
                session.add_all(
                    Member(household_id=home.id, name=name, relation=relation)
                    for home in households
                    for name, relation in (("王秀英", "head"), ("李建国", "spouse"))
                )
    finally:
        await engine.dispose()
    return {
        "villages": phones,
        "households": phones * HOUSEHOLDS_PER_VILLAGE,
        "members": 2 * phones * HOUSEHOLDS_PER_VILLAGE,
    }


async def _stored(url: str, devices: str) -> dict[tuple[str, uuid.UUID], int]:
    """The revision of every record first sent by a device named like `devices`."""
    from sqlalchemy import select

    from app.core.config import get_settings
    from app.core.db import make_engine
    from app.records.models import IncomeSnapshot, Visit

    engine = make_engine(get_settings(), url=url)
    stored: dict[tuple[str, uuid.UUID], int] = {}
    try:
        async with engine.connect() as conn:
            for kind, model in (("visit", Visit), ("income_snapshot", IncomeSnapshot)):
                table = model.__table__  # type: ignore[attr-defined]
                rows = await conn.execute(
                    select(table.c.id, table.c.revision).where(table.c.device_id.like(devices))
                )
                stored.update(((kind, record_id), revision) for record_id, revision in rows)
    finally:
        await engine.dispose()
    return stored


def database_check(url: str, summary: Summary) -> dict[str, int]:
    """The phones' records as the database holds them: rows, missing, at an older revision than
    the phone's, and extra (stored from a phone that does not hold them: a duplicate)."""
    stored = asyncio.run(_stored(url, f"sim-{SEED}-%"))
    held = summary.held
    return {
        "rows": len(stored),
        "missing": sum(key not in stored for key in held),
        "behind": sum(key in stored and stored[key] < rev for key, rev in held.items()),
        "extra": sum(key not in held for key in stored),
    }


def run_backend(backend: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from app.core import migrations

    with new_database(backend, tmp, args.postgres_url) as url:
        migrations.upgrade(url)
        clock = time.perf_counter()
        seeded = asyncio.run(_seed(url, args.phones))
        print(f"[{backend}] seeded in {time.perf_counter() - clock:.0f} s: {seeded}", flush=True)
        env = server_env(
            url,
            tmp / f"data-{backend}",
            FIELDSYNC_RATE_LIMIT_TOKEN_IP="",  # one address for every phone (see above)
            FIELDSYNC_MEDIA_DIR=str(tmp / f"media-{backend}"),
        )
        with ExitStack() as stack:
            base = stack.enter_context(serve(env, tmp / f"server-{backend}.log"))
            pid = server_pid(int(env["FIELDSYNC_PORT"]))
            before = memory_kib(pid)["VmRSS"]
            reset_peak(pid)
            sampler = RssSampler(pid)
            sampler.start()
            stack.callback(sampler.stop)
            started, cpu, own_cpu = time.monotonic(), cpu_seconds(pid), time.process_time()
            stack.callback(_server_gone, pid, tmp / f"server-{backend}.log")
            summary = asyncio.run(
                simulate(
                    config(args, base), progress=lambda line: print(f"  {line}", file=sys.stderr)
                )
            )
            result = {
                "backend": backend,
                "summary": summary,
                "rss_before": before,
                "rss_sampled": sampler.peak(started, time.monotonic()),
                "rss_hwm": memory_kib(pid)["VmHWM"],
                "server_cpu": cpu_seconds(pid) - cpu,
                "phones_cpu": time.process_time() - own_cpu,
            }
        check = result["check"] = database_check(url, summary)
    stored_once = not (check["missing"] or check["behind"] or check["extra"])
    result["all_in"] = summary.all_in and stored_once
    result["ok"] = summary.ok and stored_once
    return result


def _server_gone(pid: int, log: Path) -> None:
    """Say so, with how it ended and the end of its log, when the server died during the run."""
    if "VmRSS" in memory_kib(pid):
        return
    # Not yet reaped: the last field of its stat is the status waitpid would give.
    status = int(Path(f"/proc/{pid}/stat").read_text().split()[-1])
    how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {status >> 8}"
    tail = log.read_text(errors="replace")[-3000:]
    print(f"  the server process died ({how}); the end of its log:\n{tail}", file=sys.stderr)


def config(args: argparse.Namespace, base: str) -> Config:
    return Config(
        phones=args.phones,
        users=[(name, PASSWORD) for name in usernames(OFFICER_PREFIX, args.phones)],
        plan=Plan(
            today=date.today(),
            records=args.records_per_phone,
            batch_size=args.batch_size,
            photos=args.photos_per_phone,
            conflict_share=args.conflict_share,
        ),
        base_url=base,
        slow_link=LinkProfile(
            latency_ms=args.latency_ms, bandwidth_kbps=args.bandwidth_kbps, loss=args.loss
        ),
        fast_share=args.fast_share,
        seed=SEED,
        ramp_seconds=args.ramp_seconds,
        progress_seconds=10,
    )


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def report(r: dict[str, Any]) -> list[str]:
    summary: Summary = r["summary"]
    check = r["check"]
    p99 = percentile(summary.fast_batch_seconds, 0.99)
    slow_p99 = percentile(summary.slow_batch_seconds, 0.99)
    return [
        f"  {r['backend']}: phones {summary.phones} ({summary.fast_phones} on a perfect link), "
        f"records {summary.records}, all in: {'yes' if r['all_in'] else 'no'}, "
        f"lost {summary.lost}, duplicated {summary.duplicates + check['extra']}",
        f"    fast phones' batch p99 {_seconds(p99)} (p50 "
        f"{_seconds(percentile(summary.fast_batch_seconds, 0.5))}), slow links' p99 "
        f"{_seconds(slow_p99)}; server peak RSS {_mib(r['rss_hwm'])} (VmHWM; sampled "
        f"{_mib(r['rss_sampled'])}, {_mib(r['rss_before'])} before); "
        f"wall time {summary.seconds:.1f} s",
        f"    CPU: server {r['server_cpu']:.1f} s, phones (this process) {r['phones_cpu']:.1f} s",
        f"    database: {check['rows']} rows from the phones' devices; missing {check['missing']}, "
        f"behind {check['behind']}, extra {check['extra']}",
        *(f"    {line}" for line in summary.lines()),
    ]


def figures(r: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """What bench/targets.py sets against issue 15's target (bench/results/phones.json)."""
    summary: Summary = r["summary"]
    check = r["check"]

    def ms(values: list[float], q: float) -> float | None:
        value = percentile(values, q)
        return None if value is None else value * 1000

    return {
        "phones": summary.phones,
        "fast_phones": summary.fast_phones,
        "records": summary.records,
        "all_in": r["all_in"],
        "lost": summary.lost,
        "duplicated": summary.duplicates + check["extra"],
        "skipped_by_feed": summary.skipped_by_feed,
        "replays": summary.replays_answered,
        "retries": summary.retries,
        "fast_p50_ms": ms(summary.fast_batch_seconds, 0.5),
        "fast_p99_ms": ms(summary.fast_batch_seconds, 0.99),
        "slow_p99_ms": ms(summary.slow_batch_seconds, 0.99),
        "peak_rss_mb": r["rss_hwm"] * 1024 / 1e6,
        "server_cpu_s": r["server_cpu"],
        "wall_s": summary.seconds,
        "settings": {
            k: v for k, v in vars(args).items() if k not in ("quick", "backend", "postgres_url")
        },
    }


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--phones", type=int, default=None, help=f"default {FULL_PHONES}")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PHONES} phones")
    parser.add_argument("--records-per-phone", type=int, default=Plan.records)
    parser.add_argument("--batch-size", type=int, default=Plan.batch_size)
    parser.add_argument("--photos-per-phone", type=int, default=Plan.photos)
    parser.add_argument("--conflict-share", type=float, default=Plan.conflict_share)
    parser.add_argument("--loss", type=float, default=SLOW_LINK.loss)
    parser.add_argument("--latency-ms", type=float, default=SLOW_LINK.latency_ms)
    parser.add_argument("--bandwidth-kbps", type=float, default=SLOW_LINK.bandwidth_kbps)
    parser.add_argument("--fast-share", type=float, default=Config.fast_share)
    parser.add_argument("--ramp-seconds", type=float, default=None)
    parser.add_argument(
        "--backend", action="append", choices=("sqlite", "postgresql"), help="default: both"
    )
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    args = parser.parse_args()
    args.phones = args.phones or (QUICK_PHONES if args.quick else FULL_PHONES)
    if args.ramp_seconds is None:
        args.ramp_seconds = args.phones / RAMP_PHONES_PER_SECOND
    backends = args.backend or ["sqlite", "postgresql"]

    failed = False
    with tempfile.TemporaryDirectory(prefix="fieldsync-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        os.environ.update(FIELDSYNC_DATA_DIR=str(tmp / "data"), FIELDSYNC_LOG_LEVEL="WARNING")
        print(
            f"fieldsync end of the day: {args.phones} phones x {args.records_per_phone} records, "
            f"batches of {args.batch_size}, coming into signal over {args.ramp_seconds:.0f} s; "
            f"slow links {args.latency_ms:.0f} ms, {args.bandwidth_kbps:.0f} kbit/s, "
            f"{args.loss:.0%} lost; {args.fast_share:.0%} of phones on a perfect link; "
            "1 server process (uvicorn, 1 worker)"
        )
        for backend in backends:
            if backend == "postgresql" and not postgres_available(args.postgres_url):
                print(f"  {backend}: skipped, no PostgreSQL at {args.postgres_url}")
                continue
            r = run_backend(backend, args, tmp)
            print("\n".join(report(r)), flush=True)
            merge("phones", backend, figures(r, args))
            failed |= not r["ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
