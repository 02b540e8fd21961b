"""What the households service publishes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.households.models import Household


@dataclass(frozen=True)
class HouseholdStatusChanged:
    """An existing household's `status` changed (flushed with its history row)."""

    household: Household
    status_from: str | None
    status_to: str
    actor_id: uuid.UUID | None
