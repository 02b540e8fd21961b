"""/devices: the phones of the caller, or of the county for its admin."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.auth.deps import AccountAdmin, SyncReader
from app.core.base import utcnow
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.pagination import Page, PageDep
from app.devices import service
from app.devices.schemas import DevicePublic, device_public

router = APIRouter(prefix="/devices", tags=["devices"])

DeviceId = Annotated[
    str,
    Path(
        pattern=f"^{service.DEVICE_ID_PATTERN}$",
        description="The id the app sent as `device_id` at login.",
        examples=["android-7f3a9c"],
    ),
]


@router.get("", response_model=Page[DevicePublic], responses=problem_responses(401, 403, 422))
async def list_devices(
    session: SessionDep,
    principal: SyncReader,
    page: PageDep,
    user_id: Annotated[
        uuid.UUID | None, Query(description="Only the devices this user last used.")
    ] = None,
) -> Page[DevicePublic]:
    """List phones by device id: the county's for its admin, the caller's own for others.

    An API client granted `sync:read` sees the phones of the users of its region.
    """
    records, cursor = await service.list_devices(
        session, principal=principal, page=page, user_id=user_id
    )
    return Page(items=[device_public(r.device, r.user) for r in records], next_cursor=cursor)


@router.post(
    "/{device_id}/revoke",
    response_model=DevicePublic,
    responses=problem_responses(401, 403, 404, 422),
)
async def revoke_device(
    session: SessionDep, principal: AccountAdmin, device_id: DeviceId
) -> DevicePublic:
    """Revoke a lost phone (county admin): its logins end and it cannot log in again.

    Its refresh tokens are refused, and so are its access tokens from the next request on.
    Revoking a revoked device again changes nothing and answers the device.
    """
    record = await service.revoke_device(
        session, principal=principal, device_id=device_id, now=utcnow()
    )
    return device_public(record.device, record.user)
