"""Request bodies to temporary files, hashed on the way: a body is never held in memory."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import ClientDisconnect

# Received bytes are written in batches of about this size: few system calls, flat memory.
WRITE_BATCH = 1 << 20


@dataclass
class Spooled:
    path: Path
    size: int = 0
    # hashlib objects by algorithm name, fed every byte received.
    hashes: dict[str, Any] = field(default_factory=dict)
    # The client went away before the end of its body: `size` bytes arrived.
    cut_short: bool = False
    # The body went past `limit`: reading stopped there.
    too_long: bool = False

    def hexdigest(self, algorithm: str) -> str:
        return str(self.hashes[algorithm].hexdigest())

    def digest(self, algorithm: str) -> bytes:
        return bytes(self.hashes[algorithm].digest())

    async def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            await anyio.Path(self.path).unlink()


def spool_dir(data_dir: Path) -> Path:
    directory = data_dir / "spool"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


async def spool(
    chunks: AsyncIterator[bytes],
    directory: Path,
    *,
    limit: int,
    algorithms: tuple[str, ...] = ("sha256",),
) -> Spooled:
    """Write `chunks` to a new file in `directory`, hashing them, up to `limit` bytes.

    A client that disconnects midway leaves what it sent (`cut_short`); a body longer than
    `limit` stops there (`too_long`). The caller owns the file and deletes it.
    """
    result = Spooled(
        path=directory / f"{uuid.uuid4().hex}.part",
        hashes={name: hashlib.new(name) for name in algorithms},
    )
    try:
        await _write(chunks, result, limit=limit)
    except BaseException:
        await result.discard()
        raise
    return result


async def _write(chunks: AsyncIterator[bytes], result: Spooled, *, limit: int) -> None:
    pending: list[bytes] = []
    pending_size = 0
    async with await anyio.open_file(result.path, "wb") as file:
        try:
            async for chunk in chunks:
                if result.size + len(chunk) > limit:
                    chunk = chunk[: limit - result.size]
                    result.too_long = True
                for digest in result.hashes.values():
                    digest.update(chunk)
                result.size += len(chunk)
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= WRITE_BATCH:
                    await file.write(b"".join(pending))
                    pending, pending_size = [], 0
                if result.too_long:
                    break
        except ClientDisconnect:
            result.cut_short = True
        finally:
            if pending:
                await file.write(b"".join(pending))
