"""Household conflicts from offline edits: listed for the county, resolved by a person."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal, region_filter
from app.core.base import utcnow
from app.core.errors import InvalidInput, field_errors, invalid_fields
from app.core.i18n import Text
from app.core.pagination import PageParams, paginate
from app.households import id_numbers
from app.households import service as households_service
from app.households.privacy import scrub
from app.households.schemas import HouseholdUpdate
from app.sync.errors import ConflictNotFound, ConflictResolved
from app.sync.models import SyncConflict
from app.sync.schemas import ConflictPublic, ConflictResolve, Resolution, UserRef
from app.users.models import User

# Household fields an edit may carry that are personal data.
_PERSONAL = {"phone": id_numbers.mask_phone}


def _scrubbed(value: Any) -> Any:
    """Text anywhere in a value (a pairing cadre's unit, a group name) with numbers masked."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [_scrubbed(item) for item in value]
    if isinstance(value, dict):
        return {name: _scrubbed(item) for name, item in value.items()}
    return value


def masked(values: dict[str, Any] | None, *, reveal: bool) -> dict[str, Any] | None:
    """Field values as a caller may see them: without pii:read, phones masked and ID and mobile
    numbers in any other text masked."""
    if values is None or reveal:
        return values
    return {
        name: _PERSONAL[name](value) if name in _PERSONAL and value else _scrubbed(value)
        for name, value in values.items()
    }


async def user_refs(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, UserRef]:
    """The people a list names (conflicts' and held records' authors), in one query."""
    if not ids:
        return {}
    return {
        u.id: UserRef(id=u.id, username=u.username, display_name=u.display_name, role=u.role)
        for u in await session.scalars(select(User).where(col(User.id).in_(ids)))
    }


def _public(c: SyncConflict, *, principal: Principal, user: UserRef) -> ConflictPublic:
    """A conflict as `principal` may see it: without pii:read, personal data masked, except the
    values the caller sent herself (her own edit is hers to see)."""
    reveal = principal.may_see_pii(c.village_code)
    return ConflictPublic(
        **c.model_dump(
            exclude={
                "user_id",
                "client_hash",
                "updated_at",
                "client_changes",
                "server_values",
                "resolved_values",
            }
        ),
        client_changes=masked(c.client_changes, reveal=reveal or c.user_id == principal.id) or {},
        server_values=masked(c.server_values, reveal=reveal) or {},
        resolved_values=masked(c.resolved_values, reveal=reveal),
        user=user,
    )


async def publics(
    session: AsyncSession, conflicts: list[SyncConflict], *, principal: Principal
) -> list[ConflictPublic]:
    users = await user_refs(session, {c.user_id for c in conflicts})
    return [_public(c, principal=principal, user=users[c.user_id]) for c in conflicts]


async def list_conflicts(
    session: AsyncSession,
    *,
    principal: Principal,
    region: str | None,
    status: str,
    page: PageParams,
) -> tuple[list[ConflictPublic], str | None]:
    """Conflicts in the caller's villages (and `region`), oldest first."""
    stmt = select(SyncConflict).where(
        principal.within(col(SyncConflict.village_code)), col(SyncConflict.status) == status
    )
    if region is not None:
        stmt = stmt.where(region_filter(region, col(SyncConflict.village_code)))
    rows, cursor = await paginate(
        session, stmt, keys=[col(SyncConflict.created_at), col(SyncConflict.id)], page=page
    )
    return await publics(session, rows, principal=principal), cursor


def _values_of(data: ConflictResolve, conflict: SyncConflict) -> dict[str, Any]:
    if data.choice is Resolution.server:
        if data.values is not None:
            raise InvalidInput.field("body.values", Text("values go with choice merged only"))
        return {}
    if data.choice is Resolution.client:
        if data.values is not None:
            raise InvalidInput.field("body.values", Text("values go with choice merged only"))
        return dict(conflict.client_changes)
    if not data.values:
        raise InvalidInput.field(
            "body.values", Text("choice merged needs the values to set"), type="missing"
        )
    try:
        update = HouseholdUpdate.model_validate(data.values)
    except ValidationError as exc:
        raise invalid_fields(field_errors(exc, "body.values.")) from None
    return update.model_dump(exclude_unset=True, mode="json")


async def resolve_conflict(
    session: AsyncSession,
    *,
    principal: Principal,
    conflict_id: uuid.UUID,
    data: ConflictResolve,
) -> tuple[ConflictPublic, int]:
    """Close a conflict with the server's, the phone's or merged values; returns it and the
    household's version afterwards."""
    conflict = await session.scalar(
        select(SyncConflict)
        .where(
            col(SyncConflict.id) == conflict_id, principal.within(col(SyncConflict.village_code))
        )
        .with_for_update()
    )
    if conflict is None:
        raise ConflictNotFound(
            Text(
                "conflict {conflict_id} does not exist or is not visible to you",
                conflict_id=conflict_id,
            )
        )
    if conflict.status != "open":
        raise ConflictResolved(
            Text(
                "conflict {conflict_id} was resolved ({conflict_resolution}) at "
                "{conflict_resolved_at}",
                conflict_id=conflict_id,
                conflict_resolution=conflict.resolution,
                conflict_resolved_at=conflict.resolved_at,
            )
        )
    values = _values_of(data, conflict)
    household = await households_service.get_household(
        session, principal=principal, household_id=conflict.household_id, for_update=True
    )
    prefix = "body.values." if data.choice is Resolution.merged else "body."
    await households_service.apply_changes(
        session, household, values, principal=principal, field_prefix=prefix
    )
    now = utcnow()
    conflict.status = "resolved"
    conflict.resolution = data.choice.value
    conflict.resolved_values = values
    conflict.resolved_by = principal.id
    conflict.resolved_at = now
    conflict.updated_at = now
    await session.flush()
    return (await publics(session, [conflict], principal=principal))[0], household.version
