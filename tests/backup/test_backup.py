"""`fieldsync backup` while a phone syncs, and `fieldsync restore` into an empty deployment.

A phone sends photos and sync batches with visits that name them through the API (in process),
committing for real in a database of its own; after each request (one commit) the test notes
the whole database, every row and every column. The backup
runs meanwhile; it copies the photos only once the writer has committed more after the snapshot.
The restored database must equal exactly one of the noted states (the backup's moment), and
every photo it names must have its bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.backup.manifest import BackupError, Manifest
from app.backup.service import create_backup, restore_backup
from app.backup.snapshot import libpq_environment
from app.core.config import Settings
from app.core.db import make_engine, make_sessionmaker, redacted_url
from app.core.pagination import PageParams
from app.households import service as households_service
from app.photos.s3 import S3Storage
from app.photos.storage import LocalStorage, original_key
from tests.builders import COUNTY_A, ID_HEAD_A1, World
from tests.committed import committed_world, migrated_database
from tests.conftest import TEST_PII_KEY, TEST_SECRET
from tests.databases import fresh_database
from tests.photos.images import jpeg_bytes
from tests.photos.s3_server import running_s3
from tests.records.bodies import visit_body
from tests.sync.helpers import batch, record, sent_ok
from tests.test_cli import run
from tests.webhooks.helpers import principal_of

Rows = dict[str, list[tuple[Any, ...]]]


async def all_rows(engine: AsyncEngine) -> Rows:
    """Every row of every table (alembic_version too), all columns, in a stable order."""
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        rows: Rows = {}
        for name in names:
            result = await connection.execute(text(f'SELECT * FROM "{name}"'))
            rows[name] = sorted((tuple(row) for row in result.all()), key=repr)
    return rows


class GatedStorage:
    """The source's photo store, whose first read waits for `gate`: the backup copies photos
    only after the writer has committed more since the snapshot."""

    def __init__(self, inner: LocalStorage, gate: Callable[[], Awaitable[None]]) -> None:
        self.inner = inner
        self.gate = gate
        self.opened = False

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            if not self.opened:
                self.opened = True
                await self.gate()
            async for block in self.inner.read(key, start, end):
                yield block

        return chunks()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class BackedUp:
    directory: Path
    manifest: Manifest
    states: list[Rows]  # the source after each commit of the writer; [0]: before it began
    at_start: int  # states noted when the backup began
    at_gate: int  # states noted when the photo copy began (after the snapshot)
    progress: list[str] = field(default_factory=list)


def deployment(root: Path, url: str, **keys: str | None) -> Settings:
    return Settings(
        environment="test",
        data_dir=root / "data",
        media_dir=root / "media",
        database_url=url,
        secret_key=keys.get("secret_key"),
        pii_key=keys.get("pii_key"),
    )


@pytest.fixture(scope="module")
def source_url(tmp_root: Path, database_url: str) -> Iterator[str]:
    # `database_url` sets the suite's settings (its keys) that the world's builders use.
    with migrated_database(tmp_root) as url:
        yield url


@pytest.fixture(scope="module")
async def backed_up(tmp_root: Path, source_url: str) -> BackedUp:
    root = tmp_root / f"backup-source-{uuid.uuid4().hex[:8]}"
    # The world's ID numbers are hashed with the suite's PII key: the source deployment's key.
    settings = deployment(root, source_url, secret_key=TEST_SECRET, pii_key=TEST_PII_KEY)
    storage = LocalStorage(settings.effective_media_dir)
    async with committed_world(source_url) as built:
        states = [await all_rows(built.engine)]
        stop = asyncio.Event()
        noted = asyncio.Condition()
        writer = asyncio.create_task(_write(built, storage, states, noted, stop))
        try:
            await _reached(noted, states, 5)  # some photos and visits before the backup
            at_start = len(states)
            at_gate: list[int] = []

            async def gate() -> None:
                at_gate.append(len(states))
                await _reached(noted, states, at_gate[0] + 4)

            progress: list[str] = []
            manifest = await create_backup(
                settings,
                built.engine,
                GatedStorage(storage, gate),  # type: ignore[arg-type]
                root / "backup",
                progress=progress.append,
            )
            stop.set()
            await writer
            assert at_gate, "the backup copied no photo: its snapshot held none"
        finally:
            stop.set()
            writer.cancel()
    return BackedUp(root / "backup", manifest, states, at_start, at_gate[0], progress)


async def _write(
    built: Any,
    storage: LocalStorage,
    states: list[Rows],
    noted: asyncio.Condition,
    stop: asyncio.Event,
) -> None:
    """A phone syncing through the API: it sends a photo, then a batch with a visit naming it.
    Each request commits once; the state after it is noted."""
    from app.main import create_app

    app = create_app()  # its lifespan (background workers that write too) does not run
    app.state.engine = built.engine
    app.state.sessionmaker = built.state.sessionmaker
    app.state.storage = storage
    world: World = built.world
    headers = world.headers("officer_a1")
    household = world.households["a1"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        n = 0
        while not stop.is_set():
            n += 1
            data = jpeg_bytes(32 + n, 24, color=(n % 256, 90, 30))
            sha256 = hashlib.sha256(data).hexdigest()
            response = await client.put(
                f"/api/v1/photos/{sha256}",
                content=data,
                params={"household_id": str(household.id)},
                headers={**headers, "Content-Type": "image/jpeg"},
            )
            assert response.status_code == 201, response.text
            await _note(noted, states, await all_rows(built.engine))
            visit = visit_body(household.id, photos=[{"sha256": sha256, "tag": "sign_in"}])
            body = batch([record("visit", uuid.uuid4(), visit)], device_id="phone-backup")
            await sent_ok(client, body, headers)
            await _note(noted, states, await all_rows(built.engine))


async def _note(noted: asyncio.Condition, states: list[Rows], rows: Rows) -> None:
    async with noted:
        states.append(rows)
        noted.notify_all()


async def _reached(noted: asyncio.Condition, states: list[Rows], count: int) -> None:
    async with noted:
        await noted.wait_for(lambda: len(states) >= count)


@dataclass
class Target:
    settings: Settings
    engine: AsyncEngine
    storage: LocalStorage


@pytest.fixture
def target_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path) as url:  # empty: not migrated
        yield url


@asynccontextmanager
async def empty_target(root: Path, url: str, **keys: str | None) -> AsyncIterator[Target]:
    """A new deployment on the empty database `url`, with empty data and media directories."""
    settings = deployment(root / uuid.uuid4().hex[:8], url, **keys)
    engine = make_engine(settings)
    try:
        yield Target(settings, engine, LocalStorage(settings.effective_media_dir))
    finally:
        await engine.dispose()


async def restore(target: Target, directory: Path) -> Manifest:
    return await restore_backup(
        target.settings, target.engine, target.storage, directory, progress=lambda _: None
    )


async def test_a_backup_taken_while_a_phone_syncs_restores_to_one_committed_moment(
    backed_up: BackedUp, tmp_path: Path, target_url: str
) -> None:
    """Every row of every table equals the source after one of the writer's commits: one made
    before the photo copy began, none made before the backup began is missing; and every photo
    the restored rows name has its bytes, by sha256."""
    states = backed_up.states
    assert len(states) >= backed_up.at_gate + 4, "the writer went on after the snapshot"
    async with empty_target(tmp_path, target_url) as target:
        await restore(target, backed_up.directory)
        restored = await all_rows(target.engine)

        matches = [k for k, state in enumerate(states) if state == restored]
        assert matches, _nearest_difference(states, restored)
        (k,) = matches  # each commit adds rows: the states all differ
        assert backed_up.at_start - 1 <= k <= backed_up.at_gate
        assert restored["photo"], "the snapshot holds photos"
        later = {row[0] for row in states[-1]["photo"]} - {row[0] for row in restored["photo"]}
        assert later, "photos stored after the snapshot are not in the restored database"

        for sha256, *_rest in restored["photo"]:
            data = b"".join([block async for block in target.storage.read(original_key(sha256))])
            assert hashlib.sha256(data).hexdigest() == sha256
        assert {o.key for o in backed_up.manifest.objects} >= {
            original_key(row[0]) for row in restored["photo"]
        }
    assert backed_up.manifest.tables == {name: len(rows) for name, rows in restored.items()}
    assert any(line.startswith("photos: ") for line in backed_up.progress)


def _nearest_difference(states: list[Rows], restored: Rows) -> str:
    """Which tables differ from the closest state (for the failure message)."""
    best = min(states, key=lambda s: sum(s.get(t) != r for t, r in restored.items()))
    return str({t: (len(best.get(t, [])), len(r)) for t, r in restored.items() if best.get(t) != r})


async def test_the_restored_server_finds_households_by_id_number(
    backed_up: BackedUp, tmp_path: Path, target_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PII key comes back with the data: a deployment without a key of its own searches
    the restored ID numbers with the backup's key (a new key would find nothing)."""
    async with empty_target(tmp_path, target_url) as target:
        await restore(target, backed_up.directory)
        assert (target.settings.data_dir / "pii_key").read_text() == TEST_PII_KEY
        assert target.settings.pii_hash_key == TEST_PII_KEY
        assert target.settings.signing_key == TEST_SECRET

        monkeypatch.setattr(households_service, "get_settings", lambda: target.settings)
        sessionmaker = make_sessionmaker(target.engine)
        async with sessionmaker() as session:
            admin = (await session.execute(text("SELECT id FROM user_account"))).first()
            assert admin is not None
            user = SimpleNamespace(id=admin[0], role="county_admin")
            found, _ = await households_service.search_by_id_number(
                session,
                principal=principal_of(user, (COUNTY_A,)),  # type: ignore[arg-type]
                id_number=ID_HEAD_A1,
                page=PageParams(limit=10, cursor=None),
            )
        assert [record.household.number for record in found] == ["3715221012010001"]


