"""Reading the national register's household list (建档立卡, 全国防返贫监测信息系统) from .xlsx.

One row per member; the household's fields are repeated on each member's row or left blank
after its first row (a filled cell must then agree with the first one). The header row is the
first row, among the first ten, holding a 户编号 cell: title rows above it are skipped. Rows are
numbered as in the sheet (Excel's row numbers); blank rows are skipped.

Accepted headers (blanks and full-width/half-width brackets do not matter), by field:

| header | also accepted | field |
|---|---|---|
| 户编号 * | 户编码 | household `number` |
| 行政区划代码 ** | 村代码, 行政村代码, 区划代码, 村级行政区划代码 | `village_code` (12 digits) |
| 行政村 ** | 村, 村名, 行政村名称 | the village by name, in the importer's county |
| 乡镇 | 乡(镇), 乡镇(街道), 乡/镇, 镇(乡) | the town, naming the village by name |
| 自然村/组 | 自然村, 组, 村民小组, 自然村(组) | `group_name` |
| 户主姓名 | | `head_name` (default: the name of the member whose relation is 户主) |
| 联系电话 | 电话, 手机号码, 联系方式 | `phone` |
| 贫困户属性 * | | `attribute` |
| 脱贫状态 | 户类型, 贫困户状态, 户状态 | `status` (default 新识别) |
| 识别标准 | | `identification_standard` (default 国家标准) |
| 首次识别时间 * | 首次识别年度, 识别年度, 识别时间 | `identified_year` (a date or a year) |
| 计划脱贫年度 | 计划脱贫年份 | `planned_exit_year` |
| 脱贫年度 | 脱贫年份, 脱贫时间 | `exit_year` |
| 主要致贫原因 * | 致贫原因 | `main_cause` |
| 次要致贫原因 | 其他致贫原因 | `other_causes` (several, separated by 、 , ; or blanks) |
| 姓名 * | 成员姓名 | member `name` |
| 证件号码 | 身份证号, 身份证号码, 证件号码(身份证号), 公民身份号码 | member `id_number` |
| 与户主关系 * | | member `relation` |
| 健康状况 | | member `health` (default 健康) |
| 劳动技能 | 劳动能力 | member `labour` (default 普通劳动力) |
| 在校生状况 | 是否在校生 | member `in_school`: a stage (小学, 七年级 …) yes, 非在校生 no |
| 参加城乡居民基本医疗保险 | † | member `medical_insurance` (是/否) |

† also 是否参加城乡居民基本医疗保险, 基本医疗保险, 参加基本医疗保险.
`*` required; `**` one of the two required (the code wins when both are given). Other columns
(县, 民族, 文化程度, 务工区域, 务工时间, 家庭人口数 …) have no place in the record: they are
ignored and listed in the report. Coded cells take the national code, the Chinese label or the
English code of `/api/v1/vocabulary` (converted by `app.households.vocabulary`, the one place).
Every household is registered (建档立卡户, origin `registered`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from app.core import tabular
from app.core.i18n import Text
from app.households import id_numbers
from app.households import vocabulary as terms
from app.households.errors import HouseholdFileTooLarge, HouseholdFileUnreadable
from app.households.vocabulary import (
    Attribute,
    Cause,
    Health,
    IdentificationStandard,
    Labour,
    Relation,
    Status,
)

Level = Literal["household", "member"]
HEADER_SEARCH_ROWS = 10


@dataclass(frozen=True)
class Column:
    field: str
    label: str  # the national system's header, used in messages when the file has none
    level: Level
    aliases: tuple[str, ...] = ()


COLUMNS: tuple[Column, ...] = (
    Column("number", "户编号", "household", ("户编码",)),
    Column(
        "village_code",
        "行政区划代码",
        "household",
        ("村代码", "行政村代码", "区划代码", "村级行政区划代码"),
    ),
    Column("village_name", "行政村", "household", ("村", "村名", "行政村名称")),
    Column("town_name", "乡镇", "household", ("乡(镇)", "乡镇(街道)", "乡/镇", "镇(乡)")),
    Column("group_name", "自然村/组", "household", ("自然村", "组", "村民小组", "自然村(组)")),
    Column("head_name", "户主姓名", "household"),
    Column("phone", "联系电话", "household", ("电话", "手机号码", "联系方式")),
    Column("attribute", "贫困户属性", "household"),
    Column("status", "脱贫状态", "household", ("户类型", "贫困户状态", "户状态")),
    Column("identification_standard", "识别标准", "household"),
    Column(
        "identified_year", "首次识别时间", "household", ("首次识别年度", "识别年度", "识别时间")
    ),
    Column("planned_exit_year", "计划脱贫年度", "household", ("计划脱贫年份",)),
    Column("exit_year", "脱贫年度", "household", ("脱贫年份", "脱贫时间")),
    Column("main_cause", "主要致贫原因", "household", ("致贫原因",)),
    Column("other_causes", "次要致贫原因", "household", ("其他致贫原因",)),
    Column("name", "姓名", "member", ("成员姓名",)),
    Column(
        "id_number",
        "证件号码",
        "member",
        ("身份证号", "身份证号码", "证件号码(身份证号)", "公民身份号码"),
    ),
    Column("relation", "与户主关系", "member"),
    Column("health", "健康状况", "member"),
    Column("labour", "劳动技能", "member", ("劳动能力",)),
    Column("in_school", "在校生状况", "member", ("是否在校生",)),
    Column(
        "medical_insurance",
        "参加城乡居民基本医疗保险",
        "member",
        ("是否参加城乡居民基本医疗保险", "基本医疗保险", "参加基本医疗保险"),
    ),
)
BY_FIELD = {c.field: c for c in COLUMNS}
REQUIRED = ("number", "name", "relation", "attribute", "main_cause", "identified_year")
_CODED: dict[str, tuple[type[StrEnum], str]] = {
    "attribute": (Attribute, "贫困户属性"),
    "status": (Status, "脱贫状态"),
    "identification_standard": (IdentificationStandard, "识别标准"),
    "main_cause": (Cause, "致贫原因"),
    "relation": (Relation, "与户主关系"),
    "health": (Health, "健康状况"),
    "labour": (Labour, "劳动技能"),
}
_NUMBER = re.compile(r"[0-9A-Za-z-]{4,32}")
_YEAR = re.compile(r"([0-9]{4})(?:$|[-/.年])")
_SEPARATORS = re.compile(r"[、,，;；/\s]+")
_ID_MESSAGES = {
    "format": "证件号码应为18位：17位数字加1位数字或X（15位旧号码会自动升位）",
    "birth_date": "证件号码中的出生日期不是有效日期",
    "check_char": "证件号码校验位错误（GB 11643）",
}


def header_key(text: str) -> str:
    """A header as compared: no blanks, half-width brackets and slashes."""
    return "".join(text.split()).replace("（", "(").replace("）", ")").replace("／", "/")


_ALIASES = {header_key(a): c for c in COLUMNS for a in (c.label, *c.aliases)}


@dataclass(frozen=True, slots=True)
class CellError:
    field: str
    column: str
    code: str
    message: str


@dataclass
class ImportRow:
    """One member's row: the household's and the member's cells, converted where valid."""

    row: int
    household: dict[str, Any] = field(default_factory=dict)
    member: dict[str, Any] = field(default_factory=dict)
    errors: list[CellError] = field(default_factory=list)
    id_text: str | None = None  # the ID number as written, valid or not (shown masked)

    @property
    def number(self) -> str | None:
        value = self.household.get("number")
        return value if isinstance(value, str) else None


