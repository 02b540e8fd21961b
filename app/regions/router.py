"""/regions: the division hierarchy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.auth.deps import Reader, RegionAdmin
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.pagination import Page, PageDep
from app.regions import service
from app.regions.codes import CODE_PATTERN
from app.regions.schemas import RegionCreate, RegionPublic

router = APIRouter(prefix="/regions", tags=["regions"])

CodePath = Annotated[str, Path(max_length=21, pattern=CODE_PATTERN, examples=["371522101201"])]


@router.get("", response_model=Page[RegionPublic], responses=problem_responses(401, 422))
async def list_regions(
    session: SessionDep,
    principal: Reader,
    page: PageDep,
    parent: Annotated[
        str | None,
        Query(max_length=21, pattern=CODE_PATTERN, description="Only the children of this code."),
    ] = None,
    level: Annotated[
        int | None, Query(ge=1, le=6, description="1 province … 5 village, 6 natural village")
    ] = None,
) -> Page[RegionPublic]:
    """List the regions the caller may see (their own, what lies under them, and above them)."""
    rows, cursor = await service.list_regions(
        session, principal=principal, page=page, parent=parent, level=level
    )
    return Page(items=[RegionPublic.of(r) for r in rows], next_cursor=cursor)


@router.get("/{code}", response_model=RegionPublic, responses=problem_responses(401, 404))
async def get_region(session: SessionDep, principal: Reader, code: CodePath) -> RegionPublic:
    """Get one region by its code."""
    return RegionPublic.of(await service.get_region(session, principal=principal, code=code))


@router.post(
    "",
    response_model=RegionPublic,
    status_code=201,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_region(
    session: SessionDep, principal: RegionAdmin, data: RegionCreate
) -> RegionPublic:
    """Add a division inside the caller's county (county admin)."""
    return RegionPublic.of(await service.create_region(session, principal=principal, data=data))