async def test_restore_refuses_a_target_that_is_not_empty(
    backed_up: BackedUp, tmp_path: Path, target_url: str
) -> None:
    async with empty_target(tmp_path, target_url) as target:
        await restore(target, backed_up.directory)
        with pytest.raises(BackupError, match="is not empty: restore into an empty one"):
            await restore(target, backed_up.directory)


async def test_restore_refuses_a_key_other_than_the_backups(
    backed_up: BackedUp, tmp_path: Path, target_url: str
) -> None:
    """A configured PII key that differs would make every restored ID number unsearchable."""
    async with empty_target(tmp_path, target_url, pii_key="another-pii-key-" + "z" * 32) as target:
        with pytest.raises(BackupError, match="FIELDSYNC_PII_KEY is set to another key"):
            await restore(target, backed_up.directory)
        assert await all_rows(target.engine) == {}


def _damaged(backed_up: BackedUp, root: Path, damage: Callable[[Path, Manifest], None]) -> Path:
    copy = root / uuid.uuid4().hex[:8]
    shutil.copytree(backed_up.directory, copy)
    damage(copy, backed_up.manifest)
    return copy


def _first_original(manifest: Manifest) -> str:
    return next(o.key for o in manifest.objects if o.key.startswith("photos/"))


def _photo_bytes_changed(directory: Path, manifest: Manifest) -> None:
    path = directory / "media" / _first_original(manifest)
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")


