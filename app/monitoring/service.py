"""Monitoring cases as field records: the rules of writing one, reading them, their public view.

Writing goes through `app.records.service.apply_record` (the PUT and the sync batch share it);
this module hands it what differs for a case (see the monitoring_case Kind there): the columns of
a body, the rules that need the database, the state a new case starts in, and the view.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal, region_filter
from app.core.base import utcnow
from app.core.errors import FieldError, InvalidInput
from app.core.i18n import Text
from app.core.pagination import PageParams, paginate
from app.households.models import Household
from app.households.privacy import scrub
from app.households.vocabulary import Status
from app.monitoring.errors import CaseClosed, CaseNotFound, CaseOpen
from app.monitoring.models import MonitoringAlert, MonitoringCase, MonitoringStep
from app.monitoring.schemas import MonitoringCasePublic, MonitoringCaseWrite, StepPublic
from app.monitoring.vocabulary import (
    CLOSED_CASE_STATUSES,
    NEXT_STEP,
    CaseCategory,
    CaseStatus,
    Origin,
)
from app.records import convert
from app.regions.errors import RegionNotFound

# A phone's date runs ahead of the server's UTC date (China is UTC+8): `found_on` may be up to
# the date it already is somewhere on Earth (UTC+14).
_AHEAD_OF_UTC = timedelta(hours=14)

# Until the county identifies a case, what it was opened as may still be corrected; from then
# on these are what was decided on, and a revision may change only the rest (risk types,
# description, photos) until the case is closed.
IDENTIFICATION_FIELDS = ("category", "found_via", "alert_id", "found_on")
BEFORE_IDENTIFICATION = frozenset(
    {CaseStatus.proposed, CaseStatus.village_reviewed, CaseStatus.town_reviewed}
)
LIFTED = frozenset({Status.lifted, Status.lifted_no_support})


# --- writing (called by records.service.apply_record) ---------------------------------------


def case_columns(data: MonitoringCaseWrite, *, now: datetime | None = None) -> dict[str, Any]:
    """The content columns of a case body; its procedure columns are never written from one."""
    latest = ((now or utcnow()) + _AHEAD_OF_UTC).date()
    if data.found_on > latest:
        raise InvalidInput.field(
            "body.found_on", Text("found_on is in the future"), type="in_future"
        )
    return {
        "category": data.category.value,
        "risk_types": [r.value for r in data.risk_types],
        "found_via": data.found_via.value,
        "alert_id": data.alert_id,
        "found_on": data.found_on,
        "description": data.description,
        "photos": [p.model_dump(mode="json") for p in data.photos],
    }


def initial_columns(household: Household) -> dict[str, Any]:
    """The state a new case starts in: proposed, and the household's open case."""
    return {"status": CaseStatus.proposed.value, "open_household_id": household.id}


def category_refusal(category: str, household: Household) -> Text | None:
    """Why `household` cannot have a case of `category`, or None if it can."""
    if category == CaseCategory.unstable_lifted:
        if household.origin != Origin.registered or household.status not in LIFTED:
            if household.status:
                return Text(
                    "unstable_lifted (脱贫不稳定户) is for registered households that were lifted "
                    "(lifted or lifted_no_support); this one is {origin} with status {status}",
                    origin=household.origin,
                    status=household.status,
                )
            return Text(
                "unstable_lifted (脱贫不稳定户) is for registered households that were lifted "
                "(lifted or lifted_no_support); this one is {origin}",
                origin=household.origin,
            )
    elif category == CaseCategory.marginal and household.origin != Origin.ordinary:
        return Text("marginal (边缘易致贫户) is for ordinary households (一般农户) only")
    return None


async def open_case_of(session: AsyncSession, household_id: uuid.UUID) -> MonitoringCase | None:
    """The household's case that is neither cleared nor rejected, if any."""
    return await session.scalar(
        select(MonitoringCase).where(col(MonitoringCase.open_household_id) == household_id)
    )


