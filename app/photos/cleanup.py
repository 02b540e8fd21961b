"""Expired uploads are deleted by every API process now and then, and by `fieldsync` on demand."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from app.core.config import Settings
from app.core.db import transaction
from app.photos.uploads import expire_uploads

log = logging.getLogger("fieldsync.uploads")


@contextlib.asynccontextmanager
async def expire_uploads_periodically(state: Any, settings: Settings) -> AsyncIterator[None]:
    """Run `expire_uploads` every `upload_cleanup_interval_seconds` while the app serves.

    Several processes doing it at once is harmless: deleting what is gone is a no-op.
    """

    async def loop() -> None:
        while True:
            await asyncio.sleep(settings.upload_cleanup_interval_seconds)
            try:
                deleted, finished = await expire_uploads(
                    partial(transaction, state), state.storage, settings
                )
                if deleted or finished:
                    log.info("uploads: %d expired deleted, %d stranded finished", deleted, finished)
            except Exception:  # the next round tries again; the API goes on
                log.exception("uploads: cleanup failed")

    task = asyncio.create_task(loop(), name="expire-uploads")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
