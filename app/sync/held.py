"""Held records: offline work for a village taken from its author is kept, never thrown away.

A batch record for a household its author may no longer write, because the household's village
was taken from them (app/users keeps the regions an account no longer holds), is stored here
whole instead of being refused, and answered `held` with the reason. The county admin lists
them, accepts one (stored through the normal write rule under an author who works there now)
or discards it with a reason. Any other household the author cannot see (another county, a
village never theirs, an unknown id) is refused as before: existence is not leaked.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import ROLE_SCOPES, Principal, region_filter
from app.core.base import utcnow
from app.core.errors import InvalidInput, field_errors, invalid_fields
from app.core.i18n import Text
from app.core.pagination import PageParams, paginate
from app.households.models import Household
from app.records import service as records_service
from app.records.vocabulary import Outcome, RecordType
from app.regions import codes
from app.regions.models import Region
from app.sync.conflicts import user_refs
from app.sync.errors import HeldRecordClash, HeldRecordDecided, HeldRecordNotFound
from app.sync.held_schemas import (
    HELD_REASON_LABELS,
    HeldAccepted,
    HeldPublic,
    HeldReason,
    HeldStatus,
)
from app.sync.models import HeldRecord, SyncBatch
from app.sync.schemas import ItemStatus, SyncItem
from app.users.models import Role, User, UserRegion

# Who may be named as the author a held record is accepted under (beside the admin).
_AUTHORS = (Role.officer, Role.first_secretary)


async def hold(
    session: AsyncSession,
    *,
    principal: Principal,
    ended: list[str],
    item: SyncItem,
    record_type: RecordType,
    record_id: uuid.UUID,
    revision: int,
    household_id: uuid.UUID,
    batch: SyncBatch,
) -> HeldRecord | None:
    """Hold a batch record whose household lies in a village taken from its author (`ended`:
    the regions the author no longer holds); None when it is not such a record.

    The same revision of the same record sent again (a retry, another batch) finds the row
    already held."""
    household = await session.get(Household, household_id)
    if household is None or not any(codes.is_within(household.village_code, c) for c in ended):
        return None
    existing = await session.scalar(
        select(HeldRecord).where(
            col(HeldRecord.record_type) == record_type.value,
            col(HeldRecord.record_id) == record_id,
            col(HeldRecord.revision) == revision,
        )
    )
    if existing is not None:
        return existing if existing.author_id == principal.id else None
    region = await session.get(Region, household.village_code)
    village = f"{region.name}（{household.village_code}）" if region else household.village_code
    row = HeldRecord(
        record_type=record_type.value,
        record_id=record_id,
        revision=revision,
        item=item.model_dump(mode="json"),
        household_id=household.id,
        village_code=household.village_code,
        author_id=principal.id,
        device_id=batch.device_id,
        batch_id=batch.id,
        reason_code=HeldReason.village_unassigned.value,
        reason=HELD_REASON_LABELS[HeldReason.village_unassigned].format(village=village),
    )
    session.add(row)
    # Flushed now: the same record twice in a batch finds it, and a row another delivery
    # stored meanwhile fails here (the batch is then applied again, and finds it).
    await session.flush()
    return row


def held_result(item_type: str, row: HeldRecord) -> dict[str, Any]:
    """A batch item's result for a held record."""
    return {
        "type": item_type,
        "id": str(row.record_id),
        "status": ItemStatus.held.value,
        "code": row.reason_code,
        "retryable": False,
        "detail": f"household {row.household_id} is in a village no longer assigned to you: "
        "the record is held for the county admin, do not send it again",
        "reason": row.reason,
        "held_id": str(row.id),
    }


async def publics(session: AsyncSession, rows: list[HeldRecord]) -> list[HeldPublic]:
    users = await user_refs(session, {r.author_id for r in rows})
    return [
        HeldPublic(
            **r.model_dump(exclude={"item", "author_id"}),
            data=r.item.get("data") or {},
            author=users[r.author_id],
        )
        for r in rows
    ]


