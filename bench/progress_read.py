"""Benchmark: household and county progress reads on a generated county, SQLite and PostgreSQL.

For each backend two fresh migrated databases, side by side, are each filled with one generated
county (20 towns of 10 villages, rural population set): the large one of N households (default
50,000: 1,000,000 visits, 200,000 income snapshots) and a small one of N/10, same shape per
household. A household has 2–4 current members, 20 visits spread over two years (the six checks
mostly ok), 4 income snapshots (2021–2024, per-capita income = net income / household size, in fen),
1–3 measures (with their first revision), its status history, and a photo on one visit in ten (its
photo_ref; 95% of them uploaded: photo, photo_holder). Rows go in through SQLAlchemy Core:
`insert()` executemany on SQLite, asyncpg `copy_records_to_table` on PostgreSQL (same connection and
transaction), 5,000 households per transaction; then ANALYZE (VACUUM ANALYZE on PostgreSQL, the
state of a database autovacuum has seen). The rows of each table are counted in the database
afterwards. The sync change log is not filled: reads ignore it.

Then wrk, as the county admin, with a token and the list of URLs prepared before the clock
(`bench/wrk_progress.lua` picks a random one per request and counts statuses), from 8 and from 1
client (-t2 -c8, -t1 -c1). Each run gets a fresh `fieldsync serve` (one uvicorn worker): a fresh
connection pool, and no request of the previous run still at work; 20 household progress answers
(one county progress answer) warm it up first. Household progress, over random households of the
county, runs --duration seconds, in --rounds rounds that alternate the small and the large county,
so that a busy moment of the machine does not land on one county only; the table shows the round of
median p50 and lists every round's p50. Household progress must not slow down as the county grows
tenfold: lines under its table set the two counties side by side. County progress runs once per
county and client count, long enough for ~25 answers of the warm-up's time, at least --duration and
at most --max-duration seconds. Beside wrk's figures: the server process's CPU time per answer (the
uvicorn process only, not PostgreSQL's).

Any answer but 2xx, or the server process gone, stops the benchmark. A request unanswered after its
timeout (4x the slowest warm-up request per client, at least 10 s) fails the run: the benchmark goes
on and exits 1. On PostgreSQL, queries still running when wrk stops are cancelled (and count as
timed out when older than the timeout). `--plan-cache both` repeats the county runs with
plan_cache_mode = force_custom_plan set on the (throwaway) databases: with the default (auto), a
prepared statement may switch to a generic plan from its sixth execution on a connection, and
asyncpg prepares every statement.

Time, both backends, defaults, on the 2-core machine: about 20 minutes (SQLite ~12, PostgreSQL ~8:
generation ~1.5 min each, household progress ~3 min each, the rest county progress); ~30 minutes if
the large county's runs reach --max-duration, which bounds each county run.

    make bench-progress            # or: .venv/bin/python bench/progress_read.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from photo_upload import _wrk_requests_s, cpu_seconds, server_pid
from results import save
from sync_ingest import POSTGRES_URL, _free_port, new_database, postgres_available, serve

from app.core.money import divide_half_up
from app.demo.records import DEFAULT_MEASURE, MEASURE_FOR_CAUSE
from app.demo.seed import ATTRIBUTES, CADRES, CAUSES, GIVEN_FEMALE, GIVEN_MALE, STATUSES, SURNAMES

LUA_SCRIPT = Path(__file__).with_name("wrk_progress.lua")
PROVINCE, CITY, COUNTY = "370000000000", "371500000000", "371599000000"
TOWNS, VILLAGES_PER_TOWN = 20, 10
VISITS, YEARS = 20, (2021, 2022, 2023, 2024)
CHUNK = 5_000  # households per transaction
MAX_DURATION = 240  # s: the longest county progress run (--max-duration)
ADMIN, OFFICER, PASSWORD = "bench.county", "bench.village", "bench-password-1"
# Tables in foreign-key order; the sync change log (sync_change) is left empty.
TABLES = (
    "household",
    "household_member",
    "visit",
    "income_snapshot",
    "measure",
    "measure_revision",
    "household_change",
    "photo",
    "photo_holder",
    "photo_ref",
)
OTHER_MEASURES = [
    ("employment", "转移就业稳岗补贴", 1000),
    ("living_conditions", "改厕和庭院整治", 800),
    ("photovoltaic", "村级光伏电站收益分配", 3000),
    ("ecological", "生态护林员岗位", 10000),
]


# --- the county -----------------------------------------------------------------------------


def villages() -> list[str]:
    return [
        f"{COUNTY[:6]}{town:03d}{200 + village:03d}"
        for town in range(1, TOWNS + 1)
        for village in range(1, VILLAGES_PER_TOWN + 1)
    ]


def regions_csv(households: int, rng: random.Random) -> str:
    """The county, its towns and villages; a village's rural population fits its households
    (registered households are 4–12% of a village's people)."""
    per_village = households / (TOWNS * VILLAGES_PER_TOWN)
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
            population = round(per_village * 3 / rng.uniform(0.04, 0.12))
            lines.append(
                f"{town_code[:9]}{200 + village:03d},{town}镇{village}村,{town_code},{population}"
            )
    return "\n".join(lines) + "\n"


class Generator:
    """Rows of households `start`… of the county, deterministic from the seed."""

    def __init__(self, *, author: uuid.UUID, now: datetime, seed: int = 20240601) -> None:
        self.rng = random.Random(seed)
        self.author = author
        self.now = now
        self.villages = villages()

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _record(self, household_id: uuid.UUID, received_at: datetime) -> dict[str, Any]:
        return {
            "id": self._uuid(),
            "household_id": household_id,
            "revision": 1,
            "content_hash": f"{self.rng.getrandbits(256):064x}",
            "author_id": self.author,
            "device_id": "android-bench",
            "received_at": received_at,
            "updated_at": received_at,
            "updated_by": self.author,
        }

    def chunk(self, start: int, count: int) -> dict[str, list[dict[str, Any]]]:
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        for n in range(start, start + count):
            self._household(n, rows)
        return rows

    def _household(self, n: int, rows: dict[str, list[dict[str, Any]]]) -> None:
        rng, now = self.rng, self.now
        village = self.villages[n % len(self.villages)]
        seq = n // len(self.villages) + 1
        household_id = self._uuid()
        status = rng.choice(STATUSES)
        main_cause = rng.choice(CAUSES)
        identified = rng.choice([2014, 2014, 2015, 2016])
        planned = identified + rng.randrange(1, 4)
        lifted = status in ("lifted", "lifted_no_support")
        cadre = rng.choice(CADRES)
        surname = rng.choice(SURNAMES)
        head_age = rng.randrange(28, 86)
        created = now - timedelta(days=900)
        rows["household"].append(
            {
                "id": household_id,
                "number": f"{village}{seq:05d}",
                "village_code": village,
                "group_name": f"{rng.randrange(1, 6)}组",
                "head_name": surname + rng.choice(GIVEN_MALE),
                "phone": f"13{rng.randrange(100_000_000, 999_999_999)}",
                "attribute": rng.choice(ATTRIBUTES),
                "status": status,
                "main_cause": main_cause,
                "other_causes": [rng.choice(CAUSES)] if rng.random() < 0.3 else [],
                "identification_standard": "national",
                "identified_year": identified,
                "planned_exit_year": planned,
                "exit_year": planned if lifted else None,
                "pairing_cadres": [
                    {
                        "name": cadre[0],
                        "level": cadre[1],
                        "unit": cadre[2],
                        "start_date": f"{identified}-03-01",
                        "end_date": None,
                    }
                ],
                "version": 1,
                "created_at": created,
                "updated_at": created,
            }
        )
        size = rng.choice((2, 2, 3, 3, 3, 4, 4))
        people = [("head", head_age), ("spouse", max(20, head_age + rng.randrange(-5, 4)))]
        for _ in range(size - 2):
            people.append(("child", max(1, head_age - rng.randrange(20, 32))))
        removed = rng.random() < 0.05  # a member who died: history, not a current member
        if removed:
            people.append(("parent", head_age + 25))
        for i, (relation, age) in enumerate(people):
            gone = removed and i == len(people) - 1
            rows["household_member"].append(
                {
                    "id": self._uuid(),
                    "household_id": household_id,
                    "name": surname + rng.choice(GIVEN_FEMALE if i % 2 else GIVEN_MALE),
                    "id_number": None,
                    "id_number_hash": None,
                    "birth_date": date(now.year - age, 1, 1) + timedelta(days=rng.randrange(365)),
                    "relation": relation,
                    "health": "chronic" if main_cause == "illness" and i < 2 else "healthy",
                    "labour": "none" if age < 16 or age > 75 else "normal",
                    "in_school": 6 <= age <= 18,
                    "medical_insurance": rng.random() < 0.97,
                    "added_reason": "initial",
                    "removed_at": now - timedelta(days=400) if gone else None,
                    "removed_reason": "death" if gone else None,
                    "created_at": created,
                    "updated_at": created,
                }
            )
        self._visits(household_id, weak=not lifted, rows=rows)
        self._snapshots(household_id, status=status, size=size, rows=rows["income_snapshot"])
        self._measures(household_id, main_cause, rows)
        history: list[tuple[int, str | None, str]] = [(identified, None, "in_poverty")]
        if status != "in_poverty":
            history.append((planned if lifted else 2023, "in_poverty", status))
        for year, before, after in history:
            rows["household_change"].append(
                {
                    "id": self._uuid(),
                    "household_id": household_id,
                    "version": 1,
                    "changed_at": datetime(year, 12, 20, 2, tzinfo=UTC),
                    "actor_id": None,
                    "changes": {"status": [before, after]},
                    "status_from": before,
                    "status_to": after,
                }
            )

    def _visits(
        self, household_id: uuid.UUID, *, weak: bool, rows: dict[str, list[dict[str, Any]]]
    ) -> None:
        rng = self.rng
        bad = 0.05 if weak else 0.005
        # The last visit up to 50 days ago (some households are overdue), then ~37 days apart.
        at = self.now - timedelta(days=rng.uniform(0.5, 50))
        for _ in range(VISITS):
            checks = {}
            for name in ("food", "clothing", "education", "medical", "housing", "water"):
                r = rng.random()
                checks[f"check_{name}"] = (
                    "not_ok" if r < bad else "unknown" if r < bad + 0.02 else "ok"
                )
            received = at + timedelta(minutes=rng.randrange(5, 3 * 24 * 60))
            photos = []
            if rng.random() < 0.1:  # a photo, indexed as the API does; 95% of them uploaded
                photos.append({"sha256": f"{rng.getrandbits(256):064x}", "tag": "evidence"})
            rows["visit"].append(
                {
                    **self._record(household_id, received),
                    "visited_at": at,
                    "mode": "in_home" if rng.random() < 0.8 else "phone",
                    "lat": 36.2 + rng.random() / 5,
                    "lon": 115.5 + rng.random() / 5,
                    "accuracy_m": 15.0,
                    "crs": "wgs84",
                    "address": "基准县 村委会东侧",
                    "findings": "收入不稳定, 需继续帮扶" if weak else "两不愁三保障情况良好",
                    "requests": None,
                    "follow_up": None,
                    **checks,
                    "photos": photos,
                    "flags": [],
                }
            )
            for photo in photos:
                self._photo(rows, household_id, rows["visit"][-1]["id"], photo, received)
            at -= timedelta(days=rng.uniform(24, 50))

    def _photo(
        self,
        rows: dict[str, list[dict[str, Any]]],
        household_id: uuid.UUID,
        visit_id: uuid.UUID,
        photo: dict[str, Any],
        at: datetime,
    ) -> None:
        sha256 = photo["sha256"]
        rows["photo_ref"].append(
            {
                "sha256": sha256,
                "record_type": "visit",
                "record_id": visit_id,
                "household_id": household_id,
                "author_id": self.author,
                "device_id": "android-bench",
                "tag": photo["tag"],
                "measure_id": None,
            }
        )
        if self.rng.random() < 0.05:
            return  # not uploaded yet
        rows["photo"].append(
            {
                "sha256": sha256,
                "size_bytes": self.rng.randrange(150_000, 400_000),
                "content_type": "image/jpeg",
                "stored_at": at,
                "width": 1600,
                "height": 1200,
                "taken_at": at,
                "lat": None,
                "lon": None,
                "household_id": household_id,
                "uploaded_by": self.author,
            }
        )
        rows["photo_holder"].append(
            {"sha256": sha256, "household_id": household_id, "user_id": self.author, "sent_at": at}
        )

    def _snapshots(
        self, household_id: uuid.UUID, *, status: str, size: int, rows: list[dict[str, Any]]
    ) -> None:
        rng = self.rng
        yuan = rng.uniform(6000, 12000) if status.startswith("lifted") else rng.uniform(3000, 5000)
        drop = rng.random() < 0.05  # the last year's income fell by a quarter or more
        for year in YEARS:
            if year == YEARS[-1] and drop:
                yuan *= rng.uniform(0.55, 0.75)
            total = round(yuan * 100) * size
            transfers = {
                "transfer_family_planning": 0,
                "transfer_dibao": rng.randrange(180_000, 380_000) if rng.random() < 0.3 else 0,
                "transfer_tekun": 0,
                "transfer_pension": 120_000 if rng.random() < 0.5 else 0,
                "transfer_ecological": 0,
                "transfer_other": 0,
            }
            rest = max(0, total - sum(transfers.values()))
            expenses = rng.randrange(20_000, 90_000)
            wage = int(rest * rng.uniform(0.4, 0.8))
            business = rest - wage + expenses
            dividend = 30_000 if rng.random() < 0.6 else 0
            transfer_income = sum(transfers.values())
            net = wage + business + dividend + transfer_income - expenses
            recorded = datetime(year, 12, rng.randrange(1, 20), 2, tzinfo=UTC)
            rows.append(
                {
                    **self._record(household_id, recorded + timedelta(days=1)),
                    "year": year,
                    "kind": "annual",
                    "household_size": size,
                    "recorded_at": recorded,
                    "wage_income": wage,
                    "business_income": business,
                    "business_expenses": expenses,
                    "property_dividend": dividend,
                    "property_other": 0,
                    **transfers,
                    "property_income": dividend,
                    "transfer_income": transfer_income,
                    "net_income": net,
                    "per_capita_income": divide_half_up(net, size),
                }
            )
            yuan *= rng.uniform(1.02, 1.12)

    def _measures(
        self, household_id: uuid.UUID, cause: str, rows: dict[str, list[dict[str, Any]]]
    ) -> None:
        rng = self.rng
        kinds = [MEASURE_FOR_CAUSE.get(cause, DEFAULT_MEASURE)]
        kinds += rng.sample(OTHER_MEASURES, rng.choice((0, 1, 1, 2)))
        for category, title, funds_yuan in kinds:
            status = rng.choices(
                ("done", "in_progress", "planned", "not_started", "cancelled"), (50, 30, 10, 5, 5)
            )[0]
            funds = funds_yuan * 100
            pct = {"done": 100, "in_progress": rng.randrange(10, 95, 5)}.get(status, 0)
            start = date(2022, 1, 1) + timedelta(days=rng.randrange(0, 1000))
            received = datetime(start.year, start.month, start.day, 3, tzinfo=UTC)
            record = self._record(household_id, received)
            rows["measure"].append(
                {
                    **record,
                    "category": category,
                    "title": title,
                    "details": None,
                    "funds": funds,
                    "funds_spent": funds * pct // 100,
                    "start_date": start,
                    "due_date": start + timedelta(days=rng.randrange(180, 540)),
                    "status": status,
                    "progress_pct": pct,
                    "progress_reports": [],
                }
            )
            rows["measure_revision"].append(
                {
                    "id": self._uuid(),
                    "measure_id": record["id"],
                    "household_id": household_id,
                    "revision": 1,
                    "status": status,
                    "progress_pct": pct,
                    "received_at": received,
                    "author_id": self.author,
                }
            )


# --- filling a database ---------------------------------------------------------------------


@dataclass
class County:
    url: str
    households: int
    household_ids: list[uuid.UUID]
    counts: dict[str, int]  # rows per table, counted in the database after the fill
    seconds: float  # regions, users, rows and ANALYZE
    size: str = ""  # of the SQLite file
    # Set by prepare_runs: the wrk script's URL list per endpoint, the server's settings, its log.
    paths: dict[str, Path] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    log: Path = Path("server.log")


async def _users_and_regions(url: str, households: int) -> uuid.UUID:
    """The regions, the county admin and an officer of the first village; the officer's id."""
    from app.core.config import get_settings
    from app.core.db import make_engine, make_sessionmaker
    from app.wiring import assemble

    assemble()
    from app.regions import service as regions_service
    from app.users import service as users_service
    from app.users.models import Role
    from app.users.schemas import UserCreate

    engine = make_engine(get_settings(), url=url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            text = regions_csv(households, random.Random(households))
            report = await regions_service.import_regions(session, text=text)
            assert not report.errors, report.errors
            for username, role, region in (
                (ADMIN, Role.county_admin, COUNTY),
                (OFFICER, Role.officer, villages()[0]),
            ):
                user, _ = await users_service.upsert_user(
                    session,
                    data=UserCreate(
                        username=username,
                        password=PASSWORD,
                        role=role,
                        regions=[region],
                        display_name=f"基准 {username}",
                    ),
                )
            return user.id
    finally:
        await engine.dispose()


async def _fill(
    url: str, households: int, author: uuid.UUID, *, analyze: bool = True
) -> tuple[list[uuid.UUID], dict[str, int]]:
    """Insert the county's rows; its household ids and the rows of each table, counted after."""
    from sqlalchemy import JSON, func, insert, select, text
    from sqlmodel import SQLModel

    import app.models  # noqa: F401  (every table in the metadata)
    from app.core.config import get_settings
    from app.core.db import make_engine

    tables = {name: SQLModel.metadata.tables[name] for name in TABLES}
    engine = make_engine(get_settings(), url=url)
    generator = Generator(author=author, now=datetime.now(UTC))
    ids: list[uuid.UUID] = []
    total, started = 0, time.perf_counter()
    try:
        for start in range(0, households, CHUNK):
            rows = generator.chunk(start, min(CHUNK, households - start))
            ids += [row["id"] for row in rows["household"]]
            async with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    driver: Any = (await conn.get_raw_connection()).driver_connection
                    for name, table in tables.items():
                        # Columns the generator leaves out (added since it was written) get
                        # their model default, as an INSERT would give them.
                        given = set(rows[name][0]) if rows[name] else set()
                        defaults = {
                            c.name: c.default.arg
                            for c in table.columns
                            if c.name not in given and c.default is not None and c.default.is_scalar
                        }
                        columns = [c.name for c in table.columns if c.name in given | set(defaults)]
                        # asyncpg's json codec (SQLAlchemy sets it up) takes JSON text.
                        as_text = {c.name for c in table.columns if isinstance(c.type, JSON)}
                        records = [
                            tuple(
                                _json(row.get(c, defaults.get(c)))
                                if c in as_text
                                else row.get(c, defaults.get(c))
                                for c in columns
                            )
                            for row in rows[name]
                        ]
                        await driver.copy_records_to_table(name, records=records, columns=columns)
                else:
                    for name, table in tables.items():
                        await conn.execute(insert(table), rows[name])
            total += sum(len(r) for r in rows.values())
            elapsed = time.perf_counter() - started
            print(
                f"    {start + len(rows['household']):>9,} / {households:,} households, "
                f"{total:>10,} rows, {elapsed:6.1f} s, {total / elapsed:,.0f} rows/s",
                flush=True,
            )
        async with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                # Without: a freshly loaded database that autovacuum has not seen yet.
                await conn.execute(text("VACUUM ANALYZE" if analyze else "VACUUM"))
            else:
                await conn.execute(text("ANALYZE"))
                await conn.commit()  # the last connection to close checkpoints the WAL
            counts = {
                name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                for name, table in tables.items()
            }
    finally:
        await engine.dispose()
    if sum(counts.values()) != total:
        raise RuntimeError(f"{total:,} rows generated, the database holds {counts}")
    return ids, counts


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def generate(url: str, households: int, *, analyze: bool = True) -> County:
    """Migrate the empty database at `url` and fill it with a county of `households`
    (`analyze=False`: no planner statistics on PostgreSQL, as after a bulk load)."""
    from app.core import migrations

    migrations.upgrade(url)
    started = time.perf_counter()
    author = asyncio.run(_users_and_regions(url, households))
    # Millions of young objects and no cycles: collections would only rescan what is alive.
    gc.disable()
    try:
        ids, counts = asyncio.run(_fill(url, households, author, analyze=analyze))
    finally:
        gc.enable()
    county = County(url, households, ids, counts, time.perf_counter() - started)
    if url.startswith("sqlite"):
        county.size = f"{Path(url.split('///', 1)[1]).stat().st_size / 1e6:,.0f} MB"
    return county


# --- reading it -----------------------------------------------------------------------------


def login(base: str) -> str:
    form = {"grant_type": "password", "username": ADMIN, "password": PASSWORD}
    response = httpx.post(f"{base}/api/v1/auth/token", data=form, timeout=30)
    response.raise_for_status()
    return str(response.json()["access_token"])


def run_wrk(
    base: str, token: str, paths: Path, *, connections: int, duration: int, timeout: int
) -> dict[str, Any]:
    """wrk GETs of random lines of `paths`: answers, requests/s, p50/p99 in ms, timeouts.

    Raises on any answer that is not 2xx and on socket errors other than timeouts; answers
    slower than `timeout` are counted (wrk leaves them out of its latencies)."""
    command = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{duration}s",
        f"--timeout={timeout}s",
        "--latency",
        "-s",
        str(LUA_SCRIPT),
        base,
        "--",
        str(paths),
        token,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120)
    output = result.stdout + result.stderr
    ours = dict(line.split(" ", 2)[1:] for line in output.splitlines() if line.startswith("bench "))
    statuses = {
        int(status): int(n)
        for status, n in (
            item.split("=") for item in filter(None, ours.get("statuses", "").split(","))
        )
    }
    problems = [f"{n} answers {status}" for status, n in statuses.items() if status // 100 != 2]
    if "Non-2xx or 3xx responses" in output:
        problems.append("wrk counted non-2xx answers")
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if errors and any(int(n) for n in errors.groups()[:3]):
        problems.append("socket errors")
    if result.returncode != 0 or problems:
        raise RuntimeError(f"wrk -c{connections} {paths.name}: {'; '.join(problems)}\n{output}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    answered = sum(statuses.values())
    return {
        "requests": answered,
        "requests_s": _wrk_requests_s(output),
        "p50_ms": _wrk_ms(latency["50"]) if answered else math.nan,
        "p99_ms": _wrk_ms(latency["99"]) if answered else math.nan,
        "timeouts": int(errors[4]) if errors else 0,
    }


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _wrk_ms(value: str) -> float:
    """A latency as wrk prints it (`870.12us`, `1.27m`), in ms."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if match is None:
        raise RuntimeError(f"wrk printed a latency of {value!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def _get(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:500]}")
    return time.perf_counter() - started


def _postgres(url: str, sql: str) -> list[Any]:
    """Run `sql` on the benchmark's own PostgreSQL database."""
    import asyncpg
    from sqlalchemy.engine import make_url

    async def _run() -> list[Any]:
        conn = await asyncpg.connect(
            make_url(url).set(drivername="postgresql").render_as_string(False)
        )
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(_run())


def set_plan_cache(url: str, mode: str) -> None:
    """plan_cache_mode of the database's next sessions: `auto` is PostgreSQL's default (a
    prepared statement may switch to a generic plan from its sixth execution on)."""
    name = url.rsplit("/", 1)[1]
    value = "RESET plan_cache_mode" if mode == "auto" else f"SET plan_cache_mode = {mode}"
    _postgres(url, f'ALTER DATABASE "{name}" {value}')


def cancel_left_over(url: str) -> list[float]:
    """Cancel the queries still running for requests wrk stopped waiting for; their ages (s)."""
    rows = _postgres(
        url,
        "SELECT extract(epoch FROM now() - query_start), pg_cancel_backend(pid)"
        " FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND state = 'active' AND backend_type = 'client backend'",
    )
    return [max(0.0, float(row[0])) for row in rows]


def run_scenario(
    county: County, *, endpoint: str, clients: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One wrk run on a fresh server (a fresh connection pool, no request of the last run)."""
    backend = "postgresql" if county.url.startswith("postgresql") else "sqlite"
    paths = county.paths[endpoint]
    port = _free_port()  # a fresh one: a client socket may hold the last run's by now
    with serve({**county.env, "FIELDSYNC_PORT": str(port)}, county.log) as base:
        pid = server_pid(port)
        token = login(base)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=3600) as client:
            lines = paths.read_text().split()
            # Warm-up: household progress 20 times, county progress once (timed).
            one = max(
                _get(client, path)
                for path in random.Random(1).sample(lines, 20 if len(lines) > 1 else 1)
            )
        duration = args.duration
        if endpoint == "county progress":  # long enough for ~25 answers, within the limit
            duration = max(args.duration, min(args.max_duration, math.ceil(one * 25)))
        timeout = max(10, math.ceil(one * clients * 4))
        cpu = cpu_seconds(pid)
        try:
            r = run_wrk(base, token, paths, connections=clients, duration=duration, timeout=timeout)
            cpu = cpu_seconds(pid) - cpu
        except (RuntimeError, FileNotFoundError) as exc:  # no /proc/PID: the server is gone
            alive = Path(f"/proc/{pid}").exists()
            raise RuntimeError(
                f"{backend} {county.households:,} households, {endpoint}, -c{clients}: "
                f"{exc}\nserver process {pid} {'still running' if alive else 'GONE'}; "
                f"the end of its log:\n{county.log.read_text()[-3000:]}"
            ) from None
        if backend == "postgresql" and (ages := cancel_left_over(county.url)):
            # A request still unanswered past the timeout when wrk stops is not counted by wrk.
            r["timeouts"] += sum(age > timeout for age in ages)
            print(
                f"    (cancelled {len(ages)} query(ies) still running when wrk stopped, running "
                f"for {', '.join(f'{age:.1f}' for age in sorted(ages))} s)"
            )
    r.update(
        warmup_s=one,
        backend=backend,
        households=county.households,
        endpoint=endpoint,
        clients=clients,
        duration=duration,
        timeout=timeout,
        cpu_ms=cpu * 1000 / max(1, r["requests"]),
        load=os.getloadavg()[0],
        plans="auto" if backend == "postgresql" else "-",  # the database's, until set
    )
    return r


def prepare_runs(backend: str, county: County, tmp: Path) -> None:
    """The URL lists of the wrk script and the server's settings (but its port), before any
    clock."""
    name = f"{backend}-{county.households}"
    county.paths["household progress"] = tmp / f"households-{name}.txt"
    county.paths["household progress"].write_text(
        "".join(f"/api/v1/households/{i}/progress\n" for i in county.household_ids)
    )
    county.paths["county progress"] = tmp / f"county-{name}.txt"
    county.paths["county progress"].write_text(f"/api/v1/regions/{COUNTY}/progress\n")
    county.log = tmp / f"server-{name}.log"
    county.env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")},
        "FIELDSYNC_DATABASE_URL": county.url,
        "FIELDSYNC_DATA_DIR": str(tmp / f"data-{name}"),
        "FIELDSYNC_LOG_LEVEL": "WARNING",
        "FIELDSYNC_ACCESS_TOKEN_MINUTES": "240",
        "FIELDSYNC_SECRET_KEY": "bench-signing-key-" + "k" * 40,
        "FIELDSYNC_PII_KEY": "bench-pii-key-" + "p" * 40,
    }


def bench_backend(
    backend: str, counties: list[County], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Household progress in rounds that alternate the counties (so that a busy moment of the
    machine does not land on one county only), then county progress."""
    results = []
    for round_ in range(1, args.rounds + 1):
        for county in counties:
            for clients in (8, 1):
                r = run_scenario(county, endpoint="household progress", clients=clients, args=args)
                r["round"] = round_
                print(f"  {_line(r)}", flush=True)
                results.append(r)
    plans = PLAN_MODES[args.plan_cache] if backend == "postgresql" else ("-",)
    for plan in plans:
        for county in counties:
            if backend == "postgresql":
                set_plan_cache(county.url, plan)
            for clients in (8, 1):
                r = run_scenario(county, endpoint="county progress", clients=clients, args=args)
                r.update(plans=plan, round=1)
                print(f"  {_line(r)}", flush=True)
                results.append(r)
    return results


PLAN_MODES = {
    "auto": ("auto",),
    "custom": ("force_custom_plan",),
    "both": ("auto", "force_custom_plan"),
}


def _notes(r: dict[str, Any]) -> str:
    notes = []
    if r["timeouts"]:
        notes.append(f"{r['timeouts']} TIMED OUT (> {r['timeout']} s)")
    if r["endpoint"] == "county progress" and r["requests"] < 20:
        notes.append(f"only {r['requests']} answers in {r['duration']} s")
    return "; ".join(notes)


def _line(r: dict[str, Any]) -> str:
    plans = f" (plan_cache_mode {r['plans']})" if r["plans"] != "-" else ""
    notes = f"  [{_notes(r)}]" if _notes(r) else ""
    return (
        f"{r['backend']:<10} {r['households']:>7,} households  {r['endpoint']:<18} "
        f"-c{r['clients']} -d{r['duration']}s{plans}: {r['requests']:,} answers, "
        f"{r['requests_s']:,.1f} req/s, p50 {r['p50_ms']:,.1f} ms, p99 {r['p99_ms']:,.1f} ms, "
        f"server CPU {r['cpu_ms']:,.1f} ms/answer, load {r['load']:.1f}, slowest warm-up "
        f"request {r['warmup_s']:.2f} s{notes}"
    )


def _median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r["p50_ms"])[(len(runs) - 1) // 2]


def _ms(value: float) -> str:
    return f"{value:,.1f} ms" if value < 10_000 else f"{value / 1000:,.1f} s"


def summary(backend: str, counties: list[County], results: list[dict[str, Any]]) -> str:
    """One backend's tables: the generated counties; household progress (the round of median
    p50) and the small county's next to the large one's; county progress."""
    lines = [
        f"== {backend} ==",
        "",
        "Generated counties (time: regions, users, rows, ANALYZE; rows counted in the database):",
        "",
        "| households | visits | income snapshots | measures | photo refs | all rows | time "
        "| rows/s | file |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for c in counties:
        n = c.counts
        rows = sum(n.values())
        lines.append(
            f"| {c.households:,} | {n['visit']:,} | {n['income_snapshot']:,} | {n['measure']:,} "
            f"| {n['photo_ref']:,} | {rows:,} | {c.seconds:,.1f} s | {rows / c.seconds:,.0f} "
            f"| {c.size or '-'} |"
        )
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in results:
        key = (r["endpoint"], r["households"], r["plans"], r["clients"])
        groups.setdefault(key, []).append(r)
    household = {k[1:]: runs for k, runs in groups.items() if k[0] == "household progress"}
    county = [r for r in results if r["endpoint"] == "county progress"]
    if household:
        lines += ["", *_household_table(household)]
        lines += ["", *_growth(household)]
    if county:
        lines += ["", *_county_table(county, plans=backend == "postgresql")]
    return "\n".join(lines)


def _household_table(groups: dict[tuple[Any, ...], list[dict[str, Any]]]) -> list[str]:
    lines = [
        "Household progress, GET /api/v1/households/{id}/progress over random households "
        "(the round of median p50):",
        "",
        "| households | clients | seconds | answers | req/s | p50 | p99 | server CPU/answer "
        "| p50 of each round | notes |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for runs in groups.values():
        r = _median_round(runs)
        notes = "; ".join(_notes(run) for run in runs if _notes(run))
        lines.append(
            f"| {r['households']:,} | {r['clients']} | {r['duration']} | {r['requests']:,} "
            f"| {r['requests_s']:,.1f} | {_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} "
            f"| {r['cpu_ms']:,.1f} ms | {' / '.join(_ms(run['p50_ms']) for run in runs)} "
            f"| {notes} |"
        )
    return lines


def _growth(groups: dict[tuple[Any, ...], list[dict[str, Any]]]) -> list[str]:
    """Household progress of the small county next to the large one (rounds of median p50)."""
    small, large = min(k[0] for k in groups), max(k[0] for k in groups)
    lines = [f"Household progress as the county grows from {small:,} to {large:,} households:"]
    for (households, plans, clients), runs in groups.items():
        if households != large or (small, plans, clients) not in groups:
            continue
        s, r = _median_round(groups[(small, plans, clients)]), _median_round(runs)
        lines.append(
            f"  {clients} client{'s' if clients > 1 else ''}: p50 {_ms(s['p50_ms'])} -> "
            f"{_ms(r['p50_ms'])} (x{r['p50_ms'] / s['p50_ms']:.2f}), p99 {_ms(s['p99_ms'])} -> "
            f"{_ms(r['p99_ms'])} (x{r['p99_ms'] / s['p99_ms']:.2f}), req/s "
            f"{s['requests_s']:,.1f} -> {r['requests_s']:,.1f}, server CPU/answer "
            f"{s['cpu_ms']:,.1f} -> {r['cpu_ms']:,.1f} ms"
        )
    return lines


def _county_table(runs: list[dict[str, Any]], *, plans: bool) -> list[str]:
    """One line per run; `plans`: a column for PostgreSQL's plan_cache_mode."""
    lines = [
        f"County progress, GET /api/v1/regions/{COUNTY}/progress (one run each; with ~25 "
        "answers, p99 is about the slowest):",
        "",
        "| households |" + (" plan_cache_mode |" if plans else "") + " clients | seconds "
        "| answers | req/s | p50 | p99 | server CPU/answer | notes |",
        "|--:|" + ("---|" if plans else "") + "--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in runs:
        mode = f" {r['plans']} |" if plans else ""
        lines.append(
            f"| {r['households']:,} |{mode} {r['clients']} | {r['duration']} "
            f"| {r['requests']:,} | {r['requests_s']:,.2f} | {_ms(r['p50_ms'])} "
            f"| {_ms(r['p99_ms'])} | {r['cpu_ms']:,.1f} ms | {_notes(r)} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n", 1)[0],
        epilog="The module's docstring describes the data, the runs and what fails them.",
    )
    parser.add_argument(
        "--households",
        type=int,
        default=50_000,
        help="households of the large county; the small county has a tenth (default 50,000)",
    )
    parser.add_argument(
        "--backend", choices=("sqlite", "postgresql", "both"), default="both", help="default both"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 5,000 and 500 households (overrides --households), --duration 3",
    )
    parser.add_argument(
        "--duration",
        type=int,
        help="seconds of each household progress run, and the shortest county progress run "
        "(default 10; 3 with --quick)",
    )
    parser.add_argument(
        "--max-duration",
        type=int,
        default=MAX_DURATION,
        help="longest county progress run, in seconds; a run aims at ~25 answers of the "
        f"warm-up's time (default {MAX_DURATION})",
    )
    parser.add_argument(
        "--plan-cache",
        choices=tuple(PLAN_MODES),
        default="auto",
        help="PostgreSQL plan_cache_mode of the county runs: auto (PostgreSQL's default), "
        "custom (force_custom_plan) or both (each county run twice)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="household progress runs per county and client count, alternating the counties "
        "(default 3; 0: county progress only)",
    )
    parser.add_argument(
        "--generate-only", action="store_true", help="generate the counties and stop (no wrk)"
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="PostgreSQL: no planner statistics after the load (VACUUM only), as a freshly "
        "loaded or restored database before autovacuum's ANALYZE",
    )
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_URL,
        help="a PostgreSQL server to create the throwaway databases on (default "
        "$FIELDSYNC_TEST_POSTGRES_URL or %(default)s)",
    )
    args = parser.parse_args()
    if args.households < 10 or args.rounds < 0 or min(args.duration or 1, args.max_duration) < 1:
        parser.error("--households must be at least 10, --rounds at least 0, durations positive")
    if args.quick:
        args.households = 5_000
    args.duration = args.duration or (3 if args.quick else 10)
    if shutil.which("wrk") is None and not args.generate_only:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    scales = (args.households // 10, args.households)

    reports: list[str] = []
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fieldsync-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        os.environ.update(FIELDSYNC_DATA_DIR=str(tmp / "data"), FIELDSYNC_LOG_LEVEL="WARNING")
        print(
            f"fieldsync progress read benchmark: counties of {scales[0]:,} and {scales[1]:,} "
            f"households ({TOWNS} towns x {VILLAGES_PER_TOWN} villages; per household "
            f"{VISITS} visits, {len(YEARS)} income snapshots, 1-3 measures); 1 server process "
            f"(uvicorn, 1 worker, restarted for each run); wrk -t2 -c8 and -t1 -c1, --latency, as "
            f"the county admin; household progress {args.rounds} round(s) of {args.duration} s, "
            f"county progress {args.duration}-{args.max_duration} s; server CPU: the uvicorn "
            f"process only (not PostgreSQL's); {os.cpu_count()} CPUs, load "
            f"{os.getloadavg()[0]:.1f}"
        )
        for backend in backends:
            if backend == "postgresql" and not postgres_available(args.postgres_url):
                print(f"  {backend}: skipped, no PostgreSQL at {args.postgres_url}")
                continue
            started = time.perf_counter()
            with ExitStack() as databases:  # both counties at once: their runs alternate
                counties = []
                for households in scales:
                    url = databases.enter_context(new_database(backend, tmp, args.postgres_url))
                    print(f"  {backend}: generating {households:,} households", flush=True)
                    county = generate(url, households, analyze=not args.no_analyze)
                    rows = sum(county.counts.values())
                    print(
                        f"  {backend}: {households:,} households, {rows:,} rows "
                        f"({county.counts['visit']:,} visits, "
                        f"{county.counts['income_snapshot']:,} income snapshots) in "
                        f"{county.seconds:.1f} s ({rows / county.seconds:,.0f} rows/s)"
                        + (f", SQLite file {county.size}" if county.size else ""),
                        flush=True,
                    )
                    prepare_runs(backend, county, tmp)
                    counties.append(county)
                generated = time.perf_counter() - started
                ran = [] if args.generate_only else bench_backend(backend, counties, args)
            results += ran
            reports.append(
                summary(backend, counties, ran)
                + f"\n{backend}: generation {generated / 60:.1f} min, reads "
                f"{(time.perf_counter() - started - generated) / 60:.1f} min"
            )
    print()
    print("\n\n".join(reports))
    # Without statistics the figures are another measure: a file of their own.
    save("progress_read_no_analyze" if args.no_analyze else "progress_read", results)
    failed = [r for r in results if r["timeouts"]]
    if failed:
        print(f"\nFAILED: requests timed out in {len(failed)} runs:", file=sys.stderr)
        for r in failed:
            print(f"  {_line(r)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
