"""A database of a test module's own, whose writes are committed for real: for tests of what
concurrent transactions, or later ones, see of each other (the shared database of the run is
rolled back test by test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.builders import World, build_world
from tests.databases import fresh_database


@contextmanager
def migrated_database(tmp_root: Path) -> Iterator[str]:
    """The URL of a fresh database of the selected backend, migrated to head; dropped after."""
    from app.core import migrations

    with fresh_database(tmp_root) as url:
        migrations.upgrade(url)
        yield url


@dataclass
class Committed:
    engine: AsyncEngine
    state: Any  # what `app.core.db.transaction` takes: the sessionmaker
    world: World


@asynccontextmanager
async def committed_world(url: str, **engine_options: Any) -> AsyncIterator[Committed]:
    """The test world built and committed in the database at `url`."""
    from app.core.config import get_settings
    from app.core.db import make_engine, make_sessionmaker, transaction

    engine = make_engine(get_settings(), url=url, **engine_options)
    state = SimpleNamespace(sessionmaker=make_sessionmaker(engine))
    try:
        async with transaction(state, writing=True) as session:
            world = await build_world(session)
        yield Committed(engine, state, world)
    finally:
        await engine.dispose()
