"""Money: yuan in, integer fen stored, decimal strings with two places out. Never float."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer

from app.core.i18n import Text

CENT = Decimal("0.01")


def _yuan_text(yuan: Decimal) -> str:
    # One amount, one text: 0.1, "0.10" and an omitted 0 must hash alike (a retry is a retry).
    return str(yuan.quantize(CENT) + 0)  # + 0 turns -0.00 into 0.00


_PLAIN_DECIMAL = re.compile(r"\d+(\.\d+)?", re.ASCII)


def _plain_amount(value: object) -> object:
    """Refuse what Decimal() would take but no form sends: booleans, and text other than plain
    ASCII digits with an optional fraction (no spaces, signs, exponents or full-width digits)."""
    if isinstance(value, bool):
        raise ValueError(Text("an amount is a number, not true or false"))
    if isinstance(value, str) and not _PLAIN_DECIMAL.fullmatch(value):
        raise ValueError(
            Text("an amount is written with the digits 0-9 and at most one decimal point")
        )
    return value


# Yuan with at most two decimals, from a JSON number or a decimal string; up to 9,999,999,999.99.
Yuan = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2, examples=["2952.00"]),
    BeforeValidator(_plain_amount),
    PlainSerializer(_yuan_text, return_type=str, when_used="json"),
]
# A decimal string with exactly two places, e.g. "-120.50" (net income can be negative).
MoneyStr = Annotated[str, Field(pattern=r"^-?\d+\.\d{2}$", examples=["3218.00"])]


def to_fen(yuan: Decimal) -> int:
    fen = yuan * 100
    if fen != fen.to_integral_value():
        raise ValueError(Text("at most two decimals"))
    return int(fen)


def fen_str(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def divide_half_up(fen: int, divisor: int) -> int:
    """fen / divisor rounded half up (half away from zero) to the whole fen."""
    return int((Decimal(fen) / Decimal(divisor)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
