"""Statistical division codes (统计用区划代码): levels, parents and prefixes, derived from the code.

A code is 12 digits: province 2 + city 2 + county 2 + town 3 + village 3. A natural village or
group (自然村/组) has no national code; fieldsync gives it the village's code, a hyphen and a local
id of up to 8 letters or digits (``371522101201-03``), so prefix matching still finds it.
"""

from __future__ import annotations

import re
from enum import IntEnum
from functools import lru_cache

from app.core.i18n import Text

# For OpenAPI parameters; ASCII digits only (\d would take full-width digits too).
CODE_PATTERN = r"^[0-9]{12}(-[0-9A-Za-z]{1,8})?$"
_CODE_RE = re.compile(r"[0-9]{12}(-[0-9A-Za-z]{1,8})?")


class Level(IntEnum):
    province = 1
    city = 2
    county = 3
    town = 4
    village = 5
    natural_village = 6


# Digits that carry meaning at each level of a 12-digit code.
_SIGNIFICANT = {Level.province: 2, Level.city: 4, Level.county: 6, Level.town: 9, Level.village: 12}


class InvalidCode(ValueError):
    pass


@lru_cache(maxsize=65536)
def level_of(code: str) -> Level:
    """The level a code stands for, from its trailing zeros (or its local suffix)."""
    if not _CODE_RE.fullmatch(code):
        raise InvalidCode(
            Text(
                "{code!r} is not a 12-digit division code (or a village code with a '-local id')",
                code=code,
            )
        )
    if "-" in code:
        if level_of(code.split("-")[0]) is not Level.village:
            raise InvalidCode(
                Text("{code!r}: a natural village's code starts with its village's code", code=code)
            )
        return Level.natural_village
    if code[:2] == "00":
        raise InvalidCode(Text("{code!r} has no province", code=code))
    start = 0
    for level in (Level.province, Level.city, Level.county, Level.town):
        n = _SIGNIFICANT[level]
        if set(code[n:]) == {"0"}:
            if set(code[start:n]) == {"0"}:
                raise InvalidCode(
                    Text("{code!r}: the digits of its own level are all zero", code=code)
                )
            return level
        start = n
    if code[6:9] == "000":
        raise InvalidCode(Text("{code!r}: a village code needs its town's digits", code=code))
    return Level.village


def prefix_of(code: str) -> str:
    """The prefix shared by a division and everything under it."""
    level = level_of(code)
    if level is Level.natural_village:
        return code
    return code[: _SIGNIFICANT[level]]


def ancestors_of(code: str) -> list[str]:
    """Codes of every division above this one, nearest last (a natural village: its village)."""
    level = level_of(code)
    base = code.split("-")[0]
    out = []
    for above in (Level.province, Level.city, Level.county, Level.town, Level.village):
        if above >= level:
            break
        n = _SIGNIFICANT[above]
        candidate = base[:n] + "0" * (12 - n)
        # A city without counties (东莞 441900) is its towns' county level too: list it once.
        if (candidate != base or level is Level.natural_village) and candidate not in out:
            out.append(candidate)
    return out


def is_within(code: str, ancestor: str) -> bool:
    """Whether `code` is `ancestor` itself or lies under it."""
    if code == ancestor:
        return True
    if level_of(ancestor) is Level.natural_village:
        return False
    return code.startswith(prefix_of(ancestor)) and level_of(code) > level_of(ancestor)


def prefix_range(prefix: str) -> tuple[str, str]:
    """The half-open range ``[low, high)`` holding exactly the strings that start with `prefix`,
    in bytewise order (SQLite's BINARY, PostgreSQL's "C"); for ASCII prefixes.

    A range is what an index can seek on every database, with bound parameters too: SQLite
    never uses an index for ``LIKE ? || '%'``, nor PostgreSQL for LIKE under a linguistic
    collation (or in a generic plan, where the pattern is unknown).
    """
    if not prefix or not prefix.isascii() or prefix[-1] == "\x7f":
        raise ValueError(f"no range for the prefix {prefix!r}")
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)
