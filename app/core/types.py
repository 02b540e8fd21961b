"""Input types shared by the domains."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("date and time out of range") from None


# A point in time given with its offset; stored and returned in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
