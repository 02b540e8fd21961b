"""Importing households from the national register's .xlsx: check every row, write all or none.

Each household (the rows of one 户编号) is checked by the rules of `POST /api/v1/households`
themselves: its body is a `HouseholdCreate` (codes, years, causes, phone, one head at most) and
the service's own checks run on it (the village exists and is the importer's, ID numbers are
not registered to a current member elsewhere). The import adds what a file needs: household
cells that agree between the rows of a household, exactly one head (与户主关系 01/户主), a
户主姓名 that is the head's name, an ID number in one row of the file only, and villages named
by name. Households are then written through `service.create_household`, so the change log,
sync feed and region figures follow as for households created one by one.

An 户编号 already registered to a household of the importer's county is reported `exists` and
left as it is: the national file is a snapshot that may be older than the edits made since in
the app and on the phones (status changes with their exit-rule checks, members added or
removed with a reason), and overwriting them from it would silently lose those edits. A
re-import of the same file therefore changes nothing. An 户编号 registered in another county
is an error (creating it would be refused, as by `POST /api/v1/households`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal
from app.core.errors import AppError
from app.core.i18n import Text
from app.households import id_numbers, service
from app.households.errors import HouseholdImportInvalid, IdNumberRegistered
from app.households.import_file import BY_FIELD, CellError, HouseholdFile, ImportRow
from app.households.import_schemas import (
    HouseholdImportReport,
    ImportRowError,
    ImportRowReport,
    ImportTotals,
    Outcome,
)
from app.households.models import Household
from app.households.schemas import REGISTER_FIELDS, HouseholdCreate
from app.households.vocabulary import Relation
from app.regions import codes
from app.regions.models import Region

_MEMBER_FIELDS = (
    "name",
    "id_number",
    "relation",
    "health",
    "labour",
    "in_school",
    "medical_insurance",
)
_HOUSEHOLD_FIELDS = ("number", "group_name", "head_name", "phone", *REGISTER_FIELDS)
# A placeholder village where none could be found, so that the body's other rules still run.
_NO_VILLAGE = "000000000000"


@dataclass
class _Household:
    number: str
    rows: list[ImportRow]
    fields: dict[str, Any] = field(default_factory=dict)
    field_rows: dict[str, ImportRow] = field(default_factory=dict)
    village_code: str | None = None
    data: HouseholdCreate | None = None
    existing_id: uuid.UUID | None = None
    created_id: uuid.UUID | None = None

    @property
    def failed(self) -> bool:
        return any(row.errors for row in self.rows)


async def import_households(
    session: AsyncSession, *, principal: Principal, file: HouseholdFile, dry_run: bool
) -> HouseholdImportReport:
    """Check every row of the file; unless `dry_run`, create its new households (all or none:
    HouseholdImportInvalid, with the report, when any row has an error)."""
    households = _group(file)
    villages = await _Villages.load(session, principal=principal)
    existing = await _existing(session, [h.number for h in households])
    seen: dict[str, ImportRow] = {}  # ID number → the first row holding it
    for household in households:
        await _check(session, principal, file, household, villages, existing, seen)
    failed = any(row.errors for row in file.rows)
    if not dry_run and not failed:
        for household in households:
            if household.existing_id is None and household.data is not None:
                record = await service.create_household(
                    session, principal=principal, data=household.data
                )
                household.created_id = record.household.id
    report = _report(
        file, households, principal, dry_run=dry_run, applied=not dry_run and not failed
    )
    if not dry_run and failed:
        raise HouseholdImportInvalid(
            Text(
                "{count} row(s) have errors: nothing was imported",
                count=report.totals.error_rows,
            ),
            report=report.model_dump(mode="json"),
        )
    return report


def _group(file: HouseholdFile) -> list[_Household]:
    """The households by 户编号, in the order of their first row; their cells merged."""
    by_number: dict[str, _Household] = {}
    for row in file.rows:
        if row.number is not None:
            by_number.setdefault(row.number, _Household(row.number, [])).rows.append(row)
    for household in by_number.values():
        for row in household.rows:
            for name, value in row.household.items():
                first = household.field_rows.get(name)
                if first is None:
                    household.fields[name] = value
                    household.field_rows[name] = row
                elif household.fields[name] != value:
                    header = file.header_of(name)
                    row.errors.append(
                        CellError(
                            name,
                            header,
                            "inconsistent",
                            f"{header}与本户第{first.row}行不一致：同一户的各行应相同（或留空）",
                        )
                    )
    return list(by_number.values())


async def _existing(session: AsyncSession, numbers: list[str]) -> dict[str, tuple[uuid.UUID, str]]:
    """Registered households among the numbers: number → (id, village)."""
    found: dict[str, tuple[uuid.UUID, str]] = {}
    for start in range(0, len(numbers), 500):
        rows = await session.execute(
            select(col(Household.number), col(Household.id), col(Household.village_code)).where(
                col(Household.number).in_(numbers[start : start + 500])
            )
        )
        found.update({number: (id_, village) for number, id_, village in rows})
    return found


@dataclass
class _Villages:
    """The villages of the importer's regions by name (a national file names them so)."""

    by_name: dict[str, list[tuple[str, str]]]  # village name → [(code, town name)]

    @classmethod
    async def load(cls, session: AsyncSession, *, principal: Principal) -> _Villages:
        rows = (
            await session.scalars(
                select(Region).where(
                    principal.within(col(Region.code)),
                    col(Region.level).in_([codes.Level.town, codes.Level.village]),
                )
            )
        ).all()
        towns = {r.code: r.name for r in rows if r.level == codes.Level.town}
        by_name: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for region in rows:
            if region.level == codes.Level.village:
                town = towns.get(region.parent_code or "", "")
                by_name[_name_key(region.name)].append((region.code, town))
        return cls(dict(by_name))

    def find(self, village: str, town: str | None) -> tuple[str | None, str, str]:
        """(code, None and an error code, message) for a village named in the file."""
        found = self.by_name.get(_name_key(village), [])
        if town is not None:
            found = [(c, t) for c, t in found if _name_key(t) == _name_key(town)]
        if len(found) == 1:
            return found[0][0], "", ""
        where = f"{town}" if town else "您管辖的县"
        if not found:
            return None, "unknown_village", f"{where}没有名为“{village}”的行政村"
        return (
            None,
            "ambiguous_village",
            f"{where}有{len(found)}个名为“{village}”的行政村：请填写乡镇或行政区划代码",
        )


