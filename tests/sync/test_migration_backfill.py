"""Migrations 0003 and 0004 enter the data already stored into the change log and the photo
index (0004: the measure a visit's photo documents)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from app.core import migrations
from app.core.config import get_settings
from app.core.db import make_engine
from tests.databases import fresh_database

VILLAGE = "371522101201"
SHA = "ab" * 32


@pytest.fixture
def scratch_url(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    with fresh_database(tmp_path) as url:
        yield url


def _id(value: uuid.UUID, dialect: str) -> uuid.UUID | str:
    # How sa.Uuid stores a UUID: native on PostgreSQL, 32 hex characters on SQLite.
    return value if dialect == "postgresql" else value.hex


async def test_existing_households_and_records_enter_the_change_log(scratch_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, scratch_url, "0002")
    engine = make_engine(get_settings(), url=scratch_url)
    household, visit, user, measure = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        async with engine.begin() as conn:
            d = conn.dialect.name
            now = datetime(2026, 11, 1, 8, tzinfo=UTC)
            await conn.execute(
                text(
                    "INSERT INTO region (code, name, level, created_at, updated_at) VALUES "
                    "(:code, '王庄村', 4, :now, :now)"
                ),
                {"code": VILLAGE, "now": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO user_account (id, username, password_hash, role, display_name, "
                    "is_active, created_at, updated_at) VALUES "
                    "(:id, 'wang', 'x', 'officer', '', true, :now, :now)"
                ),
                {"id": _id(user, d), "now": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO household (id, number, village_code, head_name, attribute, "
                    "status, main_cause, other_causes, identification_standard, identified_year, "
                    "pairing_cadres, version, created_at, updated_at) VALUES (:id, '0001', "
                    ":village, '张建国', 'general', 'in_poverty', 'illness', '[]', 'national', "
                    "2014, '[]', 3, :now, :now)"
                ),
                {"id": _id(household, d), "village": VILLAGE, "now": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO visit (id, household_id, revision, content_hash, author_id, "
                    "device_id, received_at, updated_at, updated_by, visited_at, mode, "
                    "check_food, check_clothing, check_education, check_medical, check_housing, "
                    "check_water, photos, flags) VALUES (:id, :household, 2, 'h', :user, 'p1', "
                    ":now, :later, :user, :now, 'in_home', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', "
                    ":photos, '[]')"
                ),
                {
                    "id": _id(visit, d),
                    "household": _id(household, d),
                    "user": _id(user, d),
                    "now": now,
                    "later": datetime(2026, 11, 2, 8, tzinfo=UTC),
                    "photos": json.dumps(
                        [{"sha256": SHA, "tag": "before", "measure_id": str(measure)}]
                    ),
                },
            )
        await asyncio.to_thread(migrations.upgrade, scratch_url, "head")
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT entity_type, region_code, seq, op, version FROM sync_change "
                        "ORDER BY seq"
                    )
                )
            ).all()
            counter = (await conn.execute(text("SELECT value, horizon FROM sync_counter"))).one()
            refs = (
                await conn.execute(
                    text("SELECT sha256, record_type, tag, measure_id FROM photo_ref")
                )
            ).all()
    finally:
        await engine.dispose()
    # Oldest change first: the household (updated 1 Nov), then the visit (revised 2 Nov).
    assert [tuple(r) for r in rows] == [
        ("household", VILLAGE, 1, "upsert", 3),
        ("visit", VILLAGE, 2, "upsert", 2),
    ]
    assert tuple(counter) == (2, 0)
    assert [tuple(r) for r in refs] == [(SHA, "visit", "before", _id(measure, d))]