@dataclass
class HouseholdFile:
    """What was read: the header (header as written → field), the ignored headers and rows."""

    headers: dict[str, str]
    ignored: list[str]
    rows: list[ImportRow]

    def header_of(self, field: str) -> str:
        """The column's header as the file writes it (or the national one when it has none)."""
        for header, name in self.headers.items():
            if name == field:
                return header
        return BY_FIELD[field].label


def read_household_file(
    data: bytes, *, filename: str | None, max_bytes: int, max_rows: int
) -> HouseholdFile:
    """Read the first sheet of an .xlsx file (`HouseholdFileUnreadable`, `HouseholdFileTooLarge`
    when it cannot be)."""
    if len(data) > max_bytes:
        raise HouseholdFileTooLarge(
            "bytes",
            Text(
                "the file has more than {max_bytes} bytes "
                "(FIELDSYNC_HOUSEHOLD_IMPORT_MAX_BYTES): split it",
                max_bytes=max_bytes,
            ),
            f"文件超过{max_bytes}字节：请按乡镇拆分后分批导入",
            limit_bytes=max_bytes,
        )
    try:
        _, rows = tabular.read_table(
            data, filename=filename, max_bytes=max_bytes, csv_allowed=False
        )
        return _read(rows, max_rows=max_rows)
    except tabular.UnreadableTable as exc:
        if exc.reason == "too_large":
            raise HouseholdFileTooLarge(
                "inflated", exc.detail, _UNREADABLE[exc.reason], limit_bytes=max_bytes
            ) from None
        raise HouseholdFileUnreadable(exc.reason, exc.detail, _UNREADABLE[exc.reason]) from None


