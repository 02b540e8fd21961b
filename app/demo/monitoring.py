"""Demo monitoring as of 2026: cases in every category and status, and department alerts.

Each case walks the real procedure's path (its steps taken by the village's officer, the town's
staff and the county admin, in order) up to its status; identified ones have a measure started
after identification and monitoring income snapshots. Alerts are open or verified. Ids derive
from household numbers, so running the seed again adds nothing twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import product
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.households.models import Household, Member
from app.monitoring.models import MonitoringAlert, MonitoringCase, MonitoringStep
from app.monitoring.steps import NEXT_STEP, TRANSITIONS
from app.monitoring.vocabulary import (
    CLOSED_CASE_STATUSES,
    CaseCategory,
    CaseStatus,
    Step,
)
from app.records import convert
from app.records import service as records_service
from app.records.models import IncomeSnapshot, Measure
from app.records.schemas import IncomeSnapshotWrite, MeasureWrite
from app.records.vocabulary import RecordType

_NAMESPACE = uuid.UUID("1d0f6a3e-5b7c-4e2a-9c41-7a8e2f0b6d35")

# What a case of each category is about (risk types, description).
STORIES: dict[CaseCategory, list[tuple[list[str], str]]] = {
    CaseCategory.unstable_lifted: [
        (["illness", "high_rigid_expenses"], "户主患慢性病, 年医疗自付费用较高, 收入不稳定"),
        (["unstable_employment"], "家中主要劳动力外出务工中断, 收入明显下降"),
        (["industry_failure"], "养殖项目受市场影响亏损"),
    ],
    CaseCategory.marginal: [
        (["illness"], "配偶突发重病住院, 医保报销后自付较多"),
        (["schooling", "high_rigid_expenses"], "两个孩子上学, 教育支出大"),
        (["lack_labour", "other"], "老人户, 劳动能力弱, 收入略高于监测范围"),
    ],
    CaseCategory.sudden_hardship: [
        (["disaster"], "汛期房屋受损, 农作物绝收"),
        (["accident"], "户主交通事故致伤, 暂时丧失劳动能力"),
        (["illness", "high_rigid_expenses"], "子女患白血病, 治疗费用巨大"),
    ],
}


@dataclass(frozen=True)
class Actors:
    """Who takes which steps: the village's officer, the town's staff, the county admin."""

    officers: dict[str, uuid.UUID]  # village code → user
    town_staff: dict[str, uuid.UUID]  # town code → user
    county_admin: uuid.UUID


def _id(number: str, what: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{number}/{what}")


def _at(day: date, hour: int = 2) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _path_to(status: CaseStatus) -> list[tuple[Step, str, CaseStatus]]:
    """The steps (step, decision, status after) that bring a new case to `status`, along the
    procedure's own transitions (a rejected case: turned down by the town)."""
    steps: list[tuple[Step, str, CaseStatus]] = []
    current = CaseStatus.proposed
    while current is not status:
        transition = TRANSITIONS[NEXT_STEP[current]]
        if status is CaseStatus.rejected and transition.step is Step.town_review:
            steps.append((transition.step, "reject", transition.rejected))
            break
        steps.append((transition.step, "approve", transition.approved))
        current = transition.approved
    return steps


def _actor(step: Step, village: str, actors: Actors) -> tuple[uuid.UUID, str]:
    if step in (Step.village_review, Step.clearance_village_review):
        return actors.officers[village], "officer"
    if step in (Step.town_review, Step.clearance_town_review):
        return actors.town_staff[village[:9] + "000"], "town_staff"
    return actors.county_admin, "county_admin"


