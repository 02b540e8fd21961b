"""The streamed XLSX writer (issue 15): bytes leave before the last rows are read, and what
arrives is a workbook that spreadsheet software reads with its cells typed."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from decimal import Decimal

import openpyxl

from app.exports.columns import Cell, Column, Kind
from app.exports.xlsx import Sheet, column_letter, xlsx_chunks

COLUMNS = [
    Column("户编号", Kind.identifier, 18),
    Column("户主", Kind.text, 8),
    Column("家庭人口", Kind.integer, 6),
    Column("人均纯收入(元)", Kind.money, 12),
    Column("变化率(%)", Kind.percent, 8),
    Column("最近走访", Kind.timestamp, 16),
    Column("发现日期", Kind.date, 12),
]
PAGES, PAGE_ROWS = 6, 2_000


def _row(n: int) -> list[Cell]:
    return [
        f"37152210120{n:05d}",
        f"张建国{n}",
        n % 7 + 1,
        Decimal(f"{n}.05"),
        Decimal("12.5"),
        datetime(2026, 11, 3, 14, 5),
        date(2026, 3, 1),
    ]


async def test_bytes_leave_before_the_last_page_is_read() -> None:
    produced: list[int] = []

    async def pages() -> AsyncIterator[Sequence[Sequence[Cell]]]:
        for page in range(PAGES):
            produced.append(page)
            yield [_row(page * PAGE_ROWS + i) for i in range(PAGE_ROWS)]

    chunks = xlsx_chunks([Sheet("贫困户", COLUMNS, pages())])
    first = await anext(chunks)
    assert first.startswith(b"PK\x03\x04")
    assert len(produced) < PAGES, "the first bytes waited for every page"
    body = first + b"".join([chunk async for chunk in chunks])
    assert len(produced) == PAGES

    book = openpyxl.load_workbook(io.BytesIO(body))
    sheet = book["贫困户"]
    table = list(sheet.iter_rows(values_only=True))
    assert list(table[0]) == [c.header for c in COLUMNS]
    assert len(table) == PAGES * PAGE_ROWS + 1
    number, head, size, income, rate, visited, found = table[1 + 4321]
    assert (number, head, size) == ("3715221012004321", "张建国4321", 4321 % 7 + 1)
    assert (income, rate) == (4321.05, 12.5)
    assert visited == datetime(2026, 11, 3, 14, 5)
    assert found == datetime(2026, 3, 1)
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:G{PAGES * PAGE_ROWS + 1}"
    assert sheet.column_dimensions["A"].width == 18
    assert sheet["A1"].font.b and sheet["D2"].number_format == "0.00"
    assert sheet["F2"].number_format == "yyyy-mm-dd hh:mm"


async def test_text_is_text_whatever_it_holds() -> None:
    texts = ["=1+1", "<b>&amp;</b>", " 前后有空格 ", "控制\x01字符\x1f", "x" * 40_000]

    async def pages() -> AsyncIterator[Sequence[Sequence[Cell]]]:
        yield [[t, None, None, None, None, None, None] for t in texts]

    async def empty() -> AsyncIterator[Sequence[Sequence[Cell]]]:
        return
        yield

    body = b"".join(
        [
            chunk
            async for chunk in xlsx_chunks(
                [Sheet("贫困户", COLUMNS, pages()), Sheet("监测对象", COLUMNS[:2], empty())]
            )
        ]
    )
    assert zipfile.ZipFile(io.BytesIO(body)).testzip() is None
    book = openpyxl.load_workbook(io.BytesIO(body))
    assert book.sheetnames == ["贫困户", "监测对象"]
    shown = [row[0] for row in book["贫困户"].iter_rows(min_row=2, values_only=True)]
    assert shown == ["=1+1", "<b>&amp;</b>", " 前后有空格 ", "控制字符", "x" * 32_767]
    assert book["贫困户"]["A2"].data_type == "s"  # a string, not a formula
    cases = book["监测对象"]
    assert [c.value for c in cases[1]] == ["户编号", "户主"] and cases.max_row == 1


def test_column_letters() -> None:
    assert [column_letter(i) for i in (0, 25, 26, 51, 52, 701, 702)] == [
        "A",
        "Z",
        "AA",
        "AZ",
        "BA",
        "ZZ",
        "AAA",
    ]
