"""The procedure of a monitoring case: who takes which step, in which order, and what it does.

Identification: village_review (the village's officer or first secretary), town_review (the
town's staff), county_approval (the county admin) take a case from proposed to identified; a
reject at any of them ends it as rejected. Clearing, once identified: the same three levels
again (clearance_…), to cleared; a reject there sends the case back to identified. Every step
taken is kept (MonitoringStep); a case's status only ever moves through a step.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal
from app.core.base import utcnow
from app.core.errors import Forbidden
from app.core.events import publish
from app.core.i18n import Text
from app.households.models import Household
from app.monitoring import rules, service
from app.monitoring.errors import ClearingBlocked, StepOutOfOrder
from app.monitoring.events import CaseCleared, CaseIdentified
from app.monitoring.models import MonitoringCase, MonitoringStep
from app.monitoring.schemas import StepCreate
from app.monitoring.vocabulary import NEXT_STEP, CaseStatus, Decision, Step
from app.users.models import Role

_VILLAGE = frozenset({Role.officer, Role.first_secretary})
_TOWN = frozenset({Role.town_staff})
_COUNTY = frozenset({Role.county_admin})


@dataclass(frozen=True)
class Transition:
    """One step: the status it is taken from, where each decision leads, who may take it."""

    step: Step
    at: CaseStatus
    approved: CaseStatus
    rejected: CaseStatus
    roles: frozenset[Role]
    who: str  # for messages

    @property
    def clearing(self) -> bool:
        return self.at not in service.BEFORE_IDENTIFICATION


TRANSITIONS: dict[Step, Transition] = {
    t.step: t
    for t in (
        Transition(
            Step.village_review,
            CaseStatus.proposed,
            CaseStatus.village_reviewed,
            CaseStatus.rejected,
            _VILLAGE,
            "an officer or first secretary of the village",
        ),
        Transition(
            Step.town_review,
            CaseStatus.village_reviewed,
            CaseStatus.town_reviewed,
            CaseStatus.rejected,
            _TOWN,
            "the town's staff",
        ),
        Transition(
            Step.county_approval,
            CaseStatus.town_reviewed,
            CaseStatus.identified,
            CaseStatus.rejected,
            _COUNTY,
            "the county admin",
        ),
        Transition(
            Step.clearance_village_review,
            CaseStatus.identified,
            CaseStatus.clearing_village_reviewed,
            CaseStatus.identified,
            _VILLAGE,
            "an officer or first secretary of the village",
        ),
        Transition(
            Step.clearance_town_review,
            CaseStatus.clearing_village_reviewed,
            CaseStatus.clearing_town_reviewed,
            CaseStatus.identified,
            _TOWN,
            "the town's staff",
        ),
        Transition(
            Step.clearance_county_approval,
            CaseStatus.clearing_town_reviewed,
            CaseStatus.cleared,
            CaseStatus.identified,
            _COUNTY,
            "the county admin",
        ),
    )
}


def statuses_awaiting(role: str) -> list[CaseStatus]:
    """The statuses in which a case waits for a step that `role` takes."""
    return [t.at for t in TRANSITIONS.values() if role in t.roles]


def today() -> date:
    """The date the procedure records and judges by (identified_on, cleared_on, the clearing
    rule's `today`): the UTC date, as household progress counts days."""
    return utcnow().date()


async def take_step(
    session: AsyncSession, *, principal: Principal, case_id: uuid.UUID, data: StepCreate
) -> tuple[MonitoringCase, Household]:
    """Take one step of a case's procedure; the case as it stands afterwards.

    Refused, with nothing written: a case not in the caller's regions (CaseNotFound), a step
    of another role (Forbidden), a step the case does not wait for (StepOutOfOrder), a
    clearance approved while the clearing rule refuses it (ClearingBlocked).
    """
    case, household = await service.get_case(
        session, principal=principal, case_id=case_id, for_update=True
    )
    transition = TRANSITIONS[data.step]
    if principal.role not in transition.roles:
        raise Forbidden(
            Text(
                "{step} is taken by {transition_who}, not a {principal_role}",
                step=data.step.value,
                transition_who=transition.who,
                principal_role=principal.role,
            )
        )
    status = CaseStatus(case.status)
    if status != transition.at:
        expected = NEXT_STEP.get(status)
        raise StepOutOfOrder(
            step=data.step.value,
            status=status.value,
            expected_step=expected.value if expected else None,
        )
    on = today()
    approved = data.decision is Decision.approve
    if approved and transition.clearing:
        await _refuse_while_blocked(session, case=case, household=household, today=on)

    status_to = transition.approved if approved else transition.rejected
    seq = (
        await session.scalar(
            select(func.max(col(MonitoringStep.seq))).where(col(MonitoringStep.case_id) == case.id)
        )
        or 0
    ) + 1
    step = MonitoringStep(
        case_id=case.id,
        seq=seq,
        step=data.step.value,
        decision=data.decision.value,
        method=data.method.value if data.method else None,
        note=data.note,
        actor_id=principal.id,
        actor_role=principal.role.value,
        status_from=status.value,
        status_to=status_to.value,
    )
    try:
        async with session.begin_nested():
            session.add(step)
            await session.flush()
    except IntegrityError:
        # Another step of this case was taken at the same moment (the row lock makes this
        # rare): this one was decided on a status that is no longer the case's.
        await session.refresh(case)
        current = CaseStatus(case.status)
        expected = NEXT_STEP.get(current)
        raise StepOutOfOrder(
            step=data.step.value,
            status=current.value,
            expected_step=expected.value if expected else None,
        ) from None

    _move(case, transition=transition, status_to=status_to, step=data, on=on)
    if status_to is CaseStatus.identified and not transition.clearing:
        await publish(session, CaseIdentified(case=case, household=household))
    elif status_to is CaseStatus.cleared:
        await publish(session, CaseCleared(case=case, household=household))
    await session.flush()
    return case, household


def _move(
    case: MonitoringCase,
    *,
    transition: Transition,
    status_to: CaseStatus,
    step: StepCreate,
    on: date,
) -> None:
    """The case's procedure columns after the step (its content is never touched here)."""
    case.status = status_to.value
    if status_to is CaseStatus.rejected:
        case.open_household_id = None
    elif status_to is CaseStatus.identified:
        if transition.clearing:
            case.clearing_method = None  # a clearance refused: it starts again
        else:
            case.identified_on = on
    elif status_to is CaseStatus.clearing_village_reviewed:
        case.clearing_method = step.method.value if step.method else None
    elif status_to is CaseStatus.cleared:
        case.cleared_on = on
        case.open_household_id = None


async def _refuse_while_blocked(
    session: AsyncSession, *, case: MonitoringCase, household: Household, today: date
) -> None:
    """ClearingBlocked with the clearing rule's reasons, if it refuses the case's clearing."""
    assert case.identified_on is not None  # a clearance step is taken from identified on
    reasons = await rules.clearing_reasons(
        session, household=household, identified_on=case.identified_on, today=today
    )
    if reasons:
        listed = Text.join(
            Text("{code}: {detail}", code=str(reason.code), detail=reason.detail)
            for reason in reasons
        )
        raise ClearingBlocked(
            Text("the risk cannot be cleared yet: {reasons}", reasons=listed),
            reasons=[{"code": str(reason.code), "detail": reason.detail} for reason in reasons],
        )