def _photo_missing(directory: Path, manifest: Manifest) -> None:
    (directory / "media" / _first_original(manifest)).unlink()


def _photo_unlisted(directory: Path, manifest: Manifest, *, recount: bool = False) -> None:
    """The manifest lists one photo original less (and, `recount`, counts one photo less)."""
    document = json.loads((directory / "manifest.json").read_text())
    key = _first_original(manifest)
    document["objects"] = [o for o in document["objects"] if o["key"] != key]
    if recount:
        document["photos"] -= 1
    (directory / "manifest.json").write_text(json.dumps(document))


def _database_changed(directory: Path, manifest: Manifest) -> None:
    with (directory / manifest.database_file).open("r+b") as file:
        file.seek(manifest.database_bytes // 2)
        file.write(b"\xff\xfe")


def _manifest_missing(directory: Path, manifest: Manifest) -> None:
    (directory / "manifest.json").unlink()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_photo_bytes_changed, "differs from the manifest: it is damaged"),
        (_photo_missing, "the backup lacks media/photos/"),
        (_photo_unlisted, "photo originals for"),
        (_database_changed, "differs from the manifest: the backup is damaged"),
        (_manifest_missing, "not a backup, or an unfinished one"),
    ],
)
async def test_restore_refuses_a_damaged_backup_before_writing_anything(
    backed_up: BackedUp,
    tmp_path: Path,
    target_url: str,
    damage: Callable[[Path, Manifest], None],
    message: str,
) -> None:
    damaged = _damaged(backed_up, tmp_path, damage)
    async with empty_target(tmp_path, target_url) as target:
        with pytest.raises(BackupError, match=message):
            await restore(target, damaged)
        assert await all_rows(target.engine) == {}
        assert not any(target.storage.root.rglob("*"))
        assert not (target.settings.data_dir / "pii_key").exists()