async def check_write(
    session: AsyncSession,
    household: Household,
    data: MonitoringCaseWrite,
    stored: MonitoringCase | None,
) -> None:
    """The rules of a new case (`stored` None) or of a new revision, before anything is written."""
    if stored is not None:
        if stored.status in CLOSED_CASE_STATUSES:
            raise CaseClosed(
                Text(
                    "case {stored_id} is {stored_status}: it is kept as decided; a "
                    "new risk of the household is a new case",
                    stored_id=stored.id,
                    stored_status=stored.status,
                )
            )
        if stored.status not in BEFORE_IDENTIFICATION:
            changed = [
                name
                for name in IDENTIFICATION_FIELDS
                if _stored_value(stored, name) != _sent_value(data, name)
            ]
            if changed:
                raise InvalidInput(
                    Text(
                        "case {stored_id} is identified: {changed} can no longer change",
                        stored_id=stored.id,
                        changed=", ".join(changed),
                    ),
                    errors=[
                        FieldError.of(
                            f"body.{name}",
                            Text("fixed once the case is identified"),
                            type="immutable",
                        )
                        for name in changed
                    ],
                )
    if stored is None or stored.category != data.category:
        refusal = category_refusal(data.category, household)
        if refusal is not None:
            raise InvalidInput.field("body.category", refusal, type="category_not_allowed")
    if data.alert_id is not None and (stored is None or stored.alert_id != data.alert_id):
        alert = await session.scalar(
            select(col(MonitoringAlert.id)).where(
                col(MonitoringAlert.id) == data.alert_id,
                col(MonitoringAlert.household_id) == household.id,
            )
        )
        if alert is None:
            raise InvalidInput.field(
                "body.alert_id", Text("no such alert for this household"), type="not_found"
            )
    if stored is None:
        await refuse_second_open_case(session, household)


def _stored_value(case: MonitoringCase, name: str) -> Any:
    return getattr(case, name)


def _sent_value(data: MonitoringCaseWrite, name: str) -> Any:
    value = getattr(data, name)
    return value.value if name in ("category", "found_via") else value


async def refuse_second_open_case(session: AsyncSession, household: Household) -> None:
    """CaseOpen naming the household's open case, if it has one."""
    case = await open_case_of(session, household.id)
    if case is not None:
        raise CaseOpen(household_id=household.id, case_id=case.id, status=case.status)


# --- reading ---------------------------------------------------------------------------------


async def steps_of(
    session: AsyncSession, case_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[MonitoringStep]]:
    """The steps of each case, in order: one query for all of them."""
    out: dict[uuid.UUID, list[MonitoringStep]] = defaultdict(list)
    if not case_ids:
        return out
    for start in range(0, len(case_ids), 500):
        rows = await session.scalars(
            select(MonitoringStep)
            .where(col(MonitoringStep.case_id).in_(case_ids[start : start + 500]))
            .order_by(col(MonitoringStep.case_id), col(MonitoringStep.seq))
        )
        for step in rows:
            out[step.case_id].append(step)
    return out


def step_public(step: MonitoringStep, *, reveal_pii: bool) -> StepPublic:
    return StepPublic(
        seq=step.seq,
        step=step.step,
        decision=step.decision,
        method=step.method,
        note=step.note if reveal_pii or not step.note else scrub(step.note),
        actor_id=step.actor_id,
        actor_role=step.actor_role,
        taken_at=step.taken_at,
        status_from=step.status_from,
        status_to=step.status_to,
    )


def case_public(
    case: MonitoringCase, steps: Sequence[MonitoringStep], *, reveal_pii: bool
) -> MonitoringCasePublic:
    """The case as a caller sees it: without `reveal_pii`, its text and captions scrubbed."""
    return MonitoringCasePublic(
        id=case.id,
        revision=case.revision,
        household_id=case.household_id,
        author_id=case.author_id,
        device_id=case.device_id,
        received_at=case.received_at,
        updated_at=case.updated_at,
        category=case.category,
        risk_types=case.risk_types,
        found_via=case.found_via,
        alert_id=case.alert_id,
        found_on=case.found_on,
        **convert.case_content(case, reveal_pii=reveal_pii),
        status=case.status,
        identified_on=case.identified_on,
        cleared_on=case.cleared_on,
        clearing_method=case.clearing_method,
        steps=[step_public(step, reveal_pii=reveal_pii) for step in steps],
        next_step=NEXT_STEP.get(CaseStatus(case.status)),
    )