def _name_key(name: str) -> str:
    return "".join(name.split())


async def _check(
    session: AsyncSession,
    principal: Principal,
    file: HouseholdFile,
    household: _Household,
    villages: _Villages,
    existing: dict[str, tuple[uuid.UUID, str]],
    seen: dict[str, ImportRow],
) -> None:
    first = household.rows[0]

    def reject(row: ImportRow, name: str, code: str, message: str) -> None:
        row.errors.append(CellError(name, file.header_of(name), code, message))

    await _find_village(session, principal, household, villages, reject)
    heads = [r for r in household.rows if r.member.get("relation") is Relation.head]
    if not heads and not any(e.field == "relation" for r in household.rows for e in r.errors):
        for row in household.rows:
            reject(row, "relation", "no_head", "本户没有户主：应有一人的与户主关系为01/户主")
    for row in heads[1:] if len(heads) > 1 else []:
        reject(
            row, "relation", "several_heads", f"本户已有户主（第{heads[0].row}行）：只能有一位户主"
        )
    head_name = household.fields.get("head_name")
    if heads and head_name is not None and heads[0].member.get("name") != head_name:
        reject(
            household.field_rows["head_name"],
            "head_name",
            "head_name_mismatch",
            f"户主姓名“{head_name}”与户主本人（第{heads[0].row}行）的姓名不一致",
        )
    _validate(file, household, heads[0] if heads else None)
    found = existing.get(household.number)
    if found is not None:
        if principal.covers(found[1]):
            household.existing_id = found[0]
        else:
            reject(first, "number", "household_number_taken", "该户编号已由其他县登记")
    _check_file_duplicates(household, seen, reject)
    if found is None:
        await _check_registered(session, household, reject)


async def _find_village(
    session: AsyncSession,
    principal: Principal,
    household: _Household,
    villages: _Villages,
    reject: Any,
) -> None:
    code = household.fields.get("village_code")
    if code is not None:
        try:
            await service.check_village(session, principal=principal, village_code=code)
        except AppError as exc:
            kind = exc.errors[0].type if exc.errors else "unknown_village"
            message = (
                f"行政区划代码{code}不在您管辖的县内"
                if kind == "outside_region"
                else f"行政区划代码{code}不是已知的行政村"
            )
            reject(household.field_rows["village_code"], "village_code", kind, message)
            return
        household.village_code = code
        return
    name = household.fields.get("village_name")
    if name is None:
        reject(household.rows[0], "village_code", "required", "行政区划代码或行政村不能为空")
        return
    code, kind, message = villages.find(name, household.fields.get("town_name"))
    if code is None:
        reject(household.field_rows["village_name"], "village_name", kind, message)
    household.village_code = code


def _validate(file: HouseholdFile, household: _Household, head: ImportRow | None) -> None:
    """The rules of POST /api/v1/households on the household's body."""
    fields = household.fields
    body: dict[str, Any] = {name: fields[name] for name in _HOUSEHOLD_FIELDS if name in fields}
    body["village_code"] = household.village_code or _NO_VILLAGE
    if "head_name" not in body:
        body["head_name"] = (head.member.get("name") if head else None) or "-"
    body["members"] = [
        {name: row.member[name] for name in _MEMBER_FIELDS if name in row.member}
        for row in household.rows
    ]
    try:
        household.data = HouseholdCreate.model_validate(body)
    except ValidationError as exc:
        for error in exc.errors():
            _place(file, household, error)


