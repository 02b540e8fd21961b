"""What sync publishes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from app.auth.principal import Principal


@dataclass(frozen=True)
class BatchReceived:
    """A sync batch was applied (its first arrival: a replay publishes nothing).

    `outcomes`: (household id or None, result status) of each record, in the batch's order.
    """

    principal: Principal
    batch_id: uuid.UUID
    device_id: str
    received_at: datetime
    outcomes: tuple[tuple[uuid.UUID | None, str], ...]
