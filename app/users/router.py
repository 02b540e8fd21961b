"""/users: the accounts of a county, administered by its county admins."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.deps import AccountAdmin
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.pagination import Page, PageDep
from app.regions.codes import CODE_PATTERN
from app.users import service
from app.users.models import Role
from app.users.schemas import (
    PasswordReset,
    UserCreate,
    UserPublic,
    UserRegionsUpdate,
    UserUpdate,
    user_public,
)
from app.users.service import UserFilters, UserRecord

router = APIRouter(prefix="/users", tags=["users"])

_REGIONS_422 = (
    "Invalid input: a region not in your county or not of the role's level names `body.regions.<i>`"
)
_NOT_FOUND = "No such user in your county (`user_not_found`)"


def _public(record: UserRecord) -> UserPublic:
    return user_public(record.user, record.regions)


@router.get("", response_model=Page[UserPublic], responses=problem_responses(401, 403, 422))
async def list_users(
    session: SessionDep,
    principal: AccountAdmin,
    page: PageDep,
    role: Annotated[Role | None, Query(description="Only accounts of this role.")] = None,
    region: Annotated[
        str | None,
        Query(
            max_length=21,
            pattern=CODE_PATTERN,
            description="Any division code: accounts assigned a region at or under it.",
            examples=["371522101000"],
        ),
    ] = None,
    is_active: Annotated[
        bool | None, Query(description="true: active accounts only; false: disabled only.")
    ] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="Part of the username or display name."),
    ] = None,
) -> Page[UserPublic]:
    """The accounts of your county (without API clients), oldest first."""
    filters = UserFilters(role=role, region=region, is_active=is_active, q=q)
    rows, cursor = await service.list_users(session, actor=principal, filters=filters, page=page)
    return Page(items=[_public(r) for r in rows], next_cursor=cursor)


@router.post(
    "",
    response_model=UserPublic,
    status_code=201,
    responses={
        201: {
            "headers": {"Location": {"description": "The new user", "schema": {"type": "string"}}}
        },
        **problem_responses(
            401,
            403,
            409,
            422,
            described={409: "The username is taken (`username_taken`)", 422: _REGIONS_422},
        ),
    },
)
async def create_user(
    session: SessionDep, principal: AccountAdmin, data: UserCreate, response: Response
) -> UserPublic:
    """Create an account of your county with its regions and initial password."""
    record = await service.create_user(session, actor=principal, data=data)
    response.headers["Location"] = f"/api/v1/users/{record.user.id}"
    return _public(record)


@router.get(
    "/{user_id}",
    response_model=UserPublic,
    responses=problem_responses(401, 403, 404, 422, described={404: _NOT_FOUND}),
)
async def get_user(session: SessionDep, principal: AccountAdmin, user_id: uuid.UUID) -> UserPublic:
    """One account of your county."""
    return _public(await service.get_user(session, actor=principal, user_id=user_id))


@router.patch(
    "/{user_id}",
    response_model=UserPublic,
    responses=problem_responses(
        401,
        403,
        404,
        409,
        422,
        described={
            404: _NOT_FOUND,
            409: "You cannot disable your own account (`cannot_disable_yourself`)",
        },
    ),
)
async def update_user(
    session: SessionDep, principal: AccountAdmin, user_id: uuid.UUID, data: UserUpdate
) -> UserPublic:
    """Rename an account, or disable it (its logins end at once) or enable it again."""
    return _public(await service.update_user(session, actor=principal, user_id=user_id, data=data))


@router.put(
    "/{user_id}/regions",
    response_model=UserPublic,
    responses=problem_responses(401, 403, 404, 422, described={404: _NOT_FOUND, 422: _REGIONS_422}),
)
async def put_user_regions(
    session: SessionDep, principal: AccountAdmin, user_id: uuid.UUID, data: UserRegionsUpdate
) -> UserPublic:
    """Replace an account's villages, town or county; its logins go on with the new ones."""
    return _public(
        await service.put_user_regions(
            session, actor=principal, user_id=user_id, regions=data.regions
        )
    )


@router.post(
    "/{user_id}/password",
    response_model=UserPublic,
    responses=problem_responses(401, 403, 404, 422, described={404: _NOT_FOUND}),
)
async def reset_user_password(
    session: SessionDep, principal: AccountAdmin, user_id: uuid.UUID, data: PasswordReset
) -> UserPublic:
    """Set a new password for an account; every login it has ends at once."""
    return _public(
        await service.reset_password(
            session, actor=principal, user_id=user_id, password=data.password
        )
    )
