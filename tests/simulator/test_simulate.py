"""The phone simulator against the app in-process: phones on a lossy link, a busy server, edits
made elsewhere; every record is stored exactly once and the summary agrees with the database."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from typer.testing import CliRunner

from app.photos.models import Photo
from app.records.models import IncomeSnapshot, RecordColumns, Visit
from app.simulator import Config, LinkProfile, Plan, simulate
from app.simulator.records import HouseholdCopy, record_day, workday_start
from app.simulator.run import phone_specs
from app.sync.models import SyncBatch
from app.users.models import Role
from tests.builders import VILLAGE_A1, VILLAGE_A2, World, make_household, make_user

SEED = 11
PASSWORD = "simulated-officer-1"
# The cheapest argon2 the hash format allows: four logins must not take a second.
CHEAP_HASH = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
MODELS: dict[str, type[RecordColumns]] = {"visit": Visit, "income_snapshot": IncomeSnapshot}
BUSY_ANSWERS = 2


class OneAtATime(httpx.AsyncBaseTransport):
    """The app in-process, one request at a time (the test's requests share one session), and
    busy (503, Retry-After: 0) for the first few batches, as a loaded server is."""

    def __init__(self, app: FastAPI, lock: asyncio.Lock, busy: list[int]) -> None:
        self.inner = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.lock = lock
        self.busy = busy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/sync/batches") and self.busy[0] > 0:
            self.busy[0] -= 1
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"code": "busy"})
        async with self.lock:
            return await self.inner.handle_async_request(request)


@pytest.fixture
async def officers(session: AsyncSession, world: World, unique: str) -> list[tuple[str, str]]:
    """Two officers of 王庄村 and one of 后屯村, each village with a few more households."""
    for village in (VILLAGE_A1, VILLAGE_A2):
        for _ in range(3):
            await make_household(session, village=village)
    accounts = []
    for n, village in enumerate((VILLAGE_A1, VILLAGE_A1, VILLAGE_A2)):
        username = f"sim-{unique}-{n}"
        user = await make_user(session, username=username, role=Role.officer, regions=[village])
        user.password_hash = CHEAP_HASH
        accounts.append((username, PASSWORD))
    await session.flush()
    return accounts


async def test_lossy_phones_store_every_record_exactly_once(
    app: FastAPI, session: AsyncSession, officers: list[tuple[str, str]]
) -> None:
    busy = [BUSY_ANSWERS]
    lock = asyncio.Lock()
    config = Config(
        phones=4,
        users=officers,
        plan=Plan(
            today=date.today(),
            records=9,
            batch_size=4,
            photos=1,
            conflict_share=0.3,
            retry_base_seconds=0,
        ),
        base_url="http://test",
        slow_link=LinkProfile(loss=0.3),
        fast_share=0.25,
        seed=SEED,
        progress_seconds=0,
    )
    summary = await simulate(config, transport=lambda: OneAtATime(app, lock, busy))

    # Nothing lost or duplicated, every phone to the end, every record acknowledged.
    assert summary.failed == []
    assert (summary.lost, summary.duplicates, summary.pending) == (0, 0, 0)
    assert (summary.late, summary.skipped_by_feed) == (0, 0)
    assert summary.ok and summary.all_in
    records = config.phones * config.plan.records
    assert summary.records == summary.acknowledged == summary.on_server == records
    assert len(summary.held) == records

    # The link lost requests both ways; every batch whose answer was lost was answered as a
    # replay; the busy answers were waited out.
    assert summary.retries > 0 and summary.lost_before > 0 and summary.lost_after > 0
    assert summary.replays_expected > 0
    assert summary.replays_answered == summary.replays_expected
    assert summary.waits == BUSY_ANSWERS and busy == [0]

    # Each record created once; each edit made elsewhere met as a conflict (one edit) or a stale
    # revision (two), resolved as the app does.
    results = summary.results
    assert results["created"] == records
    assert results["rejected"] == results["unchanged"] == 0
    assert results["conflict"] == summary.rebased == results["updated"] > 0
    assert results["stale"] == summary.adopted > 0
    assert summary.edits_elsewhere == results["conflict"] + 2 * results["stale"]
    assert summary.record_sends == sum(results.values())
    assert summary.photos == summary.photos_uploaded == config.phones
    assert summary.photos_missing == 0

    # The database holds each record exactly once, at the revision the phone holds, and no
    # other record from the simulated phones; each batch answered is stored once.
    devices = [spec.device_id for spec in phone_specs(config)]
    stored: dict[tuple[str, uuid.UUID], int] = {}
    for record_type, model in MODELS.items():
        rows = await session.execute(
            select(col(model.id), col(model.revision)).where(col(model.device_id).in_(devices))
        )
        for record_id, revision in rows:
            assert (record_type, record_id) not in stored
            stored[(record_type, record_id)] = revision
    assert stored == summary.held
    batches = await session.scalar(
        select(func.count()).select_from(SyncBatch).where(col(SyncBatch.device_id).in_(devices))
    )
    assert batches == summary.batches
    assert await session.scalar(select(func.count()).select_from(Photo)) == config.phones

    assert summary.fast_phones == 1
    assert summary.fast_batch_seconds and summary.slow_batch_seconds
    lines = "\n".join(summary.lines())
    assert "lost: 0" in lines and "duplicates: 0" in lines


def test_the_same_seed_makes_the_same_phones_and_records() -> None:
    config = Config(phones=5, users=[("a", "p"), ("b", "p")], seed=SEED, fast_share=0.4)
    assert phone_specs(config) == phone_specs(config)
    assert [s.username for s in phone_specs(config)] == ["a", "b", "a", "b", "a"]
    assert sum(s.fast for s in phone_specs(config)) == 2
    households = [HouseholdCopy(uuid.UUID(int=n, version=4), VILLAGE_A1, 3) for n in range(4)]
    start = workday_start(date(2026, 12, 7))

    def day(seed: str) -> list[dict[str, Any]]:
        made = record_day(random.Random(seed), households, count=6, photos=1, start=start)
        return [r.item() for r in made]

    assert day("x") == day("x")
    assert day("x") != day("y")
    visited = [r["data"]["visited_at"] for r in day("x") if r["type"] == "visit"]
    assert visited and all(v.startswith("2026-12-06") for v in visited)


def test_the_command_needs_officers_and_reads_them_from_a_file(tmp_path: Path) -> None:
    from app.cli import _accounts, cli

    result = CliRunner().invoke(cli, ["simulate", "--phones", "2"])
    assert result.exit_code == 2
    assert "name the officers" in result.stderr
    users = tmp_path / "officers.txt"
    users.write_text("# 信息员\nofficer.a\n\n officer.b , own-password\n", encoding="utf-8")
    assert _accounts(users, "shared") == [("officer.a", "shared"), ("officer.b", "own-password")]
