"""Demo field records: for each demo household an income history, visits and a support measure.

Deterministic (seeded random, ids derived from the household number) and written only for
households that have no records yet, so running the seed again adds nothing twice.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.households.models import Household, HouseholdChange, Member
from app.records import convert
from app.records.models import IncomeSnapshot, Measure, MeasureRevision, Visit
from app.records.schemas import IncomeSnapshotWrite, MeasureWrite, VisitWrite
from app.records.service import new_record

_NAMESPACE = uuid.UUID("6b1f0c9e-43a5-4d0e-9a57-2f8f5d1c7e10")

MEASURE_FOR_CAUSE = {
    "illness": ("health", "大病保险和慢病签约服务", 3000),
    "disability": ("social_safety_net", "残疾人两项补贴和低保兜底", 2400),
    "lack_labour": ("public_welfare_job", "安排村保洁公益岗位", 6000),
    "schooling": ("compulsory_education", "雨露计划和教育资助", 3000),
    "lack_capital": ("finance", "扶贫小额信贷 (5万元, 3年期, 财政贴息)", 50000),
    "lack_skills": ("employment", "职业技能培训并推荐到县城就业", 1500),
    "lack_land": ("industry", "入股蔬菜大棚合作社分红", 5000),
    "disaster": ("housing_safety", "危房改造 (C级, 原址翻建)", 20000),
}
DEFAULT_MEASURE = ("photovoltaic", "村级光伏电站收益分配", 3000)


def _id(number: str, what: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{number}/{what}")


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _snapshot(
    rng: random.Random, household: Household, size: int, year: int, kind: str, per_capita: int
) -> IncomeSnapshotWrite:
    total = per_capita * size
    transfers = {"transfer_dibao": 0, "transfer_tekun": 0, "transfer_pension": 0}
    if household.attribute in ("dibao", "dibao_tekun"):
        transfers["transfer_dibao"] = 1800 + rng.randrange(0, 2000)
    if household.attribute in ("tekun", "dibao_tekun"):
        transfers["transfer_tekun"] = 3000 + rng.randrange(0, 1500)
    transfers["transfer_pension"] = 1200 if rng.random() < 0.5 else 0
    rest = max(0, total - sum(transfers.values()))
    wage = int(rest * rng.uniform(0.4, 0.8))
    business = rest - wage + rng.randrange(200, 900)
    return IncomeSnapshotWrite(
        revision=1,
        household_id=household.id,
        year=year,
        kind=kind,
        household_size=size,
        recorded_at=_at(date(year, 12, rng.randrange(1, 20)), 2),
        wage_income=Decimal(wage),
        business_income=Decimal(business) + Decimal(rng.randrange(0, 100)) / 100,
        business_expenses=Decimal(rng.randrange(200, 900)),
        property_dividend=Decimal(300 if rng.random() < 0.6 else 0),
        **{k: Decimal(v) for k, v in transfers.items()},
    )


def _records(rng: random.Random, household: Household, size: int, author: uuid.UUID) -> list[Any]:
    rows: list[Any] = []

    def add(model: type, write: Any, columns: dict[str, Any], record_id: uuid.UUID) -> Any:
        row = new_record(
            model,
            record_id=record_id,
            data=write,
            columns=columns,
            author_id=author,
            device_id="demo-seed",
            now=datetime.now(UTC),
        )
        rows.append(row)
        return row

    ordinary = household.origin == "ordinary"
    lifted = household.status in ("lifted", "lifted_no_support")
    latest = rng.randrange(6500, 16000) if lifted or ordinary else rng.randrange(2800, 5600)
    if household.status == "returned":
        latest = rng.randrange(2500, 4200)
    if ordinary:
        # Not in the register: no baseline of 2014; accounted since monitoring began.
        history = [(2024, "monitoring", rng.randrange(6000, 15000)), (2025, "annual", latest)]
    else:
        history = [
            (household.identified_year or 2014, "baseline", rng.randrange(1500, 2700)),
            (2019, "verification", rng.randrange(4200, 9000) if lifted else 3500),
            (2025, "annual", latest),
        ]
    for year, kind, per_capita in history:
        write = _snapshot(rng, household, size, year, kind, per_capita)
        add(
            IncomeSnapshot,
            write,
            convert.snapshot_columns(write),
            _id(household.number, f"income/{year}"),
        )

    weak = household.status in ("in_poverty", "returned", "new")
    for n, day in enumerate(
        (date(2026, 9, rng.randrange(1, 28)), date(2026, 11, rng.randrange(1, 20))), start=1
    ):
        checks = {
            name: "ok" for name in ("food", "clothing", "education", "medical", "housing", "water")
        }
        if weak and rng.random() < 0.4:
            checks[rng.choice(["housing", "medical", "water"])] = "not_ok"
        visit = VisitWrite(
            revision=1,
            household_id=household.id,
            visited_at=_at(day, rng.randrange(1, 9)),
            mode="in_home" if rng.random() < 0.8 else "phone",
            location={
                "lat": 36.2 + rng.random() / 10,
                "lon": 115.6 + rng.random() / 10,
                "accuracy_m": 15,
                "crs": "wgs84",
            },
            findings="两不愁三保障情况良好" if not weak else "收入不稳定, 需继续帮扶",
            checks=checks,
        )
        add(
            Visit,
            visit,
            convert.visit_columns(visit, now=datetime.now(UTC)),
            _id(household.number, f"visit/{n}"),
        )

    if ordinary:
        return rows  # measures come with a monitoring case (app.demo.monitoring)
    category, title, funds = MEASURE_FOR_CAUSE.get(household.main_cause or "", DEFAULT_MEASURE)
    done = lifted and rng.random() < 0.8
    measure = MeasureWrite(
        revision=2 if done else 1,
        household_id=household.id,
        category=category,
        title=title,
        funds_yuan=Decimal(funds),
        funds_spent_yuan=Decimal(funds if done else funds // 2),
        start_date=date(2026, 3, 1),
        due_date=date(2026, 10, 31),
        status="done" if done else "in_progress",
        progress_pct=100 if done else rng.choice([30, 50, 70]),
    )
    row = add(
        Measure,
        measure,
        convert.measure_columns(measure),
        _id(household.number, "measure/1"),
    )
    for revision in range(1, measure.revision + 1):
        rows.append(
            MeasureRevision(
                measure_id=row.id,
                household_id=household.id,
                revision=revision,
                status="in_progress" if revision < measure.revision else row.status,
                progress_pct=50 if revision < measure.revision else row.progress_pct,
                received_at=_at(date(2026, 3, 2) if revision == 1 else date(2026, 10, 28), 3),
                author_id=author,
            )
        )
    # The household's own history: identified, and (if so) lifted out of poverty.
    rows.append(
        HouseholdChange(
            household_id=household.id,
            version=household.version,
            changed_at=_at(date(household.identified_year or 2014, 3, 1), 1),
            changes={"status": [None, "in_poverty"]},
            status_to="in_poverty",
        )
    )
    if household.status != "in_poverty":
        year = household.exit_year or 2025
        rows.append(
            HouseholdChange(
                household_id=household.id,
                version=household.version,
                changed_at=_at(date(year, 12, 20), 1),
                changes={"status": ["in_poverty", household.status]},
                status_from="in_poverty",
                status_to=household.status,
            )
        )
    return rows


async def seed_records(session: AsyncSession, *, authors: dict[str, uuid.UUID], prefix: str) -> int:
    """Records for the demo households (number starting with `prefix`) that have none yet."""
    done = set((await session.scalars(select(Visit.household_id).distinct())).all())
    households = (
        await session.scalars(
            select(Household)
            .where(col(Household.number).startswith(prefix))
            .order_by(col(Household.number))
        )
    ).all()
    sizes = dict(
        (
            await session.execute(
                select(Member.household_id, func.count(col(Member.id)))
                .where(col(Member.removed_at).is_(None))
                .group_by(col(Member.household_id))
            )
        ).all()
    )
    rng = random.Random(20201)
    created = 0
    for household in households:
        if household.id in done:
            continue
        author = authors[household.village_code]
        session.add_all(_records(rng, household, max(1, sizes.get(household.id, 1)), author))
        created += 1
    await session.flush()
    return created
