"""Dirty data for the quality checks: for every kind, records that trigger it and near misses
that must not, written straight to the database (as an import from the old system would)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.base import utcnow
from app.core.config import get_settings
from app.households import id_numbers
from app.households.models import Household, Member
from app.monitoring.models import MonitoringAlert
from app.quality import geo
from app.records.models import IncomeSnapshot, Visit
from app.records.schemas import COMPONENTS
from app.users.models import User
from tests.builders import COUNTY_A, VILLAGE_A3, VILLAGE_B1, World, make_household, make_id_number

NEAR = (36.2356, 115.6718)  # 王庄村, roughly
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@dataclass
class Dirt:
    """Ids of the records made, by kind: `hits` must be reported, `misses` must not."""

    hits: dict[str, dict[str, uuid.UUID]] = field(default_factory=dict)
    misses: dict[str, dict[str, uuid.UUID]] = field(default_factory=dict)
    numbers: list[str] = field(default_factory=list)  # every full ID number written

    def hit(self, kind: str, name: str, record_id: uuid.UUID) -> None:
        self.hits.setdefault(kind, {})[name] = record_id

    def miss(self, kind: str, name: str, record_id: uuid.UUID) -> None:
        self.misses.setdefault(kind, {})[name] = record_id


class Maker:
    def __init__(self, session: AsyncSession, author: User, dirt: Dirt) -> None:
        self.session = session
        self.author = author
        self.dirt = dirt
        self.seq = 500

    def number(self) -> str:
        """A valid ID number nobody else holds."""
        self.seq += 1
        return make_id_number(self.seq)

    async def household(self, *, village: str = VILLAGE_A3, **fields: Any) -> Household:
        # Not 因病 unless asked: a household of healthy members would contradict it.
        fields.setdefault("main_cause", "lack_capital")
        return await make_household(self.session, village=village, **fields)

    async def member(
        self,
        household: Household,
        name: str = "成员",
        *,
        id_number: str | None = None,
        removed: bool = False,
        **fields: Any,
    ) -> Member:
        if id_number and id_number.strip():
            self.dirt.numbers.append(id_number)
        member = Member(
            household_id=household.id,
            name=name,
            id_number=id_number,
            id_number_hash=(
                id_numbers.search_hash(id_number, key=get_settings().pii_hash_key)
                if id_number
                else None
            ),
            relation=fields.pop("relation", "child"),
            removed_at=utcnow() if removed else None,
            **fields,
        )
        self.session.add(member)  # ids are made client-side: one flush at the end will do
        return member

    def _record(self, household: Household) -> dict[str, Any]:
        return {
            "id": uuid.uuid4(),
            "household_id": household.id,
            "revision": 1,
            "content_hash": "0" * 64,
            "author_id": self.author.id,
            "updated_by": self.author.id,
        }

    async def visit(
        self,
        household: Household,
        *,
        at: tuple[float, float] | None = None,
        crs: str = "wgs84",
        photos: int = 1,
        mode: str = "in_home",
        visited_at: datetime | None = None,
    ) -> Visit:
        visit = Visit(
            **self._record(household),
            visited_at=visited_at or utcnow() - timedelta(days=2),
            mode=mode,
            lat=at[0] if at else None,
            lon=at[1] if at else None,
            crs=crs if at else None,
            photos=[{"sha256": SHA, "tag": "evidence"}] * photos,
        )
        self.session.add(visit)
        return visit

    async def snapshot(
        self,
        household: Household,
        *,
        size: int = 2,
        year: int = 2024,
        recorded_at: datetime | None = None,
        **amounts: int,
    ) -> IncomeSnapshot:
        """A snapshot whose totals the server would compute from `amounts` (fen), unless a total
        is given explicitly."""
        values = {name: amounts.pop(name, 0) for name in COMPONENTS}
        transfers = sum(v for k, v in values.items() if k.startswith("transfer_"))
        prop = values["property_dividend"] + values["property_other"]
        net = (
            values["wage_income"]
            + values["business_income"]
            + prop
            + transfers
            - values["business_expenses"]
        )
        totals = {
            "property_income": prop,
            "transfer_income": transfers,
            "net_income": net,
            "per_capita_income": round(net / size),
        } | amounts
        snapshot = IncomeSnapshot(
            **self._record(household),
            year=year,
            kind="annual",
            household_size=size,
            recorded_at=recorded_at or datetime(year, 12, 10, 7, tzinfo=UTC),
            **values,
            **totals,
        )
        self.session.add(snapshot)
        return snapshot


def offset(km_north: float, km_east: float = 0.0) -> tuple[float, float]:
    """A point this far from NEAR."""
    lat = NEAR[0] + km_north / 111.2
    lon = NEAR[1] + km_east / (111.2 * 0.8066)  # cos(36.2°)
    return lat, lon


async def make_dirt(session: AsyncSession, world: World) -> Dirt:
    """Village A3 (no household of the world lives there) gets one hit and one miss per rule."""
    dirt = Dirt()
    m = Maker(session, world.users["officer_a1"], dirt)

    # id_number_missing
    h = await m.household(head_name="缺号户")
    await m.member(h, "缺号户", id_number=m.number(), relation="head", health="chronic")
    dirt.hit("id_number_missing", "none", (await m.member(h, "无号")).id)
    dirt.hit("id_number_missing", "blank", (await m.member(h, "空号", id_number=" ")).id)
    dirt.miss("id_number_missing", "valid", (await m.member(h, "有号", id_number=m.number())).id)
    dirt.miss("id_number_missing", "removed", (await m.member(h, "迁出", removed=True)).id)
    cancelled = await m.household(head_name="清退户", status="removed")  # 注销/清退: not checked
    dirt.miss("id_number_missing", "household_removed", (await m.member(cancelled, "清退")).id)

    # id_number_invalid: one per reason
    h = await m.household(head_name="错号户")
    await m.member(h, "错号户", id_number=m.number(), relation="head", health="chronic")
    good = m.number()
    wrong_check = good[:17] + ("0" if good[17] != "0" else "1")
    feb30 = make_id_number(305, "19800230")
    future = make_id_number(306, f"{utcnow().year + 1}0101")
    old15 = "371522800101307"  # a valid 15-digit number of 1980-01-01
    for reason, number in [
        ("check_character", wrong_check),
        ("birth_date_not_a_date", feb30),
        ("birth_date_implausible", future),
        ("format", good[:17]),
        ("not_normalized", old15),
    ]:
        dirt.hit("id_number_invalid", reason, (await m.member(h, reason, id_number=number)).id)
    dirt.miss("id_number_invalid", "valid", (await m.member(h, "对号", id_number=good)).id)
    dirt.miss(
        "id_number_invalid",
        "removed",
        (await m.member(h, "旧号", id_number=wrong_check[:-1] + "5", removed=True)).id,
    )

    # id_number_duplicate: two households of A3; A3 and county B; a removed holder
    shared, across, once_shared = m.number(), m.number(), m.number()
    h1 = await m.household(head_name="重号一")
    h2 = await m.household(head_name="重号二")
    hb = await m.household(village=VILLAGE_B1, head_name="外县户")
    for h in (h1, h2):
        await m.member(h, h.head_name, relation="head", id_number=m.number())
    dirt.hit("id_number_duplicate", "first", (await m.member(h1, "甲", id_number=shared)).id)
    dirt.hit("id_number_duplicate", "second", (await m.member(h2, "乙", id_number=shared)).id)
    dirt.hit("id_number_duplicate", "across", (await m.member(h1, "丙", id_number=across)).id)
    await m.member(hb, "外县丙", id_number=across)
    dirt.miss("id_number_duplicate", "once", (await m.member(h2, "丁", id_number=once_shared)).id)
    await m.member(h1, "丁(已迁出)", id_number=once_shared, removed=True)

    # head_not_member
    no_head = await m.household(head_name="无户主")
    await m.member(no_head, "配偶", relation="spouse", id_number=m.number(), health="serious")
    renamed = await m.household(head_name="旧户主")
    await m.member(renamed, "新户主", relation="head", id_number=m.number(), health="serious")
    gone = await m.household(head_name="已故户主")
    await m.member(gone, "已故户主", relation="head", id_number=m.number(), removed=True)
    await m.member(gone, "子", id_number=m.number(), health="serious")
    fine = await m.household(head_name="好户主")
    await m.member(fine, "好户主", relation="head", id_number=m.number(), health="serious")
    dirt.hit("head_not_member", "no_head", no_head.id)
    dirt.hit("head_not_member", "renamed", renamed.id)
    dirt.hit("head_not_member", "head_removed", gone.id)
    dirt.miss("head_not_member", "fine", fine.id)

    # size_mismatch: the latest snapshot counts
    wrong_now = await m.household(head_name="人数不符")
    right_now = await m.household(head_name="人数相符")
    for h in (wrong_now, right_now):
        await m.member(h, h.head_name, relation="head", id_number=m.number(), health="chronic")
        await m.member(h, "配偶", relation="spouse", id_number=m.number())
    await m.snapshot(wrong_now, size=2, year=2023, wage_income=1_000_000)
    await m.snapshot(wrong_now, size=3, year=2024, wage_income=1_000_000)
    await m.snapshot(right_now, size=3, year=2023, wage_income=1_000_000)
    await m.snapshot(right_now, size=2, year=2024, wage_income=1_000_000)
    dirt.hit("size_mismatch", "latest_differs", wrong_now.id)
    dirt.miss("size_mismatch", "latest_agrees", right_now.id)
    dirt.miss("size_mismatch", "no_snapshot", fine.id)

    # cause_contradicts_members
    async def causes(name: str, main: str, other: list[str], **member: Any) -> Household:
        h = await m.household(head_name=name, main_cause=main, other_causes=other)
        await m.member(h, name, relation="head", id_number=m.number(), **member)
        return h

    dirt.hit("cause_contradicts_members", "illness", (await causes("病而无病", "illness", [])).id)
    dirt.miss(
        "cause_contradicts_members",
        "illness",
        (await causes("病", "illness", [], health="chronic")).id,
    )
    dirt.hit(
        "cause_contradicts_members",
        "disability",
        (await causes("残而无残", "disability", [], health="serious")).id,
    )
    dirt.miss(
        "cause_contradicts_members",
        "disability",
        (await causes("残", "disability", [], health="disabled")).id,
    )
    dirt.hit(
        "cause_contradicts_members",
        "schooling",
        (await causes("学而无学", "lack_land", ["schooling"])).id,
    )
    dirt.miss(
        "cause_contradicts_members",
        "schooling",
        (await causes("学", "lack_land", ["schooling"], in_school=True)).id,
    )

    # cause_repeated
    dirt.hit(
        "cause_repeated",
        "repeated",
        (await causes("重复", "lack_land", ["lack_water", "lack_land"])).id,
    )
    dirt.miss(
        "cause_repeated", "distinct", (await causes("不重复", "lack_land", ["lack_water"])).id
    )
    # "_" must not act as a LIKE wildcard: lackXland is not lack_land
    dirt.miss("cause_repeated", "wildcard", (await causes("通配", "lack_land", ["lackXland"])).id)

    # income_implausible
    income = await m.household(head_name="收入户")
    await m.member(income, "收入户", relation="head", id_number=m.number(), health="chronic")
    await m.member(income, "配偶", relation="spouse", id_number=m.number())
    snap = m.snapshot
    dirt.hit(
        "income_implausible",
        "negative_net_income",
        (await snap(income, year=2019, business_income=100_000, business_expenses=500_000)).id,
    )
    dirt.hit(
        "income_implausible",
        "per_capita_above_bound",
        (await snap(income, year=2020, wage_income=50_000_000)).id,
    )
    dirt.hit(
        "income_implausible",
        "negative_component",
        (await snap(income, year=2021, transfer_other=-100, wage_income=10_000)).id,
    )
    dirt.hit(
        "income_implausible",
        "totals_mismatch",
        (await snap(income, year=2022, property_dividend=60_000, property_income=50_000)).id,
    )
    dirt.miss(
        "income_implausible",
        "plausible",
        (
            await snap(
                income,
                year=2024,
                wage_income=1_200_000,
                business_income=350_050,
                business_expenses=80_000,
            )
        ).id,
    )
    dirt.miss(
        "income_implausible",
        "at_bound",
        (await snap(income, year=2023, size=1, wage_income=20_000_000)).id,
    )

    # visit_without_photo
    dirt.hit("visit_without_photo", "in_home", (await m.visit(fine, photos=0)).id)
    dirt.miss("visit_without_photo", "with_photo", (await m.visit(fine, photos=1)).id)
    dirt.miss("visit_without_photo", "phone", (await m.visit(fine, photos=0, mode="phone")).id)

    # deceased_member_listed: a department reported a death, the member is still listed
    async def reported(member: Member, household: Household, kind: str = "death", **f: Any) -> None:
        assert member.id_number is not None
        session.add(
            MonitoringAlert(
                county_code=COUNTY_A,
                department="public_security",
                id_number_hash=id_numbers.search_hash(
                    member.id_number, key=get_settings().pii_hash_key
                ),
                kind=kind,
                occurred_on=date(2026, 2, 1),
                household_id=household.id,
                member_id=member.id,
                village_code=household.village_code,
                imported_by=m.author.id,
                **f,
            )
        )
        await session.flush()

    h = await m.household(head_name="死亡户")
    await m.member(h, "死亡户", id_number=m.number(), relation="head", health="chronic")
    for name, kind, removed, fields in [
        ("open", "death", False, {}),
        ("verified_case", "death", False, {"status": "verified", "outcome": "data_corrected"}),
        ("removed", "death", True, {}),
        ("no_risk", "death", False, {"status": "verified", "outcome": "no_risk"}),
        ("other_kind", "large_medical_expense", False, {}),
    ]:
        member = await m.member(h, name, id_number=m.number(), removed=removed)
        await reported(member, h, kind, **fields)
        hit = name in ("open", "verified_case")
        (dirt.hit if hit else dirt.miss)("deceased_member_listed", name, member.id)
    # An ordinary household (一般农户) has no status: it is checked all the same.
    ordinary = await m.household(head_name="普通户", origin="ordinary")
    member = await m.member(ordinary, "普通户", id_number=m.number(), relation="head")
    await reported(member, ordinary)
    dirt.hit("deceased_member_listed", "ordinary_household", member.id)

    # visit_far_from_village: three visits around NEAR, one 12 km away, one by phone from town
    # (ignored either way).
    await m.visit(fine, at=offset(0.2, 0.1))
    await m.visit(fine, at=offset(-0.3))
    await m.visit(fine, at=offset(0.1, -0.4))
    # 4.7 km east in WGS-84, sent in GCJ-02: about 5.2 km in raw degrees, near once converted
    east = geo.wgs84_to_gcj02(*offset(0.0, 4.7))
    dirt.miss("visit_far_from_village", "gcj02", (await m.visit(fine, at=east, crs="gcj02")).id)
    dirt.hit("visit_far_from_village", "far", (await m.visit(fine, at=offset(12.0))).id)
    dirt.miss(
        "visit_far_from_village",
        "phone",
        (await m.visit(fine, at=offset(-15.0), mode="phone", photos=0)).id,
    )
    # too few other visits to judge: village A2 has three positioned visits in all
    a2 = world.households["a2"]
    await m.visit(a2, at=offset(0.1))
    await m.visit(a2, at=offset(-0.1))
    dirt.miss("visit_far_from_village", "two_others", (await m.visit(a2, at=offset(30.0))).id)
    await session.flush()
    return dirt
