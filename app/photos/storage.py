"""Where photo bytes live: a small interface with a local-filesystem and an S3 backend.

Keys are relative, slash-separated names (`photos/ab/ab12…`, `uploads/<id>/<offset>-<token>`).
Every write is atomic: a reader sees either no object under a key or the whole of it. Objects
are written once and never modified; content-addressed keys make a second write a no-op.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import anyio

from app.core.config import Settings

# Reads and copies move this much at a time: big enough for speed, small enough for flat memory.
CHUNK_BYTES = 1 << 20


class Storage(Protocol):
    async def put_file(self, key: str, path: Path, *, content_type: str) -> None:
        """Store the bytes of the local file `path` under `key`; the caller may delete `path`."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def size(self, key: str) -> int | None:
        """The object's size in bytes, None if there is none."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes [start, end) of the object (end None: to its end), in chunks.

        Raises FileNotFoundError (when iterated) if there is no such object.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; no error if there is none."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with `prefix` (ending in '/'); how many."""
        ...

    async def close(self) -> None: ...


class LocalStorage:
    """Files under one directory (default `./data/media`); a key is a relative path."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"storage key outside the media directory: {key!r}")
        return path

    async def put_file(self, key: str, path: Path, *, content_type: str) -> None:
        await anyio.to_thread.run_sync(self._put_file, key, path)

    def _put_file(self, key: str, source: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written under a temporary name in the target's directory, flushed to disk, then
        # renamed: the final name only ever names a whole file.
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            try:
                os.link(source, temporary)  # same filesystem: no copy
            except OSError:
                with source.open("rb") as src, temporary.open("wb") as dst:
                    while block := src.read(CHUNK_BYTES):
                        dst.write(block)
            with temporary.open("rb+") as written:
                os.fsync(written.fileno())
            os.replace(temporary, target)
            _fsync_directory(target.parent)  # the new name survives a power cut too
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()

    async def exists(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self._path(key).is_file)

    async def size(self, key: str) -> int | None:
        try:
            stat = await anyio.Path(self._path(key)).stat()
        except FileNotFoundError:
            return None
        return stat.st_size

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self._path(key), "rb") as file:
            await file.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                want = CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining)
                block = await file.read(want)
                if not block:
                    return
                if remaining is not None:
                    remaining -= len(block)
                yield block

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await anyio.Path(self._path(key)).unlink()

    async def delete_prefix(self, prefix: str) -> int:
        return await anyio.to_thread.run_sync(self._delete_prefix, prefix)

    def _delete_prefix(self, prefix: str) -> int:
        directory = self._path(prefix.rstrip("/"))
        if not directory.is_dir():
            return 0
        removed = 0
        for path in sorted(directory.rglob("*"), reverse=True):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
                removed += 1
        directory.rmdir()
        return removed

    async def close(self) -> None:
        return None


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def make_storage(settings: Settings) -> Storage:
    """The backend the settings name: `local` (default) or `s3`."""
    if settings.storage_backend == "s3":
        from app.photos.s3 import S3Storage

        return S3Storage.from_settings(settings)
    return LocalStorage(settings.effective_media_dir)


def original_key(sha256: str) -> str:
    return f"photos/{sha256[:2]}/{sha256}"


def thumbnail_key(sha256: str) -> str:
    return f"thumbnails/{sha256[:2]}/{sha256}.jpg"


def staging_prefix(upload_id: str) -> str:
    return f"uploads/{upload_id}/"
