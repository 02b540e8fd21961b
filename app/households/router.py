"""/households and /households/{id}/members."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from app.auth.deps import HouseholdAdmin, Reader, Writer
from app.auth.principal import Principal
from app.core.conditional import etag
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.pagination import Page, PageDep
from app.core.ratelimit import RateLimits
from app.core.types import UtcDatetime
from app.households import service
from app.households.schemas import (
    HouseholdCreate,
    HouseholdMove,
    HouseholdPublic,
    HouseholdSearch,
    HouseholdUpdate,
    MemberCreate,
    MemberPublic,
    MemberRemoval,
    MemberUpdate,
    household_public,
    member_public,
)
from app.households.service import HouseholdFilters, HouseholdRecord
from app.households.vocabulary import Attribute, Status
from app.monitoring.vocabulary import Origin
from app.regions.codes import CODE_PATTERN

router = APIRouter(prefix="/households", tags=["households"])

IfMatch = Annotated[
    str | None,
    Header(description='ETag of the household as you last read it, e.g. "v3".'),
]
_ETAG_HEADER = {
    "ETag": {"description": "Strong ETag of the household's version", "schema": {"type": "string"}}
}


def _public(record: HouseholdRecord, principal: Principal) -> HouseholdPublic:
    return household_public(
        record.household,
        record.members,
        reveal_pii=principal.may_see_pii(record.household.village_code),
    )


def _page(
    rows: list[HouseholdRecord], cursor: str | None, principal: Principal
) -> Page[HouseholdPublic]:
    return Page(items=[_public(r, principal) for r in rows], next_cursor=cursor)


@router.get("", response_model=Page[HouseholdPublic], responses=problem_responses(401, 422))
async def list_households(
    session: SessionDep,
    principal: Reader,
    page: PageDep,
    region: Annotated[
        str | None,
        Query(
            max_length=21,
            pattern=CODE_PATTERN,
            description="Any division code: households under it.",
            examples=["371522101000"],
        ),
    ] = None,
    origin: Annotated[
        Origin | None,
        Query(description="registered (建档立卡户) or ordinary (一般农户) households only."),
    ] = None,
    status: Status | None = None,
    attribute: Attribute | None = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1, max_length=50, description="Part of a name, or a household number prefix."
        ),
    ] = None,
    updated_since: Annotated[
        UtcDatetime | None,
        Query(description="Only households changed at or after this time (with offset)."),
    ] = None,
) -> Page[HouseholdPublic]:
    """List the households of the caller's villages, by household number."""
    filters = HouseholdFilters(
        region=region,
        origin=origin.value if origin else None,
        status=status.value if status else None,
        attribute=attribute.value if attribute else None,
        q=q,
        updated_since=updated_since,
    )
    rows, cursor = await service.list_households(
        session, principal=principal, filters=filters, page=page
    )
    return _page(rows, cursor, principal)


@router.post("/search", response_model=Page[HouseholdPublic], responses=problem_responses(401, 422))
async def search_households(
    request: Request, session: SessionDep, principal: Reader, page: PageDep, data: HouseholdSearch
) -> Page[HouseholdPublic]:
    """Find households by a member's exact ID number (kept out of URLs and logs).

    Without `pii:read` each search counts against `FIELDSYNC_RATE_LIMIT_ID_SEARCH` (20 a
    minute, 200 a day): an answer says whether a number is registered, and a masked number
    hides only the birth date, which must not be guessable by searching.
    """
    if "pii:read" not in principal.scopes:
        limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
        if limits is not None:
            await limits.limit_id_search(str(principal.id))
    rows, cursor = await service.search_by_id_number(
        session, principal=principal, id_number=data.id_number, page=page
    )
    return _page(rows, cursor, principal)


@router.post(
    "",
    response_model=HouseholdPublic,
    status_code=201,
    responses={**problem_responses(401, 403, 409, 422), 201: {"headers": _ETAG_HEADER}},
)
async def create_household(
    session: SessionDep, principal: HouseholdAdmin, data: HouseholdCreate, response: Response
) -> HouseholdPublic:
    """Register a household and its members (county admin).

    `origin` says whether it is on the register (建档立卡户, the default: `attribute`,
    `main_cause` and `identified_year` are required, `status` defaults to `new`) or an
    ordinary farm household (一般农户) that monitoring against poverty watches too: it has none
    of the register's fields, and sending one (a status, say) is a 422 naming it.
    """
    record = await service.create_household(session, principal=principal, data=data)
    response.headers["ETag"] = etag(record.household.version)
    response.headers["Location"] = f"/api/v1/households/{record.household.id}"
    return _public(record, principal)


@router.get(
    "/{household_id}",
    response_model=HouseholdPublic,
    responses={**problem_responses(401, 404), 200: {"headers": _ETAG_HEADER}},
)
async def get_household(
    session: SessionDep, principal: Reader, household_id: uuid.UUID, response: Response
) -> HouseholdPublic:
    """Get one household with its current members."""
    record = await service.get_household_record(
        session, principal=principal, household_id=household_id
    )
    response.headers["ETag"] = etag(record.household.version)
    return _public(record, principal)


