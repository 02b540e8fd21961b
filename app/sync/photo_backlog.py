"""What the sync status and batch answers show of photos not yet uploaded, as a port.

Sync knows that field records reference photos and that some have not arrived; how they are
stored is the photos package's business. The app hands an implementation over where it is
assembled (`app.wiring`).
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.ports import Port


class PhotoBacklog(Protocol):
    def last_stored_at(self) -> Any:
        """A scalar subquery: when the latest photo arrived (for the status's ETag)."""

    async def of_author(self, session: AsyncSession, author_id: uuid.UUID) -> list[str]:
        """sha256 of the photos the author's records reference that are not held, in order."""

    async def by_device(self, session: AsyncSession, device_ids: list[str]) -> dict[str, int]:
        """Photos not held, referenced by records sent from each device."""

    async def in_regions(self, session: AsyncSession, regions: list[str]) -> int:
        """Photos not held, referenced by households under the regions."""

    async def by_village(self, session: AsyncSession, region: str) -> dict[str, int]:
        """Photos not held, per village under the region."""


photo_backlog: Port[PhotoBacklog] = Port("photo backlog")
