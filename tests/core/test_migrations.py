"""The migrations build exactly the models' schema, and go down and up again cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.core import migrations
from app.core.config import get_settings
from app.core.db import make_engine
from app.models import metadata
from tests.databases import fresh_database


def _diff(connection) -> list:  # type: ignore[no-untyped-def]
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "render_as_batch": True}
    )
    return compare_metadata(context, metadata) + _collation_diff(connection)


def _collation_diff(connection) -> list:  # type: ignore[no-untyped-def]
    """Columns whose collation differs between database and models: Alembic lets a collation
    given on one side only pass (region codes are COLLATE "C" on PostgreSQL)."""
    inspector = inspect(connection)
    out = []
    for table in metadata.sorted_tables:
        found = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            declared = getattr(column.type.dialect_impl(connection.dialect), "collation", None)
            actual = getattr(found.get(column.name), "collation", None)
            if declared != actual:
                out.append(("collation", table.name, column.name, actual, declared))
    return out


def _tables(connection) -> set[str]:  # type: ignore[no-untyped-def]
    return set(inspect(connection).get_table_names())


@pytest.fixture
def scratch_url(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    # database_url: makes sure the settings of the test run are in place first.
    with fresh_database(tmp_path) as url:
        yield url


async def test_upgrade_downgrade_upgrade_then_no_drift(scratch_url: str) -> None:
    engine = make_engine(get_settings(), url=scratch_url)
    try:
        await _run(migrations.upgrade, scratch_url)
        async with engine.connect() as conn:
            assert set(metadata.tables) <= await conn.run_sync(_tables)

        await _run(migrations.downgrade, scratch_url)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) <= {"alembic_version"}

        await _run(migrations.upgrade, scratch_url)
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            version = (
                await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
            ).scalar()
        assert version == migrations.head_revision()
    finally:
        await engine.dispose()


async def _run(step, url: str) -> None:  # type: ignore[no-untyped-def]
    # Alembic's env.py runs its own event loop: keep it off the test's loop.
    import asyncio

    await asyncio.to_thread(step, url)


async def test_the_test_database_matches_the_models(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
