"""/audit: the county's audit log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.audit import service
from app.audit.schemas import AuditAction, AuditEntryPublic
from app.auth.deps import AccountAdmin
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.pagination import Page, PageDep
from app.core.types import UtcDatetime
from app.regions.codes import CODE_PATTERN

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get(
    "", response_model=Page[AuditEntryPublic], responses=problem_responses(401, 403, 404, 422)
)
async def list_audit_entries(
    session: SessionDep,
    principal: AccountAdmin,
    page: PageDep,
    region: Annotated[
        str | None,
        Query(
            max_length=21,
            pattern=CODE_PATTERN,
            description="A division code of your county: entries under it.",
            examples=["371522101000"],
        ),
    ] = None,
    actor_id: Annotated[uuid.UUID | None, Query(description="Only this user's entries.")] = None,
    action: AuditAction | None = None,
    since: Annotated[
        UtcDatetime | None, Query(description="Entries at or after this time (with offset).")
    ] = None,
    until: Annotated[
        UtcDatetime | None, Query(description="Entries before this time (with offset).")
    ] = None,
) -> Page[AuditEntryPublic]:
    """List the audit log of your county, newest first (county admin).

    Every write (households, members, records, monitoring, accounts, clients, webhooks, devices,
    photos) and every sign-in, refused ones included: who, from which device and address, when,
    and what changed, with personal data masked. Each entry carries the hash of the one before;
    `fieldsync audit verify` checks the chain.
    """
    filters = service.AuditFilters(
        region=region,
        actor_id=actor_id,
        action=action.value if action else None,
        since=since,
        until=until,
    )
    rows, cursor = await service.list_entries(
        session, principal=principal, filters=filters, page=page
    )
    return Page(items=[AuditEntryPublic.model_validate(r) for r in rows], next_cursor=cursor)
