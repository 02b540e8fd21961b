"""What the photos package announces (subscribers are connected in `app.wiring`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PhotoStored:
    """The bytes of a photo arrived, and its row was written (in this transaction)."""

    sha256: str
