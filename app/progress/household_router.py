"""/households/{household_id}/progress: where one household stands."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.auth.deps import ProgressReader
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.progress import household as service
from app.progress.household_schemas import HouseholdProgress

router = APIRouter(tags=["progress"])


@router.get(
    "/households/{household_id}/progress",
    response_model=HouseholdProgress,
    responses=problem_responses(401, 404, 422),
)
async def get_household_progress(
    session: SessionDep, principal: ProgressReader, household_id: uuid.UUID
) -> HouseholdProgress:
    """Get a household's progress: income, guarantees, measures, visits, exit, risk flags and
    monitoring.

    * `income`: baseline and latest per-capita income, the change, one figure per year, and the
      margins to the poverty line and monitoring threshold of the latest year.
    * `guarantees`: each of 两不愁三保障 and safe water at its latest assessment on a visit.
    * `measures`: counts by status, funds, overdue measures, before/after photo pairs.
    * `visits`: how many, how recent, and whether a visit is overdue (`visit_cadence_days`).
    * `exit`: whether the household meets the exit rule, else every reason it does not
      (income above the line, stably over the two latest annual years; the six indicators; every
      member aged 6–15 in school and every member in basic medical insurance).
    * `risk_flags`: `income_drop`, `below_monitoring_threshold`, `indicator_lost`,
      `measure_overdue`, `visit_overdue`, `photos_missing`, each with the ids of its evidence.
    * `monitoring`: the open monitoring case, whether its risk may be cleared now (with the
      clearing rule's reasons; null before the case is identified) and the open alerts.

    Money is in yuan, as strings with two decimals.
    """
    return await service.get_household_progress(
        session, principal=principal, household_id=household_id
    )