async def list_held(
    session: AsyncSession,
    *,
    principal: Principal,
    region: str | None,
    status: HeldStatus,
    page: PageParams,
) -> tuple[list[HeldPublic], str | None]:
    """Held records of the caller's county (and `region`), oldest first."""
    stmt = select(HeldRecord).where(
        principal.within(col(HeldRecord.village_code)), col(HeldRecord.status) == status.value
    )
    if region is not None:
        stmt = stmt.where(region_filter(region, col(HeldRecord.village_code)))
    rows, cursor = await paginate(
        session, stmt, keys=[col(HeldRecord.created_at), col(HeldRecord.id)], page=page
    )
    return await publics(session, rows), cursor


async def _undecided(
    session: AsyncSession, *, principal: Principal, held_id: uuid.UUID
) -> HeldRecord:
    row = await session.scalar(
        select(HeldRecord)
        .where(col(HeldRecord.id) == held_id, principal.within(col(HeldRecord.village_code)))
        .with_for_update()
    )
    if row is None:
        raise HeldRecordNotFound(
            Text("held record {held_id} does not exist or is not visible to you", held_id=held_id)
        )
    if row.status != HeldStatus.held.value:
        raise HeldRecordDecided(
            Text(
                "held record {held_id} was already {held_status} at {held_decided_at}",
                held_id=held_id,
                held_status=row.status,
                held_decided_at=row.decided_at,
            )
        )
    return row


async def _author(
    session: AsyncSession, *, principal: Principal, author_id: uuid.UUID | None, village: str
) -> Principal:
    """Whom the record is stored under: the admin, or a person who works in the village now."""
    if author_id is None or author_id == principal.id:
        return principal
    rows = (
        await session.execute(
            select(User, UserRegion.region_code)
            .join(UserRegion, col(UserRegion.user_id) == col(User.id))
            .where(col(User.id) == author_id, col(User.is_active).is_(True))
        )
    ).all()
    regions = tuple(sorted(code for _, code in rows))
    user = rows[0][0] if rows else None
    if (
        user is None
        or user.role not in {r.value for r in _AUTHORS}
        or not any(codes.is_within(village, own) for own in regions)
    ):
        raise InvalidInput.field(
            "body.author_id",
            Text(
                "must be an active officer or first secretary assigned village {village}",
                village=village,
            ),
            type="not_assigned",
        )
    role = Role(user.role)
    return Principal(
        user=user, role=role, region_codes=regions, scopes=frozenset(ROLE_SCOPES[role])
    )


async def accept_held(
    session: AsyncSession,
    *,
    principal: Principal,
    held_id: uuid.UUID,
    author_id: uuid.UUID | None,
) -> HeldAccepted:
    """Store a held record under `author_id` (default: the admin) by the normal write rule."""
    row = await _undecided(session, principal=principal, held_id=held_id)
    author = await _author(
        session, principal=principal, author_id=author_id, village=row.village_code
    )
    kind = records_service.KINDS[RecordType(row.record_type)]
    try:
        data = kind.write.model_validate({**(row.item.get("data") or {}), "revision": row.revision})
    except ValidationError as exc:
        raise invalid_fields(field_errors(exc, "item.data.")) from None
    # Stamped with the phone it was recorded on.
    applied = await records_service.apply_record(
        session,
        principal=replace(author, device_id=row.device_id),
        kind=kind,
        record_id=row.record_id,
        data=data,
    )
    if applied.outcome in (Outcome.conflict, Outcome.stale):
        raise HeldRecordClash(
            Text(
                "the server holds {record_type} {record_id} at revision {stored_revision} with "
                "other content; nothing was stored and the record stays held (discard it, or "
                "have it entered again)",
                record_type=row.record_type,
                record_id=row.record_id,
                stored_revision=applied.record.revision,
            ),
            outcome=applied.outcome.value,
            version=applied.record.revision,
        )
    now = utcnow()
    row.status = HeldStatus.accepted.value
    row.accepted_author_id = author.id
    row.decided_by = principal.id
    row.decided_at = now
    await session.flush()
    [public] = await publics(session, [row])
    return HeldAccepted(held=public, outcome=applied.outcome.value, version=applied.record.revision)


async def discard_held(
    session: AsyncSession, *, principal: Principal, held_id: uuid.UUID, reason: str
) -> HeldPublic:
    """Close a held record without storing it; the reason is kept with it."""
    row = await _undecided(session, principal=principal, held_id=held_id)
    row.status = HeldStatus.discarded.value
    row.note = reason
    row.decided_by = principal.id
    row.decided_at = utcnow()
    await session.flush()
    [public] = await publics(session, [row])
    return public