async def test_restore_refuses_a_manifest_without_a_photo_the_database_names(
    backed_up: BackedUp, tmp_path: Path, target_url: str
) -> None:
    """A manifest consistent with itself but not with its database is caught once the database
    is restored, before any photo or key is written."""
    damaged = _damaged(backed_up, tmp_path, partial(_photo_unlisted, recount=True))
    async with empty_target(tmp_path, target_url) as target:
        with pytest.raises(BackupError, match=r"names photos the backup lacks \(1, e.g. photos/"):
            await restore(target, damaged)
        assert not any(target.storage.root.rglob("*"))
        assert not (target.settings.data_dir / "pii_key").exists()


async def test_backup_refuses_a_directory_that_is_not_empty(
    backed_up: BackedUp, source_url: str, tmp_path: Path
) -> None:
    settings = deployment(tmp_path, source_url, secret_key=TEST_SECRET, pii_key=TEST_PII_KEY)
    engine = make_engine(settings)
    try:
        with pytest.raises(BackupError, match="is not empty: back up into a new directory"):
            await create_backup(
                settings,
                engine,
                LocalStorage(settings.effective_media_dir),
                backed_up.directory,
                progress=lambda _: None,
            )
    finally:
        await engine.dispose()
    assert Manifest.read(backed_up.directory) == backed_up.manifest


async def test_photos_restore_into_and_back_up_from_an_s3_store(
    backed_up: BackedUp, tmp_path: Path, target_url: str
) -> None:
    """The photo store may be S3: restored objects are in the bucket with their bytes, and a
    backup of the restored deployment reads them back out unchanged."""
    with running_s3() as endpoint:
        store = S3Storage(
            bucket=endpoint.bucket,
            endpoint_url=endpoint.url,
            region=endpoint.region,
            access_key_id=endpoint.access_key,
            secret_access_key=endpoint.secret_key,
        )
        try:
            async with empty_target(tmp_path, target_url) as target:
                target.storage = store  # type: ignore[assignment]
                await restore(target, backed_up.directory)
                again = await create_backup(
                    target.settings,
                    target.engine,
                    store,
                    tmp_path / "again",
                    progress=lambda _: None,
                )
        finally:
            await store.close()
    assert again.objects == backed_up.manifest.objects
    assert again.tables == backed_up.manifest.tables


def test_the_commands_restore_and_back_up_again(backed_up: BackedUp, tmp_path: Path) -> None:
    """`fieldsync restore` into a fresh deployment (no keys configured), then `fieldsync backup`
    of it: the same rows and photos, progress on stderr, no password in the output."""
    with fresh_database(tmp_path) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")}
        env.update(
            FIELDSYNC_DATABASE_URL=url,
            FIELDSYNC_DATA_DIR=str(tmp_path / "data"),
            FIELDSYNC_ENVIRONMENT="development",
        )
        restored = run(env, "restore", str(backed_up.directory))
        assert "checking: " in restored.stderr and "database: restoring into" in restored.stderr
        assert f"{backed_up.manifest.photos} photos" in restored.stdout
        assert "keys: pii_key in " in restored.stderr  # no key configured: the backup's on disk
        again = run(env, "backup", str(tmp_path / "again"))
        assert "photos: copying" in again.stderr and "keys: secret_key, pii_key" in again.stderr
        refused = run(env, "restore", str(backed_up.directory), ok=False)
        assert refused.returncode == 1 and "is not empty" in refused.stderr
    manifest = Manifest.read(tmp_path / "again")
    assert manifest.tables == backed_up.manifest.tables
    assert manifest.objects == backed_up.manifest.objects
    assert manifest.keys == backed_up.manifest.keys


def test_pg_dump_gets_the_password_from_the_environment_not_the_command_line() -> None:
    url = "postgresql+asyncpg://fieldsync:p%40ss-w0rd@db.example:6543/prod?ssl=require"
    env = libpq_environment(url)
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGDATABASE"]) == (
        "db.example",
        "6543",
        "fieldsync",
        "prod",
    )
    assert env["PGPASSWORD"] == "p@ss-w0rd" and env["PGSSLMODE"] == "require"
    assert "p@ss" not in redacted_url(url) and "p%40ss" not in redacted_url(url)
