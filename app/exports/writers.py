"""Writers of the export: CSV streamed as it is produced, XLSX built in a temporary file.

A CSV file holds one table (households, or monitoring cases); the XLSX workbook a sheet of
each.

Both keep memory constant: rows arrive in partitions from the database and leave at once. The
XLSX writer (XlsxWriter in `constant_memory` mode) flushes each row to its temporary files as
it goes; only the finished file is sent, so the client learns its length.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import xlsxwriter

from app.exports.columns import COLUMNS, Cell, Column, Kind

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Excel reads a CSV file as UTF-8 only when it starts with the byte order mark.
BOM = "\ufeff"
# A cell starting with one of these is a formula to a spreadsheet: written as text, with a
# leading apostrophe (OWASP, CSV injection). Names come from phones in the field.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SHEET_NAME = "贫困户"
CASES_SHEET_NAME = "监测对象"
MAX_XLSX_ROWS = 1_048_575  # Excel's rows per sheet, less the header


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


class XlsxWorkbook:
    """The workbook, written in constant memory: one sheet after the other, each row by row."""

    def __init__(self, path: Path) -> None:
        self.workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        self.bold = self.workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        self.formats = {
            Kind.money: self.workbook.add_format({"num_format": "0.00"}),
            Kind.percent: self.workbook.add_format({"num_format": "0.0"}),
            Kind.timestamp: self.workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
            Kind.date: self.workbook.add_format({"num_format": "yyyy-mm-dd"}),
        }
        self.sheets: list[XlsxSheet] = []

    def sheet(self, name: str, columns: Sequence[Column]) -> XlsxSheet:
        """A new sheet (the one before it is finished: constant memory writes in order)."""
        if self.sheets:
            self.sheets[-1].finish()
        sheet = XlsxSheet(self, name, columns)
        self.sheets.append(sheet)
        return sheet

    def close(self) -> None:
        if self.sheets:
            self.sheets[-1].finish()
        self.workbook.close()


class XlsxSheet:
    """One worksheet, header frozen and filtered, written row by row."""

    def __init__(self, book: XlsxWorkbook, name: str, columns: Sequence[Column]) -> None:
        self.sheet = book.workbook.add_worksheet(name)
        self.columns = columns
        self.formats = book.formats
        for index, column in enumerate(columns):
            self.sheet.set_column(index, index, column.width)
        self.sheet.freeze_panes(1, 0)
        for index, column in enumerate(columns):
            self.sheet.write_string(0, index, column.header, book.bold)
        self.rows = 0

    def write(self, rows: Sequence[Sequence[Cell]]) -> None:
        if self.rows + len(rows) > MAX_XLSX_ROWS:
            raise OverflowError(f"an XLSX sheet holds at most {MAX_XLSX_ROWS} rows")
        sheet, formats = self.sheet, self.formats
        for row in rows:
            self.rows += 1
            for index, (column, cell) in enumerate(zip(self.columns, row, strict=True)):
                if cell is None:
                    continue
                if isinstance(cell, datetime):
                    sheet.write_datetime(self.rows, index, cell, formats[Kind.timestamp])
                elif isinstance(cell, date):
                    sheet.write_datetime(self.rows, index, cell, formats[Kind.date])
                elif isinstance(cell, Decimal):
                    sheet.write_number(self.rows, index, float(cell), formats.get(column.kind))
                elif isinstance(cell, int):
                    sheet.write_number(self.rows, index, cell)
                else:  # never a formula, whatever the text
                    sheet.write_string(self.rows, index, cell)

    def finish(self) -> None:
        self.sheet.autofilter(0, 0, max(self.rows, 1), len(self.columns) - 1)
