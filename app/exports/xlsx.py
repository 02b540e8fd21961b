"""The XLSX workbook, streamed as it is produced: the first bytes leave with the first rows.

Office Open XML (ECMA-376) is a ZIP of XML parts. The parts that describe the workbook are
small and known before any row is read; each sheet is one XML part written row by row, its
autofilter (which needs the last row) after its rows. stream-zip compresses the parts into a
ZIP on the fly (Zip 2.0 entries with data descriptors, which Excel, WPS and LibreOffice read),
so neither the server's memory nor a temporary file grows with the rows, and the client has
its first bytes after one page of households instead of after the whole file.

Cells are typed: money and numbers as numbers (money with two
decimals), dates and times as date serials with a format, text as inline strings (never a
formula), identifiers as text.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from stream_zip import ZIP_32, async_stream_zip

from app.core.base import utcnow
from app.exports.columns import Cell, Column, Kind

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_XLSX_ROWS = 1_048_575  # Excel's rows per sheet, less the header
MAX_CELL_TEXT = 32_767  # Excel's characters per cell
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Characters XML 1.0 does not allow (free text from phones may hold them): dropped.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_EPOCH = datetime(1899, 12, 30)  # day 0 of Excel's 1900 date system (after its 1900 leap bug)

# Cell formats (styles.xml cellXfs), by index.
_HEADER, _MONEY, _PERCENT, _TIMESTAMP, _DATE = 1, 2, 3, 4, 5
_NUMBER_STYLE = {Kind.money: _MONEY, Kind.percent: _PERCENT}
_STYLES = (
    _XML + f'<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="3"><numFmt numFmtId="164" formatCode="0.0"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm"/>'
    '<numFmt numFmtId="166" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="6"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1" '
    'applyAlignment="1"><alignment vertical="top" wrapText="1"/></xf>'
    '<xf numFmtId="2" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


@dataclass(frozen=True)
class Sheet:
    name: str
    columns: Sequence[Column]
    partitions: AsyncIterable[Sequence[Sequence[Cell]]]


def column_letter(index: int) -> str:
    """A, B, … Z, AA, … for a zero-based column index."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _text(value: str) -> str:
    value = _ILLEGAL.sub("", value)[:MAX_CELL_TEXT]
    space = ' xml:space="preserve"' if value != value.strip() else ""
    return f"<is><t{space}>{escape(value)}</t></is>"


def _serial(value: date) -> str:
    if isinstance(value, datetime):
        delta = value.replace(tzinfo=None) - _EPOCH
        return repr(delta.days + delta.seconds / 86_400)
    return str((value - _EPOCH.date()).days)


def _cell(ref: str, column: Column, cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return f'<c r="{ref}" s="{_TIMESTAMP}"><v>{_serial(cell)}</v></c>'
    if isinstance(cell, date):
        return f'<c r="{ref}" s="{_DATE}"><v>{_serial(cell)}</v></c>'
    if isinstance(cell, bool):  # not a number: shown as its text
        return f'<c r="{ref}" t="inlineStr">{_text(str(cell))}</c>'
    if isinstance(cell, Decimal):
        style = _NUMBER_STYLE.get(column.kind)
        styled = f' s="{style}"' if style else ""
        return f'<c r="{ref}"{styled}><v>{cell}</v></c>'
    if isinstance(cell, int):
        return f'<c r="{ref}"><v>{cell}</v></c>'
    return f'<c r="{ref}" t="inlineStr">{_text(str(cell))}</c>'


async def _sheet_xml(sheet: Sheet) -> AsyncIterator[bytes]:
    letters = [column_letter(i) for i in range(len(sheet.columns))]
    widths = "".join(
        f'<col min="{i + 1}" max="{i + 1}" width="{column.width}" customWidth="1"/>'
        for i, column in enumerate(sheet.columns)
    )
    header = "".join(
        f'<c r="{letter}1" s="{_HEADER}" t="inlineStr">{_text(column.header)}</c>'
        for letter, column in zip(letters, sheet.columns, strict=True)
    )
    yield (
        _XML + f'<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}">'
        '<sheetViews><sheetView workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft"/></sheetView></sheetViews>'
        f"<cols>{widths}</cols><sheetData>"
        f'<row r="1">{header}</row>'
    ).encode()
    number = 1
    async for rows in sheet.partitions:
        if number + len(rows) > MAX_XLSX_ROWS + 1:
            raise OverflowError(f"an XLSX sheet holds at most {MAX_XLSX_ROWS} rows")
        parts = []
        for row in rows:
            number += 1
            cells = "".join(
                _cell(f"{letter}{number}", column, cell)
                for letter, column, cell in zip(letters, sheet.columns, row, strict=True)
            )
            parts.append(f'<row r="{number}">{cells}</row>')
        yield "".join(parts).encode()
    yield (f'</sheetData><autoFilter ref="{_filter_range(sheet, number)}"/></worksheet>').encode()


def _filter_range(sheet: Sheet, last_row: int) -> str:
    return f"A1:{column_letter(len(sheet.columns) - 1)}{max(last_row, 2)}"


def _workbook_parts(sheets: Sequence[Sheet]) -> list[tuple[str, str]]:
    count = len(sheets)
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, count + 1)
    )
    content_types = (
        _XML + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        f"{overrides}</Types>"
    )
    package_rels = (
        _XML + f'<Relationships xmlns="{_PACKAGE_REL}">'
        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    )
    entries = "".join(
        f'<sheet name={quoteattr(sheet.name)} sheetId="{i}" r:id="rId{i}"/>'
        for i, sheet in enumerate(sheets, start=1)
    )
    workbook = (
        _XML + f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}">'
        f"<bookViews><workbookView/></bookViews><sheets>{entries}</sheets></workbook>"
    )
    sheet_rels = "".join(
        f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, count + 1)
    )
    workbook_rels = (
        _XML + f'<Relationships xmlns="{_PACKAGE_REL}">{sheet_rels}'
        f'<Relationship Id="rId{count + 1}" Type="{_REL}/styles" Target="styles.xml"/>'
        "</Relationships>"
    )
    return [
        ("[Content_Types].xml", content_types),
        ("_rels/.rels", package_rels),
        ("xl/workbook.xml", workbook),
        ("xl/_rels/workbook.xml.rels", workbook_rels),
        ("xl/styles.xml", _STYLES),
    ]


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def xlsx_chunks(sheets: Sequence[Sheet]) -> AsyncIterator[bytes]:
    """The workbook's bytes, as the ZIP is produced (one sheet after the other)."""
    modified = utcnow().replace(tzinfo=None)

    async def members() -> AsyncIterator[tuple[str, datetime, int, object, AsyncIterable[bytes]]]:
        for name, text in _workbook_parts(sheets):
            yield name, modified, 0o600, ZIP_32, _once(text.encode())
        for i, sheet in enumerate(sheets, start=1):
            yield f"xl/worksheets/sheet{i}.xml", modified, 0o600, ZIP_32, _sheet_xml(sheet)

    async for chunk in async_stream_zip(
        members(),  # type: ignore[arg-type]
        # zlib's default level: level 9 (stream-zip's default) costs much CPU for little.
        get_compressobj=lambda: zlib.compressobj(wbits=-zlib.MAX_WBITS, level=6),
        extended_timestamps=False,
    ):
        yield chunk
