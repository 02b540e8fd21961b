"""Finishing an upload, raced on a real database: several sweeps at once (several API processes
run one every hour), and a sweep against a HEAD after a crash. Exactly one finishes it; the
others leave it alone without an error.

The in-process tests share one rolled-back session, which cannot race; here each racer opens
transactions of its own on a fresh database, as separate requests and processes do.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func
from sqlalchemy.pool import NullPool
from sqlmodel import select

from app.core import migrations
from app.core.base import utcnow
from app.core.config import get_settings
from app.core.db import make_engine, make_sessionmaker, transaction
from app.photos.models import Photo, PhotoHolder, Upload, UploadPart
from app.photos.storage import LocalStorage, staging_prefix
from app.photos.uploads import expire_uploads, finish_upload
from app.users.models import Role
from tests.builders import VILLAGE_A1, make_household, make_region, make_user
from tests.databases import fresh_database
from tests.photos.images import noisy_jpeg_bytes

PHOTO = noisy_jpeg_bytes()
SHA = hashlib.sha256(PHOTO).hexdigest()


@pytest.fixture
async def racers(tmp_path: Path, database_url: str) -> AsyncIterator[SimpleNamespace]:
    """A fresh database holding one stranded upload (every byte arrived, in three staged parts,
    nothing finished), idle for two minutes; the store; three API processes' states."""
    # Creating and dropping a PostgreSQL database runs an event loop of its own: in a thread.
    database = fresh_database(tmp_path)
    url = await asyncio.to_thread(database.__enter__)
    try:
        await asyncio.to_thread(migrations.upgrade, url)
        engines = [make_engine(get_settings(), url=url, poolclass=NullPool) for _ in range(3)]
        storage = LocalStorage(tmp_path / "media")
        try:
            states = [SimpleNamespace(sessionmaker=make_sessionmaker(e)) for e in engines]
            upload_id = await _strand_upload(states[0], storage, tmp_path)
            yield SimpleNamespace(states=states, storage=storage, upload_id=upload_id)
        finally:
            for engine in engines:
                await engine.dispose()
    finally:
        await asyncio.to_thread(database.__exit__, None, None, None)


async def _strand_upload(state: SimpleNamespace, storage: LocalStorage, tmp_path: Path) -> str:
    upload_id = uuid.uuid4().hex
    async with transaction(state, writing=True) as session:
        await make_region(session, VILLAGE_A1, "王庄村", population=1286)
        user = await make_user(
            session, username="racer.officer", role=Role.officer, regions=[VILLAGE_A1]
        )
        household = await make_household(session, village=VILLAGE_A1)
        session.add(
            Upload(
                id=upload_id,
                user_id=user.id,
                household_id=household.id,
                sha256=SHA,
                length=len(PHOTO),
                offset=len(PHOTO),
                parts=3,
                expires_at=utcnow() + timedelta(days=7, minutes=-2),
            )
        )
        await session.flush()
        third = len(PHOTO) // 3
        for start, end in ((0, third), (third, 2 * third), (2 * third, len(PHOTO))):
            key = f"{staging_prefix(upload_id)}{start:016d}-race"
            source = tmp_path / f"part-{start}"
            source.write_bytes(PHOTO[start:end])
            await storage.put_file(key, source, content_type="application/offset+octet-stream")
            session.add(UploadPart(upload_id=upload_id, start=start, size=end - start, key=key))
    return upload_id


async def _finished_state(state: SimpleNamespace, upload_id: str) -> tuple[int, int, int, bool]:
    async with transaction(state, writing=False) as session:
        photos = await session.scalar(select(func.count()).select_from(Photo))
        holders = await session.scalar(select(func.count()).select_from(PhotoHolder))
        parts = await session.scalar(select(func.count()).select_from(UploadPart))
        upload = await session.get(Upload, upload_id)
    assert upload is not None
    return photos or 0, holders or 0, parts or 0, upload.completed_at is not None


async def test_three_sweeps_at_once_finish_a_stranded_upload_once(
    racers: SimpleNamespace,
) -> None:
    settings = get_settings()
    results = await asyncio.gather(
        *(
            expire_uploads(partial(transaction, state), racers.storage, settings)
            for state in racers.states
        )
    )

    assert sorted(finished for _, finished in results) == [0, 0, 1]
    assert all(deleted == 0 for deleted, _ in results)
    assert await _finished_state(racers.states[0], racers.upload_id) == (1, 1, 0, True)
    assert not (racers.storage.root / staging_prefix(racers.upload_id)).exists()
    assert (racers.storage.root / "photos" / SHA[:2] / SHA).read_bytes() == PHOTO


async def test_a_request_and_a_sweep_racing_finish_once(racers: SimpleNamespace) -> None:
    settings = get_settings()
    async with transaction(racers.states[1], writing=False) as session:
        upload = await session.get(Upload, racers.upload_id)
    assert upload is not None

    request, sweep = await asyncio.gather(
        finish_upload(partial(transaction, racers.states[1]), racers.storage, settings, upload),
        expire_uploads(partial(transaction, racers.states[2]), racers.storage, settings),
    )

    assert (request, sweep[1]) in ((True, 0), (False, 1))
    assert await _finished_state(racers.states[0], racers.upload_id) == (1, 1, 0, True)