def _place(file: HouseholdFile, household: _Household, error: Any) -> None:
    """A validation error of the body, put on the row and column it comes from."""
    loc = error["loc"]
    if loc[0] == "members" and len(loc) >= 3:
        row, name = household.rows[int(loc[1])], str(loc[2])
    elif loc[0] == "members":
        # Several heads are reported on their rows already; too many members on the first.
        if error["type"] == "value_error":
            return
        row, name = household.rows[0], "name"
    else:
        name = str(loc[0])
        row = household.field_rows.get(name, household.rows[0])
    level = BY_FIELD[name].level if name in BY_FIELD else None
    rows = household.rows if level == "household" else [row]
    if level is None or any(e.field == name for r in rows for e in r.errors):
        return  # the cell's own error says it already
    header = file.header_of(name)
    row.errors.append(CellError(name, header, *_message(error, name, header)))


def _message(error: Any, name: str, header: str) -> tuple[str, str]:
    kind = error["type"]
    if kind == "missing":
        return "required", f"{header}不能为空"
    if kind in ("too_long", "string_too_long"):
        if name == "name" and error["loc"] == ("members",):
            return "invalid_value", "一户最多30名成员"
        return "invalid_value", f"{header}太长"
    if kind in ("greater_than_equal", "less_than_equal"):
        return "invalid_value", f"{header}应在1980至2100年之间"
    if kind == "value_error":
        if name == "phone":
            return "invalid_value", "联系电话格式不正确：应为数字，可带+、空格或横线"
        if name == "other_causes":
            return "invalid_value", "次要致贫原因重复，或与主要致贫原因相同"
        if name in ("planned_exit_year", "exit_year"):
            return "invalid_value", f"{header}早于首次识别年度"
    return "invalid_value", f"{header}的取值不符合要求（{error['msg']}）"


def _check_file_duplicates(household: _Household, seen: dict[str, ImportRow], reject: Any) -> None:
    for row in household.rows:
        number = row.member.get("id_number")
        if number is None:
            continue
        first = seen.setdefault(number, row)
        if first is not row:
            reject(row, "id_number", "duplicate_id_number", f"证件号码与第{first.row}行重复")


async def _check_registered(session: AsyncSession, household: _Household, reject: Any) -> None:
    """The service's check that no ID number belongs to a current member elsewhere."""
    given = [
        (str(i), r.member.get("id_number"))
        for i, r in enumerate(household.rows)
        if not any(e.field == "id_number" for e in r.errors)
    ]
    try:
        await service.check_id_numbers(session, given)
    except AppError as exc:
        for error in exc.errors or []:
            row = household.rows[int(error.field)]
            if isinstance(exc, IdNumberRegistered):
                reject(
                    row,
                    "id_number",
                    "id_number_registered",
                    "该证件号码已登记为其他户的现有成员：一人只能属于一户，请先从原户移出",
                )
            else:
                reject(row, "id_number", "duplicate_id_number", "证件号码在本户中重复")


# --- the report ----------------------------------------------------------------------------


def _mask(number: str) -> str:
    """As the API masks ID numbers; text too short to keep both ends is all stars."""
    return id_numbers.mask(number) if len(number) >= 15 else "*" * len(number)


def _report(
    file: HouseholdFile,
    households: list[_Household],
    principal: Principal,
    *,
    dry_run: bool,
    applied: bool,
) -> HouseholdImportReport:
    of_row: dict[int, _Household] = {r.row: h for h in households for r in h.rows}
    rows = []
    for row in file.rows:
        household = of_row.get(row.row)
        outcome: Outcome
        if household is None or household.failed:
            outcome = "error"
        elif household.existing_id is not None:
            outcome = "exists"
        else:
            outcome = "create"
        village = household.village_code if household else None
        reveal = village is not None and principal.may_see_pii(village)
        number = row.member.get("id_number") or row.id_text
        rows.append(
            ImportRowReport(
                row=row.row,
                number=row.number,
                name=row.member.get("name"),
                id_number=(number if reveal else _mask(number)) if number else None,
                outcome=outcome,
                household_id=(household.created_id or household.existing_id) if household else None,
                errors=[
                    ImportRowError(column=e.column, code=e.code, message=e.message)
                    for e in row.errors
                ],
            )
        )
    good = [h for h in households if not h.failed]
    to_create = [h for h in good if h.existing_id is None]
    return HouseholdImportReport(
        dry_run=dry_run,
        applied=applied,
        totals=ImportTotals(
            rows=len(file.rows),
            households=len(households),
            members=sum(len(h.rows) for h in to_create),
            create=len(to_create),
            exists=len(good) - len(to_create),
            error_households=len(households) - len(good),
            error_rows=sum(1 for r in file.rows if r.errors),
        ),
        columns=file.headers,
        ignored_columns=file.ignored,
        rows=rows,
    )
