"""Personal data in what a caller without `pii:read` sees: exact positions, numbers in free text."""

from __future__ import annotations

import re

from app.households.id_numbers import mask, mask_phone

# Two decimals of a degree: about 1.1 km north-south and 0.9 km east-west in Shandong, which
# places a point in its village but not at its house.
COARSE_DECIMALS = 2
COARSE_DESCRIPTION = (
    "Without `pii:read` for the household's village it is coarsened: latitude and longitude "
    "rounded to 0.01° (about 1 km), without `accuracy_m`."
)
SCRUB_DESCRIPTION = (
    "ID numbers and mobile numbers in the text are masked (371522********123X, 138****1234) "
    "without `pii:read` for the household's village."
)

# ID numbers (GB 11643): 17 digits and a check digit or X, or the old 15 digits; a longer run
# of digits (a bank card, a household number with more digits) is something else.
_ID_NUMBER = re.compile(r"(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9])")
# Mainland mobiles: 1[3-9] and 9 more digits, grouped 3-4-4 with optional spaces or hyphens,
# optionally after +86, 0086 or 86; not inside a longer run of digits.
_MOBILE = re.compile(
    r"(?<![0-9])(?P<prefix>(?:\+|00)?86[ -]?)?"
    r"(?P<a>1[3-9][0-9])[ -]?(?P<b>[0-9]{4})[ -]?(?P<c>[0-9]{4})(?![0-9])"
)


def coarse(degrees: float) -> float:
    """A latitude or longitude rounded to 0.01°."""
    return round(degrees, COARSE_DECIMALS) + 0.0  # never -0.0


def scrub(text: str) -> str:
    """The text with ID numbers and mainland mobile numbers masked, everything else as it is.

    Matched: 18-character ID numbers (17 digits and a digit or X/x) and 15-digit old ones, as
    `mask` shows them (371522********123X); mobile numbers (11 digits starting 13-19, written
    plain or 3-4-4 with spaces or hyphens, optionally after +86/0086/86) as `mask_phone` shows
    them (138****1234, the prefix kept). A number inside a longer run of digits is left alone.
    Masked output matches neither pattern again, so scrubbing twice changes nothing more.
    """
    text = _ID_NUMBER.sub(lambda m: mask(m.group()), text)
    return _MOBILE.sub(lambda m: (m["prefix"] or "") + mask_phone(m["a"] + m["b"] + m["c"]), text)