def _case_rows(
    household: Household,
    category: CaseCategory,
    status: CaseStatus,
    story: tuple[list[str], str],
    actors: Actors,
    alert: MonitoringAlert | None,
) -> list[Any]:
    """The case, its steps, and for an identified one its measure and monitoring snapshots."""
    from app.monitoring.schemas import MonitoringCaseWrite

    number, village = household.number, household.village_code
    author = actors.officers[village]
    steps = _path_to(status)
    identified_at_all = any(after is CaseStatus.identified for _, _, after in steps)
    # Cases still under identification were found lately; identified ones a year ago and more.
    found_on = date(2025, 3, 3) if identified_at_all else date(2026, 11, 9)
    if status is CaseStatus.rejected:
        found_on = date(2026, 6, 15)
    risk_types, description = story
    write = MonitoringCaseWrite(
        revision=1,
        household_id=household.id,
        category=category,
        risk_types=risk_types,
        found_via="department_alert" if alert is not None else "cadre_visit",
        alert_id=alert.id if alert is not None else None,
        found_on=found_on,
        description=description,
        photos=[],
    )
    kind = records_service.KINDS[RecordType.monitoring_case]
    case = records_service.new_record(
        kind.model,
        record_id=_id(number, "case"),
        data=write,
        columns=kind.columns(write),
        author_id=author,
        device_id="demo-seed",
        now=_at(found_on + timedelta(days=1)),
    )
    assert isinstance(case, MonitoringCase)
    rows: list[Any] = [case]
    day = found_on
    current = CaseStatus.proposed
    for seq, (step, decision, after) in enumerate(steps, start=1):
        # The clearing starts once half a year has passed since identification.
        day += timedelta(days=200 if step is Step.clearance_village_review else 12)
        actor, role = _actor(step, village, actors)
        rows.append(
            MonitoringStep(
                id=_id(number, f"step/{seq}"),
                case_id=case.id,
                seq=seq,
                step=step.value,
                decision=decision,
                method="assisted" if step is Step.clearance_village_review else None,
                note="经村民代表会议评议" if step is Step.village_review else None,
                actor_id=actor,
                actor_role=role,
                status_from=current.value,
                status_to=after.value,
                taken_at=_at(day, 3),
            )
        )
        if after is CaseStatus.identified:
            case.identified_on = day
        if step is Step.clearance_village_review:
            case.clearing_method = "assisted"
        current = after
    case.status = current.value
    if current is CaseStatus.cleared:
        case.cleared_on = day
    case.open_household_id = None if current in CLOSED_CASE_STATUSES else household.id
    if case.identified_on is not None:
        rows.extend(_help(household, case.identified_on, author))
    return rows


def _help(household: Household, identified_on: date, author: uuid.UUID) -> list[Any]:
    """A measure started after identification, and two monitoring snapshots half a year apart."""
    rows: list[Any] = []
    measure = MeasureWrite(
        revision=1,
        household_id=household.id,
        category="employment",
        title="开发公益岗位并落实医疗救助",
        funds_yuan=Decimal(6000),
        funds_spent_yuan=Decimal(4000),
        start_date=identified_on + timedelta(days=10),
        due_date=identified_on + timedelta(days=300),
        status="in_progress",
        progress_pct=60,
    )
    rows.append(
        records_service.new_record(
            Measure,
            record_id=_id(household.number, "case-measure"),
            data=measure,
            columns=convert.measure_columns(measure),
            author_id=author,
            device_id="demo-seed",
            now=_at(identified_on + timedelta(days=11)),
        )
    )
    for n, day in enumerate((identified_on + timedelta(days=40), date(2026, 10, 20)), start=1):
        snapshot = IncomeSnapshotWrite(
            revision=1,
            household_id=household.id,
            year=day.year,
            kind="monitoring",
            household_size=3,
            recorded_at=_at(day),
            wage_income=Decimal(18000 + 2000 * n),
            business_income=Decimal(4000),
            business_expenses=Decimal(1200),
            transfer_pension=Decimal(1800),
        )
        rows.append(
            records_service.new_record(
                IncomeSnapshot,
                record_id=_id(household.number, f"case-income/{n}"),
                data=snapshot,
                columns=convert.snapshot_columns(snapshot),
                author_id=author,
                device_id="demo-seed",
                now=_at(day),
            )
        )
    return rows


def _alert(
    member: Member,
    household: Household,
    *,
    county: str,
    department: str,
    kind: str,
    occurred_on: date,
    importer: uuid.UUID,
    amount_yuan: int | None = None,
    note: str | None = None,
) -> MonitoringAlert:
    assert member.id_number_hash is not None
    return MonitoringAlert(
        id=_id(household.number, f"alert/{department}/{kind}"),
        county_code=county,
        department=department,
        id_number_hash=member.id_number_hash,
        kind=kind,
        amount=amount_yuan * 100 if amount_yuan is not None else None,
        occurred_on=occurred_on,
        note=note,
        household_id=household.id,
        member_id=member.id,
        village_code=household.village_code,
        imported_at=_at(occurred_on + timedelta(days=20)),
        imported_by=importer,
    )


