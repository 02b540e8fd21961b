"""/regions/{code}/progress: a village's, town's or county's standing, and its children's."""

from __future__ import annotations

from fastapi import APIRouter

from app.auth.deps import ProgressReader
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.progress import region as service
from app.progress.region_schemas import RegionProgress
from app.regions.router import CodePath

router = APIRouter(tags=["progress"])


@router.get(
    "/regions/{code}/progress",
    response_model=RegionProgress,
    responses=problem_responses(
        401,
        404,
        422,
        described={
            404: "The region does not exist, or is not at or below one of the caller's regions"
        },
    ),
)
async def get_region_progress(
    session: SessionDep, principal: ProgressReader, code: CodePath
) -> RegionProgress:
    """Get the progress of a village, town or county, and of each region in it.

    Figures over the households of a village, town or county (matched by code prefix) that lie
    in the caller's regions, for a table: the region's own figures, and for a county one entry
    per town, for a town one per village (`children`, the same figures without nesting).

    * Households: all but `removed` (ordinary households, 一般农户, included), by origin, by
      status and by attribute. `people_in_poverty` are the current members of `new`,
      `in_poverty` and `returned` households; `poverty_incidence` (贫困发生率) divides them by
      the registered rural population of the region's villages, to compare with the village
      exit threshold `incidence_threshold` (2%).
    * `exit_eligible`: households still poor (`new`, `in_poverty`, `returned`) meeting the
      household exit rule: the latest per-capita income and the two latest years' annual
      snapshots above their years' poverty lines (the village's own, else its town's, county's
      … national; there is none after 2020), the latest assessment of each of the six
      indicators (两不愁三保障 and safe drinking water) `ok`, every member aged 6–15 in school and
      every member in basic medical insurance.
    * `income_change_avg`: latest minus baseline per-capita income, averaged over the
      households with a snapshot.
    * `visit_coverage` and `risk_flags` (防返贫监测), as of `as_of`; the rules per household are
      those of GET /households/{household_id}/progress.
    * `monitoring`: the monitoring cases of these households by category and risk type (open
      ones) and by status (all); identified and cleared (by method) in the year of `as_of`;
      department alerts not yet verified; open identified cases under guarantees (no member
      aged 16–64 able to work: never cleared) and those the clearing rule would let clear.

    Money is yuan, a string with two decimals; shares are fractions (0…1). A caller may ask for
    their own regions and those below them (an officer: their village, not its town or county).
    """
    return await service.get_region_progress(session, principal=principal, code=code)
