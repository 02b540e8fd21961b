"""Writers of the export: CSV streamed as it is produced, XLSX built in a temporary file.

Both keep memory constant: rows arrive in partitions from the database and leave at once. The
XLSX writer (XlsxWriter in `constant_memory` mode) flushes each row to its temporary files as
it goes; only the finished file is sent, so the client learns its length.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import xlsxwriter

from app.exports.columns import COLUMNS, HEADERS, Cell, Column, Kind

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Excel reads a CSV file as UTF-8 only when it starts with the byte order mark.
BOM = "\ufeff"
# A cell starting with one of these is a formula to a spreadsheet: written as text, with a
# leading apostrophe (OWASP, CSV injection). Names come from phones in the field.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SHEET_NAME = "贫困户"
MAX_XLSX_ROWS = 1_048_575  # Excel's rows per sheet, less the header


def _csv_text(column: Column, cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%d %H:%M")
    if isinstance(cell, str):
        if column.kind is Kind.identifier and cell.isascii() and cell.isdigit():
            # Excel (and WPS) read a bare 3715221012010001 as a number: 3.71522E+15, its last
            # digits and any leading zero lost. ="…" is text to them; digits only, no injection.
            return f'="{cell}"'
        return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell
    return str(cell)


async def csv_chunks(partitions: AsyncIterable[Sequence[Sequence[Cell]]]) -> AsyncIterator[bytes]:
    """The CSV file (RFC 4180, CRLF line ends, UTF-8 with BOM), one chunk per partition."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    writer.writerow(HEADERS)
    yield buffer.getvalue().encode()
    async for rows in partitions:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(
            [_csv_text(column, cell) for column, cell in zip(COLUMNS, row, strict=True)]
            for row in rows
        )
        yield buffer.getvalue().encode()


class XlsxSheet:
    """One worksheet of households, header frozen and filtered, written row by row."""

    def __init__(self, path: Path) -> None:
        self.workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        self.sheet = self.workbook.add_worksheet(SHEET_NAME)
        bold = self.workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        self.formats = {
            Kind.money: self.workbook.add_format({"num_format": "0.00"}),
            Kind.percent: self.workbook.add_format({"num_format": "0.0"}),
            Kind.timestamp: self.workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
        }
        for index, column in enumerate(COLUMNS):
            self.sheet.set_column(index, index, column.width)
        self.sheet.freeze_panes(1, 0)
        for index, header in enumerate(HEADERS):
            self.sheet.write_string(0, index, header, bold)
        self.rows = 0

    def write(self, rows: Sequence[Sequence[Cell]]) -> None:
        if self.rows + len(rows) > MAX_XLSX_ROWS:
            raise OverflowError(f"an XLSX sheet holds at most {MAX_XLSX_ROWS} rows")
        sheet, formats = self.sheet, self.formats
        for row in rows:
            self.rows += 1
            for index, (column, cell) in enumerate(zip(COLUMNS, row, strict=True)):
                if cell is None:
                    continue
                if isinstance(cell, datetime):
                    sheet.write_datetime(self.rows, index, cell, formats[Kind.timestamp])
                elif isinstance(cell, Decimal):
                    sheet.write_number(self.rows, index, float(cell), formats.get(column.kind))
                elif isinstance(cell, int):
                    sheet.write_number(self.rows, index, cell)
                else:  # never a formula, whatever the text
                    sheet.write_string(self.rows, index, cell)

    def close(self) -> None:
        self.sheet.autofilter(0, 0, max(self.rows, 1), len(COLUMNS) - 1)
        self.workbook.close()