@router.patch(
    "/{household_id}",
    response_model=HouseholdPublic,
    responses={**problem_responses(401, 403, 404, 412, 422, 428), 200: {"headers": _ETAG_HEADER}},
)
async def update_household(
    session: SessionDep,
    principal: Writer,
    household_id: uuid.UUID,
    data: HouseholdUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> HouseholdPublic:
    """Change some fields of a household; needs If-Match, bumps the version.

    `origin` cannot change, and an ordinary household takes none of the register's fields.
    Setting `status` to `lifted` or `lifted_no_support` from `new`, `in_poverty` or `returned`
    is an exit: while the exit rule does not hold (GET /households/{household_id}/progress,
    `exit`) it is refused with 422 `exit_rule_not_met` listing the rule's `reasons`, unless the
    county admin gives an `override_reason`, which the household's history keeps (403
    `override_not_allowed` when anyone else gives one).
    """
    record = await service.update_household(
        session, principal=principal, household_id=household_id, data=data, if_match=if_match
    )
    response.headers["ETag"] = etag(record.household.version)
    return _public(record, principal)


@router.post(
    "/{household_id}/move",
    response_model=HouseholdPublic,
    responses={**problem_responses(401, 403, 404, 412, 422, 428), 200: {"headers": _ETAG_HEADER}},
)
async def move_household(
    session: SessionDep,
    principal: HouseholdAdmin,
    household_id: uuid.UUID,
    data: HouseholdMove,
    response: Response,
    if_match: IfMatch = None,
) -> HouseholdPublic:
    """Transfer a household to another village of the county (county admin); needs If-Match.

    The household keeps its records; phones of the old village receive delete entries from the
    sync feed, phones of the new one receive the household and its records.
    """
    record = await service.move_household(
        session, principal=principal, household_id=household_id, data=data, if_match=if_match
    )
    response.headers["ETag"] = etag(record.household.version)
    return _public(record, principal)


@router.get(
    "/{household_id}/members",
    response_model=list[MemberPublic],
    responses={**problem_responses(401, 404), 200: {"headers": _ETAG_HEADER}},
)
async def list_members(
    session: SessionDep, principal: Reader, household_id: uuid.UUID, response: Response
) -> list[MemberPublic]:
    """The household's current members (at most 30: not paginated)."""
    record = await service.get_household_record(
        session, principal=principal, household_id=household_id
    )
    response.headers["ETag"] = etag(record.household.version)
    reveal = principal.may_see_pii(record.household.village_code)
    return [member_public(m, reveal_pii=reveal) for m in record.members]


@router.get(
    "/{household_id}/members/{member_id}",
    response_model=MemberPublic,
    responses={**problem_responses(401, 404), 200: {"headers": _ETAG_HEADER}},
)
async def get_member(
    session: SessionDep,
    principal: Reader,
    household_id: uuid.UUID,
    member_id: uuid.UUID,
    response: Response,
) -> MemberPublic:
    """One current member; the ETag is the household's."""
    household = await service.get_household(session, principal=principal, household_id=household_id)
    member = await service.get_member(session, household=household, member_id=member_id)
    response.headers["ETag"] = etag(household.version)
    return member_public(member, reveal_pii=principal.may_see_pii(household.village_code))


@router.post(
    "/{household_id}/members",
    response_model=MemberPublic,
    status_code=201,
    responses={
        **problem_responses(401, 403, 404, 409, 412, 422, 428),
        201: {"headers": _ETAG_HEADER},
    },
)
async def create_member(
    session: SessionDep,
    principal: Writer,
    household_id: uuid.UUID,
    data: MemberCreate,
    response: Response,
    if_match: IfMatch = None,
) -> MemberPublic:
    """Add a member; If-Match carries the household's ETag, the response the new one."""
    household, member = await service.create_member(
        session, principal=principal, household_id=household_id, data=data, if_match=if_match
    )
    response.headers["ETag"] = etag(household.version)
    response.headers["Location"] = f"/api/v1/households/{household.id}/members/{member.id}"
    return member_public(member, reveal_pii=principal.may_see_pii(household.village_code))


@router.patch(
    "/{household_id}/members/{member_id}",
    response_model=MemberPublic,
    responses={
        **problem_responses(401, 403, 404, 409, 412, 422, 428),
        200: {"headers": _ETAG_HEADER},
    },
)
async def update_member(
    session: SessionDep,
    principal: Writer,
    household_id: uuid.UUID,
    member_id: uuid.UUID,
    data: MemberUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> MemberPublic:
    """Change a member; If-Match carries the household's ETag."""
    household, member = await service.update_member(
        session,
        principal=principal,
        household_id=household_id,
        member_id=member_id,
        data=data,
        if_match=if_match,
    )
    response.headers["ETag"] = etag(household.version)
    return member_public(member, reveal_pii=principal.may_see_pii(household.village_code))


@router.post(
    "/{household_id}/members/{member_id}/removal",
    status_code=204,
    responses={**problem_responses(401, 403, 404, 412, 422, 428), 204: {"headers": _ETAG_HEADER}},
)
async def remove_member(
    session: SessionDep,
    principal: Writer,
    household_id: uuid.UUID,
    member_id: uuid.UUID,
    data: MemberRemoval,
    if_match: IfMatch = None,
) -> Response:
    """Record that a member left the household (death, married out, moved out); kept as history."""
    household = await service.remove_member(
        session,
        principal=principal,
        household_id=household_id,
        member_id=member_id,
        data=data,
        if_match=if_match,
    )
    return Response(status_code=204, headers={"ETag": etag(household.version)})