async def case_publics(
    session: AsyncSession, rows: Sequence[Any], village_code: str, reveal_pii: bool
) -> list[BaseModel]:
    """Public views of cases of one village, in order, with their steps."""
    steps = await steps_of(session, [row.id for row in rows])
    return [case_public(row, steps.get(row.id, []), reveal_pii=reveal_pii) for row in rows]


async def get_case(
    session: AsyncSession,
    *,
    principal: Principal,
    case_id: uuid.UUID,
    for_update: bool = False,
) -> tuple[MonitoringCase, Household]:
    """A case of a household in the caller's regions, else CaseNotFound (existence not leaked).

    `for_update` locks the case row for the transaction (the steps' order depends on it).
    """
    stmt = (
        select(MonitoringCase, Household)
        .join(Household, col(Household.id) == col(MonitoringCase.household_id))
        .where(col(MonitoringCase.id) == case_id, principal.within(col(Household.village_code)))
    )
    if for_update:
        stmt = stmt.with_for_update(of=MonitoringCase)
    row = (await session.execute(stmt)).first()
    if row is None:
        raise CaseNotFound(
            Text(
                "monitoring case {case_id} does not exist or is not visible to you", case_id=case_id
            )
        )
    return row[0], row[1]


@dataclass(frozen=True)
class CaseFilters:
    region: str | None = None
    status: CaseStatus | None = None
    category: CaseCategory | None = None
    # Only cases in one of these statuses (those waiting for the caller's step).
    statuses: Sequence[CaseStatus] | None = None


async def list_cases(
    session: AsyncSession, *, principal: Principal, filters: CaseFilters, page: PageParams
) -> tuple[list[tuple[MonitoringCase, str]], str | None]:
    """Cases of households in the caller's regions (under `region`), newest first: each with
    its household's village."""
    stmt = (
        select(MonitoringCase)
        .join(Household, col(Household.id) == col(MonitoringCase.household_id))
        .where(principal.within(col(Household.village_code)))
    )
    if filters.region is not None:
        under = region_filter(filters.region, col(Household.village_code))
        if not principal.covers(filters.region):
            raise RegionNotFound(
                Text(
                    "region {filters_region} does not exist or is not visible to you",
                    filters_region=filters.region,
                )
            )
        stmt = stmt.where(under)
    if filters.status is not None:
        stmt = stmt.where(col(MonitoringCase.status) == filters.status.value)
    if filters.category is not None:
        stmt = stmt.where(col(MonitoringCase.category) == filters.category.value)
    if filters.statuses is not None:
        stmt = stmt.where(col(MonitoringCase.status).in_([s.value for s in filters.statuses]))
    rows, cursor = await paginate(
        session,
        stmt,
        keys=[col(MonitoringCase.received_at), col(MonitoringCase.id)],
        page=page,
        descending=True,
    )
    villages = await _villages_of(session, {row.household_id for row in rows})
    return [(row, villages[row.household_id]) for row in rows], cursor


async def _villages_of(
    session: AsyncSession, household_ids: set[uuid.UUID]
) -> dict[uuid.UUID, str]:
    if not household_ids:
        return {}
    rows = await session.execute(
        select(col(Household.id), col(Household.village_code)).where(
            col(Household.id).in_(household_ids)
        )
    )
    return {row[0]: row[1] for row in rows}


async def publics_by_village(
    session: AsyncSession, principal: Principal, rows: Sequence[tuple[MonitoringCase, str]]
) -> list[BaseModel]:
    """Public views of cases of several villages, in the order given (steps: one query)."""
    steps = await steps_of(session, [case.id for case, _ in rows])
    return [
        case_public(case, steps.get(case.id, []), reveal_pii=principal.may_see_pii(village))
        for case, village in rows
    ]


async def case_view(
    session: AsyncSession, principal: Principal, case: MonitoringCase, *, village_code: str
) -> BaseModel:
    """One case as the caller sees it, with its steps."""
    return (await publics_by_village(session, principal, [(case, village_code)]))[0]