_UNREADABLE = {
    "not_xlsx": "文件不是 .xlsx 工作簿：请在 Excel 或 WPS 中另存为 .xlsx 后再导入",
    "bad_xlsx": "文件已损坏或不是 .xlsx 工作簿，无法读取",
    "too_large": "工作簿解压后过大：请按乡镇拆分后分批导入",
}


def _read(rows: Iterator[list[Any]], *, max_rows: int) -> HouseholdFile:
    columns: dict[int, str] | None = None
    headers: dict[str, str] = {}
    ignored: list[str] = []
    out: list[ImportRow] = []
    searched = 0
    for number, values in enumerate(rows, start=1):
        if all(tabular.blank(v) for v in values):
            continue
        if columns is None:
            searched += 1
            found = _header(values)
            if found is None:
                if searched >= HEADER_SEARCH_ROWS:
                    break
                continue
            columns, headers, ignored = found
            continue
        if len(out) >= max_rows:
            raise HouseholdFileTooLarge(
                "rows",
                Text(
                    "the sheet has more than {max_rows} data rows "
                    "(FIELDSYNC_HOUSEHOLD_IMPORT_MAX_ROWS): split it",
                    max_rows=max_rows,
                ),
                f"数据行超过{max_rows}行：请按乡镇拆分后分批导入",
                limit_rows=max_rows,
            )
        cells = {name: values[i] for i, name in columns.items() if i < len(values)}
        out.append(_row(number, cells, headers={v: k for k, v in headers.items()}))
    if columns is None:
        raise HouseholdFileUnreadable(
            "no_header",
            Text("no header row with a 户编号 column among the first rows of the first sheet"),
            "第一个工作表的前几行中没有含“户编号”的表头行",
        )
    missing = [f for f in REQUIRED if f not in headers.values()]
    if "village_code" not in headers.values() and "village_name" not in headers.values():
        missing.append("village_code")
    if missing:
        labels = [BY_FIELD[f].label for f in missing]
        raise HouseholdFileUnreadable(
            "missing_columns",
            Text("the header row lacks the column(s) {columns}", columns=", ".join(labels)),
            f"表头缺少以下列：{'、'.join(labels)}（行政区划代码也可用行政村名称代替）",
            missing_columns=labels,
        )
    return HouseholdFile(headers=headers, ignored=ignored, rows=out)


