"""Input types shared by the domains."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

from app.core.i18n import Text


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(Text("date and time out of range")) from None


# A point in time given with its offset; stored and returned in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(Text("text must not contain NUL (\\u0000) characters"))
    return value


# Add to any free-text type: PostgreSQL cannot store NUL, so refuse it on every database alike.
NoNul = AfterValidator(_no_nul)


def _no_negative_zero(value: float) -> float:
    return value + 0.0  # -0.0 and 0.0 are one coordinate (and must hash alike)


Coordinate = Annotated[float, AfterValidator(_no_negative_zero)]
