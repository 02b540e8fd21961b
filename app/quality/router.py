"""/quality/issues: data cleaning (数据清洗) of the caller's villages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.deps import HouseholdProgressReader
from app.core.base import utcnow
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.pagination import PageDep
from app.quality import service
from app.quality.schemas import QualityIssuePage
from app.quality.vocabulary import IssueKind
from app.regions.codes import CODE_PATTERN

router = APIRouter(prefix="/quality", tags=["quality"])


@router.get(
    "/issues",
    response_model=QualityIssuePage,
    responses=problem_responses(
        401,
        404,
        422,
        described={404: "`region` lies outside the caller's regions"},
    ),
)
async def list_quality_issues(
    session: SessionDep,
    principal: HouseholdProgressReader,
    page: PageDep,
    region: Annotated[
        str | None,
        Query(
            max_length=21,
            pattern=CODE_PATTERN,
            description="County, town or village code within your regions; default: all of "
            "your regions.",
            examples=["371522101000"],
        ),
    ] = None,
    kind: Annotated[
        list[IssueKind] | None,
        Query(description="Only these kinds; repeat the parameter for several. Default: all."),
    ] = None,
) -> QualityIssuePage:
    """Records of your villages that fail a data-quality check (数据清洗), with counts.

    The checks county centers ran by hand, on current members of households not removed:

    * `id_number_missing`: a member without an ID number;
    * `id_number_invalid`: an ID number failing GB 11643 (18 characters, a real birth date
      neither in the future nor before 1880, the check character) or kept in its 15-digit form;
    * `id_number_duplicate`: an ID number another current member also holds (any household);
    * `head_not_member`: no current member has the relation head under the household's
      head_name (no head member, or one named otherwise);
    * `size_mismatch`: the latest income snapshot's household_size differs from the number of
      current members;
    * `cause_contradicts_members`: illness (main or other cause) with every member healthy,
      disability with nobody disabled, schooling with nobody in school;
    * `cause_repeated`: the main cause is also among the other causes;
    * `income_implausible`: a snapshot with negative net income, per-capita income above
      200,000 yuan, a negative component, or totals that do not add up from the components;
    * `visit_without_photo`: an in-person visit (not phone or video) without any photo;
    * `deceased_member_listed` (死亡人员未销户): a current member for whom a department alert
      reported a death (`kind` death), unless a cadre verified that alert as `no_risk`; it
      goes away when the member is removed;
    * `visit_far_from_village`: an in-person visit more than 5 km from the median position of
      the village's other in-person visits (at least 3 of them; GCJ-02 and BD-09 positions
      are converted to WGS-84 first).

    One issue per kind and record, ordered by kind, village and record id; `counts` cover
    every page. ID numbers appear masked only, for every caller. Issues are computed on each
    request: a village answers in tens of milliseconds, a whole county (50,000 households) in
    seconds, most of it `visit_far_from_village`; `kind` and `region` narrow the work.
    """
    return await service.list_issues(
        session,
        principal=principal,
        region=region,
        kinds=kind or [],
        page=page,
        today=utcnow().date(),
    )
