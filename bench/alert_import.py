"""Benchmark: `fieldsync import-alerts` on a 100,000-row department list, SQLite and PostgreSQL.

For each backend (SQLite, and PostgreSQL when it answers) a fresh database is migrated with the
real migrations and filled with one generated county (20 towns of 10 villages; default 30,000
households with 100,000 current members, each with a valid ID number and its keyed hash), the
rows inserted through SQLAlchemy Core executemany (multi-row INSERTs), then ANALYZEd (VACUUM
ANALYZE on PostgreSQL), as a database in service is. Then, before the clock, a CSV of --rows
rows (default 100,000) is written: 72% ID numbers of the county's members, 3% rows repeated from
earlier in the file (in-file duplicates), 15% valid ID numbers nobody in the county holds, 10%
bad rows (wrong check character, unknown kind, amount with a thousands separator, a date in the
future).

`fieldsync import-alerts FILE --county CODE` runs as a subprocess, as an operator runs it: the
time is the wall time of the whole process (start-up and imports included), beside its CPU time
(user + system, all its threads) and its peak memory, ru_maxrss (os.wait4 on that child alone).
The CLI commits every 10,000 rows, so SQLite's write lock is held seconds at a time. The same
file is imported a second time, which must store nothing new; the alerts in the database are
counted after each run.

    make bench-alerts           # or: .venv/bin/python bench/alert_import.py --rows 20000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.databases import new_database

POSTGRES_URL = os.environ.get(
    "FIELDSYNC_TEST_POSTGRES_URL", "postgresql+asyncpg://root@127.0.0.1:5432/test"
)
PROVINCE, CITY, COUNTY = "370000000000", "371500000000", "371599000000"
TOWNS, VILLAGES_PER_TOWN = 20, 10
ADMIN, PASSWORD = "bench.county", "bench-password-1"
PII_KEY = "bench-pii-key-" + "k" * 40
FIELDSYNC = str(Path(sys.executable).with_name("fieldsync"))
INSERT_ROWS = 10_000  # rows per executemany while generating
DEPARTMENT_KINDS = [
    ("civil_affairs", "assistance_granted"),
    ("civil_affairs", "death"),
    ("medical_insurance", "large_medical_expense"),
    ("education", "dropout"),
    ("housing", "dilapidated_house"),
    ("disabled_persons", "disability"),
    ("emergency", "disaster"),
    ("human_resources", "job_loss"),
    ("public_security", "moved_out"),
]


def villages() -> list[str]:
    return [
        f"{COUNTY[:6]}{town:03d}{200 + village:03d}"
        for town in range(1, TOWNS + 1)
        for village in range(1, VILLAGES_PER_TOWN + 1)
    ]


def regions_csv() -> str:
    lines = [
        "code,name,parent_code,rural_population",
        f"{PROVINCE},山东省,,",
        f"{CITY},聊城市,{PROVINCE},",
        f"{COUNTY},基准县,{CITY},",
    ]
    for town in range(1, TOWNS + 1):
        town_code = f"{COUNTY[:6]}{town:03d}000"
        lines.append(f"{town_code},第{town}镇,{COUNTY},")
        for village in range(1, VILLAGES_PER_TOWN + 1):
            code = f"{town_code[:9]}{200 + village:03d}"
            lines.append(f"{code},{town}镇{village}村,{town_code},3000")
    return "\n".join(lines) + "\n"


def id_number(n: int, area: str = COUNTY[:6]) -> str:
    """The n-th distinct valid ID number of `area`: birth dates 1940–2019, sequences 001–999."""
    from app.households.id_numbers import check_char

    day = n % 9_999
    year, rest = 1940 + day // 125 % 80, day % 125
    month, dom = 1 + rest // 28 % 12, 1 + rest % 28
    body = f"{area}{year:04d}{month:02d}{dom:02d}{1 + n // 9_999 % 999:03d}"
    return body + check_char(body)


# --- the county -----------------------------------------------------------------------------


async def _seed(url: str, households: int, members: int) -> list[str]:
    """Regions, the county admin, the households and members; the members' ID numbers."""
    from sqlalchemy import func, insert, select, text

    from app.core.config import get_settings
    from app.core.db import make_engine, make_sessionmaker
    from app.wiring import assemble

    assemble()
    from app.households import id_numbers
    from app.households.models import Household, Member
    from app.regions import service as regions_service
    from app.users import service as users_service
    from app.users.models import Role
    from app.users.schemas import UserCreate

    engine = make_engine(get_settings(), url=url)
    now = datetime.now(UTC)
    codes = villages()
    rng = random.Random(14)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            report = await regions_service.import_regions(session, text=regions_csv())
            assert not report.errors, report.errors
            await users_service.upsert_user(
                session,
                data=UserCreate(
                    username=ADMIN,
                    password=PASSWORD,
                    role=Role.county_admin,
                    regions=[COUNTY],
                    display_name="基准 县管理员",
                ),
            )
        # Templates with every column's default, so that the rows stay valid as columns come.
        household_template = Household(number="0", village_code=COUNTY, head_name="x")
        household_row = household_template.model_dump()
        member_template = Member(household_id=uuid.uuid4(), name="x", relation="head")
        member_row = member_template.model_dump()
        house_rows: list[dict[str, Any]] = []
        member_rows: list[dict[str, Any]] = []
        numbers: list[str] = []
        extra = members - 3 * households  # households with a fourth member
        key = get_settings().pii_hash_key
        for h in range(households):
            household_id = uuid.uuid4()
            head = f"张{h % 97}"
            house_rows.append(
                household_row
                | {
                    "id": household_id,
                    "number": f"{COUNTY[:6]}{h:010d}",
                    "village_code": codes[h % len(codes)],
                    "head_name": head,
                    "status": rng.choice(["lifted", "lifted_no_support", "in_poverty"]),
                    "attribute": "general",
                    "main_cause": "illness",
                    "identified_year": 2014,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            size = 4 if h < extra else 3
            for i in range(size):
                number = id_number(len(numbers))
                numbers.append(number)
                member_rows.append(
                    member_row
                    | {
                        "id": uuid.uuid4(),
                        "household_id": household_id,
                        "name": head if i == 0 else f"成员{i}",
                        "relation": "head" if i == 0 else "child",
                        "id_number": number,
                        "id_number_hash": id_numbers.search_hash(number, key=key),
                        "birth_date": id_numbers.birth_date(number),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        async with engine.begin() as conn:
            for model, rows in ((Household, house_rows), (Member, member_rows)):
                table = model.__table__  # type: ignore[attr-defined]
                # executemany: SQLAlchemy batches it into multi-row INSERTs of one compilation.
                for start in range(0, len(rows), INSERT_ROWS):
                    await conn.execute(insert(table), rows[start : start + INSERT_ROWS])
        async with engine.connect() as conn:
            # Statistics, as a database in service has them (autovacuum's ANALYZE).
            if conn.dialect.name == "postgresql":
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE"))
            else:
                await conn.execute(text("ANALYZE"))
                await conn.commit()
            stored = (await conn.execute(select(func.count()).select_from(Member))).scalar_one()
            assert stored == len(numbers), (stored, len(numbers))
    finally:
        await engine.dispose()
    return numbers


def write_csv(path: Path, numbers: list[str], rows: int) -> dict[str, int]:
    """The department list: what each row is meant to be, counted."""
    rng = random.Random(2026)
    planned = {"matched": 0, "duplicate": 0, "unmatched": 0, "bad": 0}
    lines = ["department,id_number,kind,amount,occurred_on,note"]
    written: list[str] = []
    members = rng.sample(numbers, min(len(numbers), rows))
    for n in range(rows):
        department, kind = DEPARTMENT_KINDS[n % len(DEPARTMENT_KINDS)]
        amount = f"{rng.randint(1000, 90000)}.{rng.randint(0, 99):02d}" if n % 3 == 0 else ""
        day = date(2026, 1 + n % 11, 1 + n % 28).isoformat()
        share = rng.random()
        if share < 0.72 or not written:
            number, what = members[n % len(members)], "matched"
        elif share < 0.75:
            line = written[rng.randrange(len(written))]  # a row again, as it was
            lines.append(line)
            written.append(line)
            planned["duplicate"] += 1
            continue
        elif share < 0.90:
            number, what = id_number(n, area="371598"), "unmatched"  # the county next door
        else:
            number, what = members[n % len(members)], "bad"
            match n % 4:
                case 0:
                    number = number[:17] + ("0" if number[17] != "0" else "1")
                case 1:
                    kind = "sick"
                case 2:
                    amount = '"1,200.00"'
                case _:
                    day = "2099-01-01"
        line = f"{department},{number},{kind},{amount},{day},基准{n}"
        if what != "bad":
            written.append(line)
        lines.append(line)
        planned[what] += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return planned


# --- the runs -------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    cpu_seconds: float  # user + system, the child's threads included (aiosqlite's)
    peak_mb: float
    stdout: str
    stderr: str


def import_once(env: dict[str, str], csv_file: Path, tmp: Path) -> Run:
    out, err = tmp / "stdout.txt", tmp / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(
            [FIELDSYNC, "import-alerts", str(csv_file), "--county", COUNTY],
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"import-alerts failed:\n{out.read_text()}\n{err.read_text()}")
    # ru_maxrss is in KiB on Linux.
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, cpu, usage.ru_maxrss / 1024, out.read_text(), err.read_text())


async def _alerts(url: str) -> int:
    from sqlalchemy import func, select

    from app.core.config import get_settings
    from app.core.db import make_engine
    from app.monitoring.models import MonitoringAlert

    engine = make_engine(get_settings(), url=url)
    try:
        async with engine.connect() as conn:
            count = await conn.execute(select(func.count()).select_from(MonitoringAlert))
            return int(count.scalar_one())
    finally:
        await engine.dispose()


def bench_backend(backend: str, args: argparse.Namespace, tmp: Path) -> list[str]:
    from app.core import migrations

    lines = []
    with new_database(backend, tmp, POSTGRES_URL) as url:
        print(f"== {backend}: generating the county", flush=True)
        started = time.perf_counter()
        migrations.upgrade(url)
        numbers = asyncio.run(_seed(url, args.households, args.members))
        print(
            f"   {args.households:,} households, {len(numbers):,} members in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        csv_file = tmp / f"alerts-{backend}.csv"
        planned = write_csv(csv_file, numbers, args.rows)
        size = csv_file.stat().st_size / 1e6
        print(f"   {args.rows:,} rows written ({size:.1f} MB): {planned}", flush=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")}
        env |= {
            "FIELDSYNC_DATABASE_URL": url,
            "FIELDSYNC_DATA_DIR": str(tmp / "data"),
            "FIELDSYNC_PII_KEY": PII_KEY,
            "FIELDSYNC_ENVIRONMENT": "development",
        }
        for label in ("first import", "second import"):
            run = import_once(env, csv_file, tmp)
            stored = asyncio.run(_alerts(url))
            report = run.stdout.strip().splitlines()[-1]
            line = (
                f"{backend:<10} {label:<13} {args.rows / run.seconds:>9,.0f} rows/s "
                f"{run.seconds:>7.2f} s (CPU {run.cpu_seconds:5.1f} s)  "
                f"peak RSS {run.peak_mb:>4.0f} MB  "
                f"alerts stored {stored:,}  | {report}"
            )
            print(line, flush=True)
            if args.verbose:
                print(run.stderr)
            lines.append(line)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=30_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--backend", choices=("sqlite", "postgresql", "both"), default="both", help="default both"
    )
    parser.add_argument("--verbose", action="store_true", help="show the import's progress")
    args = parser.parse_args()
    if not 3 * args.households <= args.members <= 4 * args.households:
        parser.error("--members must be 3 to 4 times --households")
    os.environ |= {
        "FIELDSYNC_PII_KEY": PII_KEY,
        "FIELDSYNC_ENVIRONMENT": "development",
        "FIELDSYNC_SECRET_KEY": "bench-signing-key-" + "s" * 40,
    }
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: list[str] = []
    with tempfile.TemporaryDirectory(prefix="fieldsync-bench-alerts-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["FIELDSYNC_DATA_DIR"] = str(tmp / "data")
        for backend in backends:
            if backend == "postgresql" and not _postgres_available():
                print(f"PostgreSQL is not reachable at {POSTGRES_URL}: skipped", flush=True)
                continue
            results += bench_backend(backend, args, tmp)
    print("\n== summary (wall time of the whole `fieldsync import-alerts` process)")
    print(f"   load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for line in results:
        print(line)
    return 0


def _postgres_available() -> bool:
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(False)

    async def ping() -> None:
        conn = await asyncpg.connect(dsn, timeout=3)
        await conn.close()

    try:
        asyncio.run(ping())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
