"""`fieldsync backup` and `fieldsync restore`: the database snapshot, the photo bytes it names and
the keys, checked against the manifest on the way back.

The photos are copied after the snapshot is taken: photo bytes are stored before their row
commits and are never deleted, so every photo the snapshot names is in the store by then. Bytes
of photos that arrive later are simply not copied (their rows are not in the snapshot either).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.backup import snapshot
from app.backup.manifest import (
    KEY_NAMES,
    KEYS,
    MEDIA,
    BackupError,
    Manifest,
    StoredObject,
    file_sha256,
    text_sha256,
)
from app.core.base import utcnow
from app.core.config import ConfigurationError, Settings
from app.core.db import redacted_url
from app.core.migrations import alembic_config, head_revision
from app.photos.storage import LocalStorage, Storage, original_key, thumbnail_key
from app.photos.uploads import CHUNK_MEDIA_TYPE

Progress = Callable[[str], None]
# A progress line every this many photo objects (and at the end).
PROGRESS_EVERY = 200


def _kind(url: str) -> str:
    backend = make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(f"cannot back up a {backend} database")
    return backend


async def create_backup(
    settings: Settings,
    engine: AsyncEngine,
    storage: Storage,
    directory: Path,
    *,
    progress: Progress,
) -> Manifest:
    """Back up the database, the photo bytes its snapshot names and the keys into `directory`
    (new or empty), while the server goes on serving."""
    url = settings.effective_database_url
    kind = _kind(url)
    keys = _current_keys(settings)
    await anyio.to_thread.run_sync(_new_directory, directory)

    progress(f"database: snapshot of {redacted_url(url)}")
    if kind == "sqlite":
        database_file = directory / snapshot.SQLITE_FILE
        contents = await anyio.to_thread.run_sync(
            partial(
                snapshot.snapshot_sqlite,
                snapshot.sqlite_path(url),
                database_file,
                busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            )
        )
    else:
        database_file = directory / snapshot.POSTGRES_FILE
        contents = await snapshot.snapshot_postgres(engine, url, database_file)
    database_sha256, database_bytes = await anyio.to_thread.run_sync(file_sha256, database_file)
    progress(
        f"database: {sum(contents.tables.values())} rows in {len(contents.tables)} tables, "
        f"{database_bytes} bytes"
    )

    objects, missing = await _copy_photos(storage, contents, directory / MEDIA, progress=progress)

    await anyio.to_thread.run_sync(_write_keys, directory / KEYS, keys)
    progress(f"keys: {', '.join(keys)}")

    manifest = Manifest(
        created_at=utcnow(),
        database=kind,
        database_file=database_file.name,
        database_sha256=database_sha256,
        database_bytes=database_bytes,
        alembic_revision=contents.revision,
        tables=contents.tables,
        photos=len(contents.photos),
        objects=objects,
        missing_upload_parts=missing,
        keys={name: text_sha256(value) for name, value in keys.items()},
    )
    manifest.write(directory)
    return manifest


def _new_directory(directory: Path) -> None:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BackupError(f"{directory} is not empty: back up into a new directory")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)  # it holds ID numbers and the keys


def _write_keys(directory: Path, keys: dict[str, str]) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, value in keys.items():
        if not (directory / name).exists():
            _write_private(directory / name, value)


def _current_keys(settings: Settings) -> dict[str, str]:
    try:
        return {"secret_key": settings.signing_key, "pii_key": settings.pii_hash_key}
    except ConfigurationError as exc:
        raise BackupError(str(exc)) from None


async def _copy_photos(
    storage: Storage, contents: snapshot.Contents, media: Path, *, progress: Progress
) -> tuple[list[StoredObject], list[str]]:
    """Copy the originals (which must be there), their thumbnails and the parts of unfinished
    uploads (which may have gone since the snapshot) out of the store."""
    # (key, content type, what it is): an original must be there; a thumbnail may not (the
    # photo then has none, as on the source); an upload part is gone when its upload finished
    # or expired since the snapshot.
    wanted: list[tuple[str, str, str]] = []
    for sha256, content_type in contents.photos:
        wanted.append((original_key(sha256), content_type, "original"))
        wanted.append((thumbnail_key(sha256), "image/jpeg", "thumbnail"))
    wanted.extend((key, CHUNK_MEDIA_TYPE, "part") for key in contents.upload_parts)
    objects: list[StoredObject] = []
    missing: list[str] = []
    total = len(wanted)
    progress(f"photos: copying {len(contents.photos)} photos ({total} objects)")
    for done, (key, content_type, what) in enumerate(wanted, start=1):
        try:
            sha256, size = await _copy_out(storage, key, media / key)
        except FileNotFoundError:
            if what == "original":
                raise BackupError(
                    f"the photo store has no {key}, which the database names: the store is "
                    "damaged or not the one this database uses"
                ) from None
            if what == "part":
                missing.append(key)
        else:
            objects.append(
                StoredObject(key=key, sha256=sha256, size=size, content_type=content_type)
            )
        if done % PROGRESS_EVERY == 0 or done == total:
            progress(f"photos: {done}/{total} objects")
    return objects, missing


async def _copy_out(storage: Storage, key: str, path: Path) -> tuple[str, int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    try:
        async with await anyio.open_file(path, "wb") as file:
            async for block in storage.read(key):
                digest.update(block)
                size += len(block)
                await file.write(block)
    except FileNotFoundError:
        await anyio.Path(path).unlink(missing_ok=True)
        raise
    return digest.hexdigest(), size


def _write_private(path: Path, value: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(value)


# --- restore ------------------------------------------------------------------------------------


async def restore_backup(
    settings: Settings,
    engine: AsyncEngine,
    storage: Storage,
    directory: Path,
    *,
    progress: Progress,
) -> Manifest:
    """Restore the backup in `directory` into the configured, empty database, photo store and
    data directory; the backup is checked whole before anything is written."""
    manifest = Manifest.read(directory)
    url = settings.effective_database_url
    if _kind(url) != manifest.database:
        raise BackupError(
            f"the backup is of a {manifest.database} database; the configured one is "
            f"{_kind(url)} ({redacted_url(url)})"
        )
    _check_revision(manifest)
    keys = await anyio.to_thread.run_sync(_check_files, manifest, directory, progress)
    _check_keys(settings, keys)
    await _check_empty(settings, engine, storage)

    progress(f"database: restoring into {redacted_url(url)}")
    database_file = directory / manifest.database_file
    if manifest.database == "sqlite":
        contents = await anyio.to_thread.run_sync(
            snapshot.restore_sqlite, database_file, snapshot.sqlite_path(url)
        )
    else:
        contents = await snapshot.restore_postgres(engine, url, database_file)
    _check_contents(manifest, contents)
    progress(f"database: {sum(contents.tables.values())} rows in {len(contents.tables)} tables")

    total = len(manifest.objects)
    for done, stored in enumerate(manifest.objects, start=1):
        await storage.put_file(
            stored.key, directory / MEDIA / stored.key, content_type=stored.content_type
        )
        if done % PROGRESS_EVERY == 0 or done == total:
            progress(f"photos: {done}/{total} objects")

    # A key the environment gives (equal to the backup's: checked) stays off the disk.
    unset = {name: value for name, value in keys.items() if _configured(settings, name) is None}
    await anyio.to_thread.run_sync(_write_keys, settings.data_dir, unset)
    for name in unset:
        progress(f"keys: {name} in {settings.data_dir / name}")
        if settings.environment == "production":
            progress(
                f"keys: set FIELDSYNC_{name.upper()} to the key in {settings.data_dir / name} "
                "(production reads keys from the environment only)"
            )
    head = head_revision()
    if manifest.alembic_revision != head:
        progress(
            f"database: at revision {manifest.alembic_revision}: run `fieldsync migrate` "
            f"(to {head}) before serving"
        )
    return manifest


def _check_revision(manifest: Manifest) -> None:
    from alembic.script import ScriptDirectory

    revision = manifest.alembic_revision
    if revision is None:
        return
    scripts = ScriptDirectory.from_config(alembic_config())
    try:
        known = scripts.get_revision(revision) is not None
    except Exception:
        known = False
    if not known:
        raise BackupError(
            f"the backup's schema revision {revision} is unknown to this version of fieldsync: "
            "restore it with the version that made it"
        )


def _check_files(manifest: Manifest, directory: Path, progress: Progress) -> dict[str, str]:
    """Every file the manifest lists is there with its digest; the keys as read."""
    database_file = directory / manifest.database_file
    if not database_file.is_file():
        raise BackupError(f"the backup lacks its database file {database_file.name}")
    progress(f"checking: {database_file.name}")
    if file_sha256(database_file) != (manifest.database_sha256, manifest.database_bytes):
        raise BackupError(f"{database_file.name} differs from the manifest: the backup is damaged")
    originals = _listed_originals(manifest)
    if len(originals) != manifest.photos:
        raise BackupError(
            f"the manifest lists {len(originals)} photo originals for {manifest.photos} photos: "
            "the backup is incomplete"
        )
    progress(f"checking: {len(manifest.objects)} photo objects")
    for stored in manifest.objects:
        path = directory / MEDIA / stored.key
        if not path.is_file():
            raise BackupError(f"the backup lacks {MEDIA}/{stored.key}: it is incomplete")
        if file_sha256(path) != (stored.sha256, stored.size):
            raise BackupError(f"{MEDIA}/{stored.key} differs from the manifest: it is damaged")
    keys: dict[str, str] = {}
    for name in KEY_NAMES:
        path = directory / KEYS / name
        if not path.is_file():
            raise BackupError(f"the backup lacks {KEYS}/{name}")
        keys[name] = path.read_text(encoding="utf-8")
        if text_sha256(keys[name]) != manifest.keys.get(name):
            raise BackupError(f"{KEYS}/{name} differs from the manifest: it is damaged")
    return keys


def _listed_originals(manifest: Manifest) -> set[str]:
    """Keys of the photo originals the backup holds."""
    return {o.key for o in manifest.objects if o.key == original_key(o.key.rsplit("/", 1)[-1])}


def _configured(settings: Settings, name: str) -> str | None:
    value = settings.secret_key if name == "secret_key" else settings.pii_key
    return value.get_secret_value() if value is not None and value.get_secret_value() else None


def _check_keys(settings: Settings, keys: dict[str, str]) -> None:
    for name, value in keys.items():
        configured = _configured(settings, name)
        if configured is not None and configured != value:
            raise BackupError(
                f"FIELDSYNC_{name.upper()} is set to another key than the backup's: unset it "
                f"(the backup's key is restored into the data directory) or set it to the "
                f"backup's (keys/{name})"
            )
        path = settings.data_dir / name
        if path.exists() and path.read_text(encoding="utf-8").strip() != value.strip():
            raise BackupError(f"{path} holds another key: restore into an empty data directory")


async def _check_empty(settings: Settings, engine: AsyncEngine, storage: Storage) -> None:
    url = settings.effective_database_url
    if _kind(url) == "sqlite":
        empty = await anyio.to_thread.run_sync(snapshot.sqlite_is_empty, snapshot.sqlite_path(url))
    else:
        empty = await snapshot.postgres_is_empty(engine)
    if not empty:
        raise BackupError(
            f"the database {redacted_url(url)} is not empty: restore into an empty one "
            "(PostgreSQL: createdb a new database and point FIELDSYNC_DATABASE_URL at it)"
        )
    if isinstance(storage, LocalStorage) and await anyio.to_thread.run_sync(
        _holds_files, storage.root
    ):
        raise BackupError(f"the photo directory {storage.root} is not empty")


def _holds_files(root: Path) -> bool:
    return any(path.is_file() for path in root.rglob("*"))


def _check_contents(manifest: Manifest, contents: snapshot.Contents) -> None:
    """The restored database holds what the manifest says, and every photo it names is listed."""
    if contents.tables != manifest.tables:
        differing = sorted(
            name
            for name in set(contents.tables) | set(manifest.tables)
            if contents.tables.get(name) != manifest.tables.get(name)
        )
        raise BackupError(
            f"the restored database differs from the manifest in {differing}: the backup is "
            "damaged (drop the restored database)"
        )
    unlisted = {original_key(sha) for sha, _ in contents.photos} - _listed_originals(manifest)
    if unlisted:
        raise BackupError(
            f"the restored database names photos the backup lacks ({len(unlisted)}, e.g. "
            f"{sorted(unlisted)[0]}): the backup is incomplete (drop the restored database)"
        )
