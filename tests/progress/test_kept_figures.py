"""Region figures kept per village: the same figures as computed afresh, computed again only
for the villages where something changed, and never kept from a transaction that wrote.

These tests commit for real, in a database of their own: kept figures outlive transactions.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.principal import Principal
from app.core.db import transaction
from app.core.events import publish
from app.photos.events import PhotoStored
from app.photos.models import Photo
from app.progress import figures, region
from app.records import service as records_service
from app.records.vocabulary import RecordType
from app.regions import codes
from app.thresholds.models import PovertyThreshold
from tests.builders import COUNTY_A, VILLAGE_A1, World
from tests.committed import committed_world, migrated_database
from tests.records.bodies import visit_body
from tests.webhooks.helpers import principal_of

SHA = "ab" * 32


@dataclass
class Env:
    engine: AsyncEngine
    state: Any
    world: World
    admin: Principal
    officer: Principal


@pytest.fixture(scope="module")
def own_database(tmp_root: Path) -> Iterator[str]:
    with migrated_database(tmp_root) as url:
        yield url


@pytest.fixture(scope="module")
async def env(own_database: str) -> AsyncIterator[Env]:
    async with committed_world(own_database) as built:
        yield Env(
            built.engine,
            built.state,
            built.world,
            admin=principal_of(built.world.users["admin_a"], (COUNTY_A,)),
            officer=principal_of(built.world.users["officer_a1"], (VILLAGE_A1,)),
        )


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The villages each request computed (rather than found kept)."""
    calls: list[list[str]] = []
    original = figures.sums_by_child

    async def spy(*args: Any, villages: list[str], **kwargs: Any) -> Any:
        calls.append(sorted(villages))
        return await original(*args, villages=villages, **kwargs)

    monkeypatch.setattr(figures, "sums_by_child", spy)
    return calls


async def _progress(env: Env, code: str = COUNTY_A, now: datetime | None = None) -> Any:
    async with transaction(env.state, writing=False) as session:
        return await region.get_region_progress(session, principal=env.admin, code=code, now=now)


def _figures(progress: Any) -> dict[str, Any]:
    document: dict[str, Any] = progress.model_dump(mode="json", exclude={"as_of"})
    return document


async def _assert_as_fresh(env: Env, code: str = COUNTY_A) -> Any:
    kept = await _progress(env, code)
    fresh = await _progress(env, code, now=kept.as_of)
    assert _figures(kept) == _figures(fresh)
    return kept


async def _visit(env: Env, **changes: Any) -> None:
    kind = records_service.KINDS[RecordType.visit]
    data = kind.write.model_validate(visit_body(env.world.households["a1"].id, **changes))
    async with transaction(env.state, writing=True) as session:
        await records_service.apply_record(
            session, principal=env.officer, kind=kind, record_id=uuid.uuid4(), data=data
        )


async def test_only_the_village_that_changed_is_computed_again(
    env: Env, computed: list[list[str]]
) -> None:
    first = await _assert_as_fresh(env)
    assert computed and computed[0]  # every village, the first time
    computed.clear()
    again = await _assert_as_fresh(env)
    assert computed == [] and again.as_of == first.as_of  # all kept

    await _visit(env)
    after = await _assert_as_fresh(env)
    assert computed == [[VILLAGE_A1]]
    assert _figures(after) != _figures(first)

    # A town of the county reads the same kept villages.
    computed.clear()
    await _assert_as_fresh(env, code=VILLAGE_A1[:9] + "000")
    assert computed == []


async def test_a_photo_arriving_moves_its_villages_figures(
    env: Env, computed: list[list[str]]
) -> None:
    await _visit(env, photos=[{"sha256": SHA, "tag": "before"}])
    before = await _assert_as_fresh(env)
    assert before.risk_flags.photos_missing >= 1
    computed.clear()
    async with transaction(env.state, writing=True) as session:
        session.add(
            Photo(
                sha256=SHA,
                size_bytes=1000,
                content_type="image/jpeg",
                width=10,
                height=10,
                household_id=env.world.households["a1"].id,
                uploaded_by=env.officer.id,
            )
        )
        await session.flush()
        await publish(session, PhotoStored(sha256=SHA))
    after = await _assert_as_fresh(env)
    assert computed == [[VILLAGE_A1]]
    assert after.risk_flags.photos_missing == before.risk_flags.photos_missing - 1


async def test_a_threshold_changed_anywhere_computes_every_village_again(
    env: Env, computed: list[list[str]]
) -> None:
    await _assert_as_fresh(env)
    computed.clear()
    async with transaction(env.state, writing=True) as session:
        session.add(PovertyThreshold(scope=COUNTY_A, year=2031, poverty_line=900_000))
    await _assert_as_fresh(env)
    assert len(computed) == 1 and len(computed[0]) == 3  # the county's three villages


async def test_a_transaction_that_wrote_keeps_nothing_and_reads_nothing_kept(
    env: Env, computed: list[list[str]]
) -> None:
    await _assert_as_fresh(env)
    computed.clear()
    kind = records_service.KINDS[RecordType.visit]
    data = kind.write.model_validate(visit_body(env.world.households["a1"].id))
    async with env.state.sessionmaker() as session:
        await records_service.apply_record(
            session, principal=env.officer, kind=kind, record_id=uuid.uuid4(), data=data
        )
        kept = await figures.child_sums(
            session, env.admin, COUNTY_A, codes.Level.county, datetime.now(UTC)
        )
        assert kept is None
        await session.rollback()
    assert computed == []
