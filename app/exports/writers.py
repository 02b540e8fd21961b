"""The CSV writer of the export, streamed as it is produced (the XLSX one: `app.exports.xlsx`).

A CSV file holds one table (households, or monitoring cases); the XLSX workbook a sheet of
each. Both keep memory constant: rows arrive in partitions from the database and leave at once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import date, datetime

from app.exports.columns import COLUMNS, Cell, Column, Kind

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# Excel reads a CSV file as UTF-8 only when it starts with the byte order mark.
BOM = "\ufeff"
# A cell starting with one of these is a formula to a spreadsheet: written as text, with a
# leading apostrophe (OWASP, CSV injection). Names come from phones in the field.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SHEET_NAME = "贫困户"
CASES_SHEET_NAME = "监测对象"


def _csv_text(column: Column, cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%d %H:%M")
    if isinstance(cell, date):
        return cell.isoformat()
    if isinstance(cell, str):
        if column.kind is Kind.identifier and cell.isascii() and cell.isdigit():
            # Excel (and WPS) read a bare 3715221012010001 as a number: 3.71522E+15, its last
            # digits and any leading zero lost. ="…" is text to them; digits only, no injection.
            return f'="{cell}"'
        return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell
    return str(cell)


async def csv_chunks(
    partitions: AsyncIterable[Sequence[Sequence[Cell]]], columns: Sequence[Column] = COLUMNS
) -> AsyncIterator[bytes]:
    """The CSV file (RFC 4180, CRLF line ends, UTF-8 with BOM), one chunk per partition."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    writer.writerow([column.header for column in columns])
    yield buffer.getvalue().encode()
    async for rows in partitions:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(
            [_csv_text(column, cell) for column, cell in zip(columns, row, strict=True)]
            for row in rows
        )
        yield buffer.getvalue().encode()
