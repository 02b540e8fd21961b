"""Reading an uploaded table (CSV or XLSX) into rows of cell values: machinery, no columns.

Importers (the department alert lists, the household register) name their own columns and turn
`UnreadableTable` into a problem of their own; this module only gets the rows out of the bytes
safely: formats told apart by content, then by extension; CSV in the encodings Excel and WPS
save on Chinese Windows; an XLSX's first sheet, its inflated size bounded before it is parsed.
"""

from __future__ import annotations

import csv
import io
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any, Literal

from app.core.i18n import Text

Format = Literal["csv", "xlsx"]
# An XLSX is a zip: what its parts may inflate to, as a multiple of the file size limit.
XLSX_INFLATION = 10

_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls (Excel 97-2003), .doc, .et
_UTF16 = (b"\xff\xfe", b"\xfe\xff")


class UnreadableTable(ValueError):
    """The bytes cannot be read as a table at all. `reason` is one of `too_large` (the workbook
    inflates past its bound), `not_csv_or_xlsx` (or `not_xlsx` when CSV is not accepted),
    `encoding`, `bad_xlsx`; `extensions` go into the importer's problem document."""

    def __init__(self, reason: str, detail: Text, **extensions: Any) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.extensions = extensions


def read_table(
    data: bytes, *, filename: str | None, max_bytes: int, csv_allowed: bool = True
) -> tuple[Format, Iterator[list[Any]]]:
    """The file's format and its rows (each a list of cell values; blank rows included, so the
    row numbers stay the file's). XLSX errors surface as the rows are iterated.

    CSV: UTF-8 with or without BOM, else GB18030 (Excel and WPS on Chinese Windows), or UTF-16
    with BOM (Excel's "Unicode text"); comma- or tab-separated, as the first line shows.
    """
    name = (filename or "").lower()
    if data.startswith(_ZIP):
        return "xlsx", _xlsx_rows(data, max_bytes=max_bytes)
    if data.startswith(_OLE) or name.endswith(".xls"):
        if csv_allowed:
            raise UnreadableTable(
                "not_csv_or_xlsx",
                Text("Excel 97-2003 files (.xls) are not read: save the sheet as .xlsx or as CSV"),
            )
        raise UnreadableTable(
            "not_xlsx", Text("Excel 97-2003 files (.xls) are not read: save the sheet as .xlsx")
        )
    if name.endswith(".xlsx"):
        raise UnreadableTable("bad_xlsx", Text("the .xlsx file is not a readable workbook"))
    if not csv_allowed:
        raise UnreadableTable("not_xlsx", Text("the file is not an .xlsx workbook"))
    return "csv", _csv_rows(_decode(data))


def blank(value: Any) -> bool:
    """An empty cell: nothing, or only blanks."""
    return value is None or (isinstance(value, str) and not value.strip())


def text(value: Any) -> str | None:
    """A cell as stripped text; None when blank."""
    if value is None:
        return None
    out = str(value).strip()
    return out or None


class LostDigits(ValueError):
    """A long identifier a spreadsheet stored as a number: only 15 significant digits remain."""


def identifier(value: Any) -> str | None:
    """A cell holding an identifier (ID number, code, phone) as text; None when blank.

    A whole number stored as a number is its digits; a float of 15 or more digits (or with a
    fraction) lost digits in the spreadsheet: `LostDigits`.
    """
    if isinstance(value, float):
        if not value.is_integer() or value >= 1e15:
            raise LostDigits("the value was stored as a number and lost digits")
        value = int(value)
    return text(value)


# --- whole-file reading --------------------------------------------------------------------


def _decode(data: bytes) -> str:
    if data.startswith(_UTF16):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise UnreadableTable(
                "encoding", Text("the file starts as UTF-16 text but is not UTF-16")
            ) from None
    if b"\x00" in data[:65536]:
        # Text files hold no NUL byte: a picture, a PDF, a zip other than xlsx …
        raise UnreadableTable(
            "not_csv_or_xlsx", Text("the file is neither CSV text nor an .xlsx workbook")
        )
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnreadableTable(
        "encoding", Text("the file is neither UTF-8 nor GB18030 text: save it as CSV UTF-8")
    )


def _csv_rows(text: str) -> Iterator[list[Any]]:
    end = text.find("\n")
    first_line = text if end < 0 else text[:end]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    try:
        yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    except csv.Error as exc:  # e.g. a field longer than csv.field_size_limit()
        raise UnreadableTable(
            "not_csv_or_xlsx", Text("the CSV text is malformed: {exc}", exc=exc)
        ) from None


def _xlsx_rows(data: bytes, *, max_bytes: int) -> Iterator[list[Any]]:
    """The first sheet's rows, as values (empty rows included, so numbering stays the sheet's)."""
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
        if inflated > XLSX_INFLATION * max_bytes:
            raise UnreadableTable(
                "too_large",
                Text("the workbook inflates to {inflated} bytes: split it", inflated=inflated),
            )
        with warnings.catch_warnings():
            # openpyxl warns about styles and extensions it does not read: none matter here.
            warnings.simplefilter("ignore")
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                sheet = book.worksheets[0]
                for values in sheet.iter_rows(values_only=True):
                    yield list(values)
            finally:
                book.close()
    except UnreadableTable:
        raise
    except Exception as exc:  # openpyxl raises many kinds on a damaged or foreign zip
        raise UnreadableTable(
            "bad_xlsx",
            Text("the file is not a readable .xlsx workbook ({error})", error=type(exc).__name__),
        ) from None