def _header(values: list[Any]) -> tuple[dict[int, str], dict[str, str], list[str]] | None:
    """Column index → field, header → field and the ignored headers; None without 户编号."""
    columns: dict[int, str] = {}
    headers: dict[str, str] = {}
    ignored: list[str] = []
    for index, value in enumerate(values):
        written = tabular.text(value)
        if written is None:
            continue
        column = _ALIASES.get(header_key(written))
        if column is None or column.field in columns.values():
            ignored.append(written)
            continue
        columns[index] = column.field
        headers[written] = column.field
    if "number" not in columns.values():
        return None
    return columns, headers, ignored


# --- one row -------------------------------------------------------------------------------


def _row(number: int, cells: dict[str, Any], *, headers: dict[str, str]) -> ImportRow:
    row = ImportRow(number)

    def reject(name: str, code: str, message: str) -> None:
        row.errors.append(CellError(name, headers.get(name, BY_FIELD[name].label), code, message))

    for name, value in cells.items():
        if tabular.blank(value):
            continue
        if name == "id_number" and not isinstance(value, float):
            row.id_text = tabular.text(value)
        try:
            converted = _convert(name, value)
        except _Refused as exc:
            reject(name, exc.code, exc.message)
            continue
        target = row.household if BY_FIELD[name].level == "household" else row.member
        target[name] = converted
    if "number" not in row.household and not any(e.field == "number" for e in row.errors):
        reject("number", "required", "户编号不能为空")
    if "name" not in row.member:
        reject("name", "required", "姓名不能为空")
    if "relation" not in row.member:
        reject("relation", "required", "与户主关系不能为空")
    return row


class _Refused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _convert(name: str, value: Any) -> Any:
    if name in _CODED:
        enum, what = _CODED[name]
        return _term(enum, what, value)
    if name == "other_causes":
        parts = [p for p in _SEPARATORS.split(str(value).strip()) if p]
        return [_term(Cause, "致贫原因", p) for p in parts]
    if name in ("identified_year", "planned_exit_year", "exit_year"):
        return _year(value)
    if name == "id_number":
        return _id_number(value)
    if name == "in_school":
        return _flag(
            terms.parse_in_school, value, "在校生状况应为非在校生或在读学段（如小学、七年级）"
        )
    if name == "medical_insurance":
        return _flag(terms.parse_flag, value, "应填“是”或“否”")
    if name == "number":
        text = _identifier(value, "户编号")
        if not _NUMBER.fullmatch(text):
            raise _Refused("invalid_number", "户编号应为4至32位数字或字母")
        return text
    if name in ("village_code", "phone"):
        return _identifier(value, BY_FIELD[name].label)
    return tabular.text(value)


def _identifier(value: Any, what: str) -> str:
    try:
        text = tabular.identifier(value)
    except tabular.LostDigits:
        raise _Refused(
            "lost_digits", f"{what}被存为数字，已丢失位数：请把该列设为文本格式后重新导出"
        ) from None
    assert text is not None  # blank cells are skipped before
    return text


def _term(enum: type[StrEnum], what: str, value: Any) -> StrEnum:
    text = str(value).strip()
    found = terms.parse_term(enum, text)
    if found is None:
        raise _Refused(
            "unknown_code",
            f"“{text[:20]}”不是已知的{what}：可填 {terms.term_labels(enum)}（或其国家代码）",
        )
    return found


def _year(value: Any) -> int:
    if isinstance(value, datetime | date):
        return value.year
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    match = _YEAR.match(str(value).strip())
    if match is None:
        raise _Refused(
            "invalid_year", f"“{str(value)[:20]}”不是年份或日期（如 2016 或 2016-03-01）"
        )
    return int(match.group(1))


def _id_number(value: Any) -> str:
    text = _identifier(value, "证件号码")
    try:
        return id_numbers.normalize(text)
    except id_numbers.InvalidIdNumber as exc:
        raise _Refused("invalid_id_number", _ID_MESSAGES[exc.code]) from None


def _flag(parse: Any, value: Any, message: str) -> bool:
    found = parse(str(value).strip())
    if found is None:
        raise _Refused("unknown_code", message)
    return bool(found)
