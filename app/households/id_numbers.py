"""Resident ID numbers (GB 11643-1999): check digit, birth date, 15→18 upgrade, mask, hash."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date

from app.core.i18n import Text

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_RE18 = re.compile(r"[0-9]{17}[0-9X]")
_RE15 = re.compile(r"[0-9]{15}")


class InvalidIdNumber(ValueError):
    """Why an ID number is refused; `code`: `format`, `birth_date` or `check_char`."""

    def __init__(self, message: Text, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def check_char(first17: str) -> str:
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def normalize(raw: str, *, today: date | None = None) -> str:
    """Validate an ID number and return its 18-character form (15-digit numbers are upgraded)."""
    value = raw.strip().upper()
    if _RE15.fullmatch(value):
        # Old numbers: two-digit year of the 1900s, no check character.
        body = value[:6] + "19" + value[6:]
        value = body + check_char(body)
    if not _RE18.fullmatch(value):
        raise InvalidIdNumber(
            Text("an ID number has 18 characters: 17 digits and a digit or X"), code="format"
        )
    try:
        birth = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise InvalidIdNumber(
            Text("birth date {value} in the ID number is not a date", value=value[6:14]),
            code="birth_date",
        ) from None
    if birth > (today or date.today()) or birth.year < 1880:
        raise InvalidIdNumber(
            Text("birth date {birth} in the ID number is not plausible", birth=birth.isoformat()),
            code="birth_date",
        )
    if check_char(value[:17]) != value[17]:
        raise InvalidIdNumber(
            Text("the check character of the ID number is wrong"), code="check_char"
        )
    return value


def birth_date(id_number: str) -> date:
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def sex(id_number: str) -> str:
    return "male" if int(id_number[16]) % 2 else "female"


def mask(id_number: str) -> str:
    """Keep the address code and the last four characters: 371522********123X."""
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


def search_hash(id_number: str, *, key: str) -> str:
    """Keyed hash (HMAC-SHA256) that lets an exact ID number be found without a plain-text index."""
    return hmac.new(key.encode(), id_number.encode(), hashlib.sha256).hexdigest()


def mask_phone(phone: str) -> str:
    digits = phone.strip()
    if len(digits) <= 4:
        return "*" * len(digits)
    keep_head = 3 if len(digits) >= 11 else 0
    return digits[:keep_head] + "*" * (len(digits) - keep_head - 4) + digits[-4:]
