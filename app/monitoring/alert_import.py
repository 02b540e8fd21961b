"""Reading a department's alert list: CSV or XLSX bytes → valid rows and rejected ones.

The file has a header row naming its columns (any order, case and surrounding blanks ignored,
other columns ignored): `department`, `id_number`, `kind`, `occurred_on` are required, `amount`
and `note` optional. Department and kind are codes (or their Chinese labels); `amount` is yuan,
a plain decimal with at most two places; `occurred_on` an ISO date (2026-03-02; 2026/3/2 as
spreadsheets write it is accepted), not in the future. Rows are numbered as in the file, the
header being row 1; blank rows are skipped.

A file that cannot be read as a whole raises `AlertFileUnreadable` (422): nothing is imported.
A bad row is a `Rejection` and the other rows still count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, cast

from app.core import tabular
from app.core.errors import InvalidInput
from app.core.i18n import Text
from app.core.money import to_fen
from app.households import id_numbers
from app.monitoring.vocabulary import LABELS, AlertKind, Department

REQUIRED_COLUMNS = ("department", "id_number", "kind", "occurred_on")
OPTIONAL_COLUMNS = ("amount", "note")
COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
NOTE_MAX = 2000

_AMOUNT = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,2})?")
_DATE = re.compile(r"([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})")


def _codes(enum: Any) -> dict[str, str]:
    """Code → code and Chinese label → code (a department's own export may use the label)."""
    return {**{m.value: m.value for m in enum}, **{v: k for k, v in LABELS[enum].items()}}


_DEPARTMENTS = _codes(Department)
_KINDS = _codes(AlertKind)

UnreadableReason = Literal[
    "too_large", "not_csv_or_xlsx", "encoding", "no_header", "missing_columns", "bad_xlsx"
]


class AlertFileUnreadable(InvalidInput):
    """The file as a whole cannot be read: nothing was imported. `reason` says why."""

    code = "alert_file_unreadable"
    title = "Alert file unreadable"

    def __init__(self, reason: UnreadableReason, detail: Text, **extensions: Any) -> None:
        super().__init__(detail, reason=reason, **extensions)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AlertRow:
    """A valid row: the ID number normalized (18 characters), the amount in fen."""

    row: int
    department: str
    id_number: str
    kind: str
    amount: int | None
    occurred_on: date
    note: str | None


@dataclass(frozen=True, slots=True)
class Rejection:
    row: int
    field: str
    reason: str


@dataclass
class AlertFile:
    """What was read: the data rows (blank ones skipped), valid or rejected."""

    format: Literal["csv", "xlsx"]
    rows: list[AlertRow] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    read: int = 0

    @property
    def rejected(self) -> int:
        """Rows rejected (a row with several bad fields counts once)."""
        return len({r.row for r in self.rejections})


def read_alert_file(data: bytes, *, filename: str | None, today: date, max_bytes: int) -> AlertFile:
    """Read a department's list (CSV or XLSX, told apart by content, then by extension).

    CSV: UTF-8 with or without BOM, else GB18030 (Excel and WPS on Chinese Windows), or UTF-16
    with BOM (Excel's "Unicode text"); comma- or tab-separated, as the header row shows.
    """
    if len(data) > max_bytes:
        raise AlertFileUnreadable(
            "too_large",
            Text(
                "the file has {data_count} bytes, more than the limit of "
                "{max_bytes} (FIELDSYNC_ALERT_IMPORT_MAX_BYTES): split it",
                data_count=len(data),
                max_bytes=max_bytes,
            ),
            limit_bytes=max_bytes,
        )
    try:
        format, rows = tabular.read_table(data, filename=filename, max_bytes=max_bytes)
        return _read(rows, format, today=today)
    except tabular.UnreadableTable as exc:
        reason = cast(UnreadableReason, exc.reason)
        raise AlertFileUnreadable(reason, exc.detail, **exc.extensions) from None


def _read(rows: Iterator[list[Any]], format: Literal["csv", "xlsx"], *, today: date) -> AlertFile:
    header: dict[str, int] | None = None
    out = AlertFile(format=format)
    for number, values in enumerate(rows, start=1):
        if all(tabular.blank(v) for v in values):
            continue
        if header is None:
            header = _header(values)
            continue
        out.read += 1
        cells = {
            name: values[index] if index < len(values) else None for name, index in header.items()
        }
        row, problems = _row(number, cells, today=today)
        if problems:
            out.rejections.extend(problems)
        elif row is not None:
            out.rows.append(row)
    if header is None:
        raise AlertFileUnreadable(
            "no_header",
            Text(
                "the file has no header row: it starts with {columns}", columns=", ".join(COLUMNS)
            ),
        )
    return out


def _header(values: list[Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, value in enumerate(values):
        name = str(value).strip().lower() if value is not None else ""
        if name in COLUMNS and name not in found:
            found[name] = index
    missing = [name for name in REQUIRED_COLUMNS if name not in found]
    if missing:
        raise AlertFileUnreadable(
            "missing_columns",
            Text(
                "the header row lacks the column(s) {missing}; it needs "
                "{required} (and may have {optional})",
                missing=", ".join(missing),
                required=", ".join(REQUIRED_COLUMNS),
                optional=", ".join(OPTIONAL_COLUMNS),
            ),
            missing_columns=missing,
        )
    return found


# --- one row -------------------------------------------------------------------------------


def _row(
    number: int, cells: dict[str, Any], *, today: date
) -> tuple[AlertRow | None, list[Rejection]]:
    problems: list[Rejection] = []

    def reject(field: str, reason: str) -> None:
        problems.append(Rejection(number, field, reason))

    department = _code(cells.get("department"), _DEPARTMENTS, "department", reject)
    kind = _code(cells.get("kind"), _KINDS, "kind", reject)
    id_number = _id_number(cells.get("id_number"), today=today, reject=reject)
    amount = _amount(cells.get("amount"), reject)
    occurred_on = _date(cells.get("occurred_on"), today=today, reject=reject)
    note = _str(cells.get("note"))
    if note is not None and len(note) > NOTE_MAX:
        reject("note", f"the note has {len(note)} characters, at most {NOTE_MAX}")
    if problems or department is None or kind is None or id_number is None or not occurred_on:
        return None, problems
    return AlertRow(number, department, id_number, kind, amount, occurred_on, note or None), []


_str = tabular.text


def _code(value: Any, known: dict[str, str], name: str, reject: Any) -> str | None:
    text = _str(value)
    if text is None:
        reject(name, f"{name} is missing")
        return None
    code = known.get(text) or known.get(text.lower())
    if code is None:
        codes = ", ".join(sorted({c for c in known.values()}))
        reject(name, f"unknown {name} {text[:40]!r}: one of {codes}")
    return code


def _id_number(value: Any, *, today: date, reject: Any) -> str | None:
    try:
        # A spreadsheet that stored the number as a number kept 15 significant digits only.
        text = tabular.identifier(value)
    except tabular.LostDigits:
        reject(
            "id_number",
            "the ID number was stored as a number and lost digits: format the column as text",
        )
        return None
    if text is None:
        reject("id_number", "id_number is missing")
        return None
    try:
        return id_numbers.normalize(text, today=today)
    except id_numbers.InvalidIdNumber as exc:
        reject("id_number", str(exc))
        return None


def _amount(value: Any, reject: Any) -> int | None:
    if isinstance(value, bool):
        reject("amount", "amount is not a number")
        return None
    if isinstance(value, int | float):
        value = format(Decimal(str(value)), "f")
    text = _str(value)
    if text is None:
        return None
    if not _AMOUNT.fullmatch(text):
        reject(
            "amount",
            f"amount {text[:20]!r} is not yuan written as digits with at most two decimals "
            "(e.g. 1280.50)",
        )
        return None
    return to_fen(Decimal(text))


def _date(value: Any, *, today: date, reject: Any) -> date | None:
    day = _as_date(value)
    if day is None:
        text = _str(value)
        if text is None:
            reject("occurred_on", "occurred_on is missing")
        else:
            reject("occurred_on", f"occurred_on {text[:20]!r} is not a date like 2026-03-02")
        return None
    if day > today:
        reject("occurred_on", f"occurred_on {day.isoformat()} is in the future")
        return None
    return day


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    match = _DATE.fullmatch(_str(value) or "")
    if match is None:
        return None
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        return None
