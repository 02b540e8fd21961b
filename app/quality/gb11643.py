"""Stored ID numbers against GB 11643-1999: in SQL, to count and page, and in Python, to say why.

`app.households.id_numbers.normalize` is the rule. Checking it in Python would mean streaming
every current member's number out of the database on every request (175,000 in a county), so
the database applies the same rule: `valid_in_sql` accepts exactly the numbers that
`normalize` returns unchanged (tests compare the two on thousands of numbers). `problem` then
asks `normalize` about the few numbers reported, for the reason shown.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, cast, false, func, literal, or_

from app.core.i18n import Text
from app.households import id_numbers

# GB 11643-1999: weight of position i (1…17) is 2^(18-i) mod 11; the check character is
# CHECK_CHARACTERS[sum mod 11]. The same table as id_numbers.check_char (tested).
WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
CHECK_CHARACTERS = "10X98765432"
EARLIEST_YEAR = 1880

_FORM18 = re.compile(r"[0-9]{17}[0-9X]")
_FORM15 = re.compile(r"[0-9]{15}")
PROBLEMS = {
    "format": Text("the ID number is not 18 characters (17 digits and a digit or X)"),
    "birth_date_not_a_date": Text("the birth date in the ID number is not a date"),
    "birth_date_implausible": Text(
        "the birth date in the ID number is in the future or before 1880"
    ),
    "check_character": Text("the check character of the ID number is wrong"),
    "not_normalized": Text("the ID number is stored in its old 15-digit form (or not normalized)"),
}


def valid_in_sql(number: Any, *, today: date) -> ColumnElement[bool]:
    """SQL: `number` is a normalized, valid 18-character ID number (portable SQL: length,
    ltrim, substr, CAST and integer arithmetic; the CASE keeps the CASTs away from anything but
    digits)."""
    last = func.substr(number, 18, 1)
    shaped = and_(
        func.length(number) == 18,
        # ltrim removes every leading character of the set: nothing is left of 17 digits
        func.ltrim(func.substr(number, 1, 17), "0123456789") == "",
        last.in_([*"0123456789", "X"]),
    )

    def digits(start: int, length: int) -> Any:
        return cast(func.substr(number, start, length), Integer)

    year, month, day = digits(7, 4), digits(11, 2), digits(13, 2)
    leap = or_(and_(year % 4 == 0, year % 100 != 0), year % 400 == 0)
    month_days = case(
        (month.in_([4, 6, 9, 11]), 30), (month == 2, case((leap, 29), else_=28)), else_=31
    )
    born = and_(
        month.between(1, 12),
        day.between(1, month_days),
        year >= EARLIEST_YEAR,
        digits(7, 8) <= int(today.strftime("%Y%m%d")),
    )
    total = sum((digits(i + 1, 1) * w for i, w in enumerate(WEIGHTS)), start=literal(0))
    checked = func.substr(literal(CHECK_CHARACTERS), total % 11 + 1, 1) == last
    return case((shaped, and_(born, checked)), else_=false())


def problem(raw: str, *, today: date) -> str | None:
    """Why a stored ID number is not valid (a key of PROBLEMS), or None.

    `id_numbers.normalize` decides; the reason is then told apart here, for the detail.
    """
    try:
        normal = id_numbers.normalize(raw, today=today)
    except id_numbers.InvalidIdNumber:
        pass
    else:
        return None if normal == raw else "not_normalized"
    value = raw.strip().upper()
    if _FORM15.fullmatch(value):
        value = value[:6] + "19" + value[6:] + "0"
    elif not _FORM18.fullmatch(value):
        return "format"
    try:
        birth = id_numbers.birth_date(value)
    except ValueError:
        return "birth_date_not_a_date"
    if birth > today or birth.year < EARLIEST_YEAR:
        return "birth_date_implausible"
    return "check_character"


def masked(raw: str) -> str:
    """The masked form households show (371522********123X); malformed numbers fully starred,
    since a short one would come out of the usual mask almost whole."""
    value = raw.strip()
    if len(value) in (15, 18):
        return id_numbers.mask(value)
    return "*" * len(value)