async def seed_monitoring(
    session: AsyncSession, *, actors: Actors, county: str, prefix: str
) -> tuple[int, int]:
    """Cases (3 categories × 8 statuses) and alerts, unless the seed made them already."""
    if await session.scalar(
        select(MonitoringCase.id).where(col(MonitoringCase.device_id) == "demo-seed").limit(1)
    ):
        return 0, 0
    households = list(
        (
            await session.scalars(
                select(Household)
                .where(col(Household.number).startswith(prefix))
                .order_by(col(Household.village_code), col(Household.number))
            )
        ).all()
    )
    members: dict[uuid.UUID, list[Member]] = {}
    for member in await session.scalars(
        select(Member)
        .where(col(Member.id_number_hash).is_not(None), col(Member.removed_at).is_(None))
        .order_by(col(Member.household_id), col(Member.relation), col(Member.name))
    ):
        members.setdefault(member.household_id, []).append(member)
    households = [h for h in households if h.id in members]
    registered = [h for h in households if h.origin == "registered" and h.status == "lifted"]
    ordinary = [h for h in households if h.origin == "ordinary"]
    # Spread over the villages: every seventh registered household, every other ordinary one.
    pools = {
        CaseCategory.unstable_lifted: registered[::7],
        CaseCategory.marginal: ordinary[::2],
        CaseCategory.sudden_hardship: ordinary[1::2] + registered[3::7],
    }
    rows: list[Any] = []
    alerts = 0
    for n, (category, status) in enumerate(product(CaseCategory, CaseStatus)):
        household = pools[category][n % len(pools[category])]
        pools[category].remove(household)
        member = members[household.id][0]
        alert = None
        if category is not CaseCategory.unstable_lifted and n % 2 == 0:
            # Found by a department's list: the alert, verified by opening this case.
            alert = _alert(
                member,
                household,
                county=county,
                department="medical_insurance" if n % 4 == 0 else "emergency",
                kind="large_medical_expense" if n % 4 == 0 else "disaster",
                occurred_on=date(2025, 2, 10)
                if status is not CaseStatus.proposed
                else date(2026, 10, 12),
                importer=actors.county_admin,
                amount_yuan=38000 if n % 4 == 0 else None,
            )
            rows.append(alert)
            alerts += 1
        story = STORIES[category][n % len(STORIES[category])]
        case_rows = _case_rows(household, category, status, story, actors, alert)
        if alert is not None:
            alert.status, alert.outcome, alert.case_id = "verified", "case_opened", case_rows[0].id
            alert.verified_by, alert.verified_at, alert.revision = (
                actors.officers[household.village_code],
                alert.imported_at + timedelta(days=5),
                2,
            )
        rows.extend(case_rows)
    # Open alerts still to verify on the next visit, and one verified without risk.
    used = {row.household_id for row in rows if isinstance(row, MonitoringCase)}
    spare = [h for h in households if h.id not in used][5::37][:6]
    for i, (department, kind, amount, note) in enumerate(
        [
            ("medical_insurance", "large_medical_expense", 26500, "住院自付 2.65 万元"),
            ("education", "dropout", None, "初二学生未返校"),
            ("housing", "dilapidated_house", None, "房屋鉴定为C级"),
            ("human_resources", "job_loss", None, "务工企业停产"),
            ("civil_affairs", "death", None, "户籍人员死亡"),
            ("civil_affairs", "assistance_granted", 4200, "新纳入低保"),
        ]
    ):
        household = spare[i]
        alert = _alert(
            members[household.id][-1],
            household,
            county=county,
            department=department,
            kind=kind,
            occurred_on=date(2026, 11, 2 + i),
            importer=actors.county_admin,
            amount_yuan=amount,
            note=note,
        )
        if kind == "assistance_granted":
            alert.status, alert.outcome, alert.revision = "verified", "no_risk", 2
            alert.verified_by = actors.officers[household.village_code]
            alert.verified_at = _at(date(2026, 11, 25))
        rows.append(alert)
        alerts += 1
    # Alerts before the cases that name them, cases before their steps.
    session.add_all([r for r in rows if isinstance(r, MonitoringAlert)])
    await session.flush()
    session.add_all([r for r in rows if isinstance(r, MonitoringCase)])
    await session.flush()
    session.add_all([r for r in rows if not isinstance(r, (MonitoringAlert, MonitoringCase))])
    await session.flush()
    return sum(isinstance(r, MonitoringCase) for r in rows), alerts
