"""The audit log: sign-ins as they happen, the county admin's list, the check of the chain."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.audit import capture
from app.audit.models import AuditEntry
from app.auth.events import SignInAttempted
from app.auth.principal import Principal, region_filter
from app.core.i18n import Text
from app.core.pagination import PageParams, paginate
from app.regions.errors import RegionNotFound
from app.users.models import User, UserRegion

SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in_failed"


async def on_sign_in(session: AsyncSession, event: SignInAttempted) -> None:
    """Note a sign-in attempt: the account (if one matches), device, address and outcome.

    A username that names no account is kept masked: it may be a password typed in the wrong
    field."""
    account: ColumnElement[bool] | None = None
    if event.user_id is not None:
        account = col(User.id) == event.user_id
    elif event.username:
        account = col(User.username) == event.username
    found = None
    if account is not None:
        found = (
            await session.execute(
                select(col(User.id), col(User.role), func.min(col(UserRegion.region_code)))
                .outerjoin(UserRegion, col(UserRegion.user_id) == col(User.id))
                .where(account)
                .group_by(col(User.id), col(User.role))
            )
        ).first()
    changes: dict[str, str | None] = {
        "grant_type": event.grant_type,
        "outcome": event.error or "ok",
    }
    if found is None and event.username:
        changes["username"] = capture.mask_name(event.username)
    await session.run_sync(
        capture.note,
        {
            "actor_id": found[0] if found else None,
            "actor_role": found[1] if found else None,
            "device_id": event.device_id,
            "client_address": event.client_address,
            "action": SIGN_IN if event.error is None else SIGN_IN_FAILED,
            "entity_type": "user" if found else None,
            "entity_id": str(found[0]) if found else None,
            "region_code": found[2] if found else None,
            "changes": changes,
        },
    )


@dataclass(frozen=True)
class AuditFilters:
    region: str | None = None
    actor_id: uuid.UUID | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_entries(
    session: AsyncSession, *, principal: Principal, filters: AuditFilters, page: PageParams
) -> tuple[list[AuditEntry], str | None]:
    """Entries of the caller's regions (under `region`), newest first."""
    stmt = select(AuditEntry).where(principal.within(col(AuditEntry.region_code)))
    if filters.region is not None:
        under = region_filter(filters.region, col(AuditEntry.region_code))
        if not principal.covers(filters.region):
            raise RegionNotFound(
                Text(
                    "region {region} does not exist or is not visible to you",
                    region=filters.region,
                )
            )
        stmt = stmt.where(under)
    if filters.actor_id is not None:
        stmt = stmt.where(col(AuditEntry.actor_id) == filters.actor_id)
    if filters.action is not None:
        stmt = stmt.where(col(AuditEntry.action) == filters.action)
    if filters.since is not None:
        stmt = stmt.where(col(AuditEntry.at) >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(col(AuditEntry.at) < filters.until)
    return await paginate(session, stmt, keys=[col(AuditEntry.seq)], page=page, descending=True)
