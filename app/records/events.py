"""What the one write rule of field records (`app.records.service.apply_record`) publishes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.auth.principal import Principal
from app.households.models import Household
from app.records.models import RecordColumns


@dataclass
class RecordWriting:
    """A record is about to be inserted (`record` None) or changed to a new revision.

    Subscribers that compare before and after keep what they need in `notes`, under a key of
    their own; the `RecordWritten` that follows carries this event.
    """

    model: type[RecordColumns]
    record: RecordColumns | None
    household: Household
    data: Any = None  # the body being written (a `RecordWrite` of the record's type)
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordWritten:
    """A record was inserted or changed to a new revision (flushed, not yet committed)."""

    record_type: str
    record: RecordColumns
    household: Household
    principal: Principal
    created: bool
    writing: RecordWriting
