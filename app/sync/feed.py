"""The change feed: everything a phone needs about its villages since its cursor.

The feed reads `sync_change` (see changelog.py) in position order, up to the log's watermark:
every change at or before it is committed and no later commit can land there, so a page that
ends at position n has seen everything up to n: no change is skipped, and none is returned
twice, while writers keep writing in parallel.

A cursor is signed and bound to its user and to the villages it was issued for. When the
caller's villages change (a reassignment), the next pages first carry `delete` entries for
everything in the villages that were lost, then everything already recorded in the villages
that were gained, then the feed goes on as before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import and_, not_, or_, union_all
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from app.auth.principal import Principal, has_prefix, within_regions
from app.core.base import utcnow
from app.core.config import Settings
from app.core.i18n import Text
from app.devices.service import touch_device
from app.households.models import Household
from app.households.schemas import household_public
from app.households.service import members_of
from app.monitoring import alerts as monitoring_alerts
from app.monitoring.models import MonitoringAlert
from app.records import service as records_service
from app.records.vocabulary import RecordType
from app.regions import codes
from app.sync import changelog
from app.sync.changelog import Position
from app.sync.errors import CursorGone
from app.sync.models import Change, ChangeCounter

log = logging.getLogger("fieldsync.sync")

START: Position = (0, 0)
_FRESH = Text("start a fresh download: call again without a cursor")


@dataclass
class FeedState:
    """What a cursor remembers (kept short: it travels with every request)."""

    u: str  # the user's id
    r: list[str]  # the regions the phone holds
    p: Position = START  # the last position delivered
    # After a reassignment: regions held before it, and where the feed stood then. Below `s`,
    # only the regions that were gained are delivered (the rest the phone already has).
    a: list[str] | None = None
    s: Position | None = None
    # After a reassignment: the regions whose objects are being deleted, and how far.
    x: list[str] | None = None
    q: Position = START
    # Cursor format: 2 holds positions (txid, seq); 1 held sequence numbers, which are the
    # positions (0, seq) of the log before PostgreSQL wrote in parallel.
    v: int = field(default=2)


def _position(value: Any) -> Position:
    if isinstance(value, int):
        return (0, value)
    txid, seq = value
    if not isinstance(txid, int) or not isinstance(seq, int):
        raise TypeError("a position is two integers")
    return (txid, seq)


def _key(settings: Settings) -> bytes:
    return hashlib.sha256(b"fieldsync sync cursor\0" + settings.signing_key.encode()).digest()


def encode(state: FeedState, settings: Settings) -> str:
    payload = {k: v for k, v in asdict(state).items() if v is not None}
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(_key(settings), raw, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")


def decode(cursor: str, settings: Settings) -> FeedState:
    try:
        blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        mac, raw = blob[:16], blob[16:]
        if not hmac.compare_digest(
            mac, hmac.new(_key(settings), raw, hashlib.sha256).digest()[:16]
        ):
            raise ValueError("bad signature")
        state = FeedState(**json.loads(raw))
        state.p, state.q = _position(state.p), _position(state.q)
        state.s = _position(state.s) if state.s is not None else None
    except (ValueError, TypeError):
        raise CursorGone(
            Text("this cursor was not issued by this server; {fresh}", fresh=_FRESH)
        ) from None
    return state


def _state_for(
    principal: Principal,
    cursor: str | None,
    *,
    horizon: Position,
    latest: Position,
    settings: Settings,
) -> FeedState:
    regions = sorted(principal.region_codes)
    if cursor is None:
        # A first download is a catch-up from holding nothing: what is stored up to `latest`,
        # without the delete entries (there is nothing to delete yet), then the feed as usual.
        return FeedState(u=principal.id.hex, r=regions, a=[], s=latest)
    state = decode(cursor, settings)
    if state.u != principal.id.hex:
        raise CursorGone(Text("this cursor belongs to another user; {fresh}", fresh=_FRESH))
    position = state.s if state.s is not None else state.p
    if START < position < horizon:
        raise CursorGone(
            Text(
                "this cursor is older than the {change_retention_days} days of "
                "deletions the server keeps; {fresh}",
                change_retention_days=settings.change_retention_days,
                fresh=_FRESH,
            )
        )
    if state.r == regions:
        return state
    if state.x is not None or state.s is not None:
        raise CursorGone(
            Text("your villages changed again during a catch-up; {fresh}", fresh=_FRESH)
        )
    return FeedState(u=state.u, r=regions, p=START, a=state.r, s=state.p, x=state.r, q=START)


def _in_region(code: str) -> Any:
    """Change rows of one region: a village by equality (households live in villages), a town
    or county by prefix."""
    level = codes.level_of(code)
    if level in (codes.Level.village, codes.Level.natural_village):
        return col(Change.region_code) == code
    return has_prefix(col(Change.region_code), codes.prefix_of(code))


async def _page_rows(
    session: AsyncSession,
    regions: list[str],
    conditions: list[Any],
    after: Position,
    limit: int,
) -> list[Change]:
    """The next `limit` rows after `after` in `regions`, in position order.

    One index range per region, merged: a village's rows are found through (region_code, txid,
    seq) however many other villages' rows lie between them.
    """
    # A village inside another region of the list would come twice: keep the outer one.
    outer = [
        code
        for code in regions
        if not any(other != code and codes.is_within(code, other) for other in regions)
    ]
    branches = [
        select(Change)
        .where(_in_region(code), changelog.after(after), *conditions)
        .order_by(col(Change.txid), col(Change.seq))
        .limit(limit)
        for code in outer
    ]
    if not branches:
        return []
    if len(branches) == 1:
        return list(await session.scalars(branches[0]))
    merged = union_all(*(select(branch.subquery()) for branch in branches)).subquery()
    row = aliased(Change, merged)
    return list(
        await session.scalars(select(row).order_by(merged.c.txid, merged.c.seq).limit(limit))
    )


async def _household_data(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, str, dict[str, Any]]]:
    households = list(await session.scalars(select(Household).where(col(Household.id).in_(ids))))
    members = await members_of(session, [h.id for h in households])
    return {
        h.id: (
            h.version,
            h.village_code,
            household_public(
                h, members.get(h.id, []), reveal_pii=principal.may_see_pii(h.village_code)
            ).model_dump(mode="json"),
        )
        for h in households
    }


async def _record_data(
    session: AsyncSession, principal: Principal, record_type: str, ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, str, dict[str, Any]]]:
    kind = records_service.KINDS[RecordType(record_type)]
    rows = (
        await session.execute(
            select(kind.model, col(Household.village_code))
            .join(Household, col(Household.id) == col(kind.model.household_id))
            .where(col(kind.model.id).in_(ids))
        )
    ).all()
    by_village: dict[str, list[Any]] = defaultdict(list)
    for record, village in rows:
        by_village[village].append(record)
    out: dict[uuid.UUID, tuple[int, str, dict[str, Any]]] = {}
    for village, records in by_village.items():
        publics = await kind.publics(session, records, village, principal.may_see_pii(village))
        for record, public in zip(records, publics, strict=True):
            out[record.id] = (record.revision, village, public.model_dump(mode="json"))
    return out


async def _alert_data(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, str, dict[str, Any]]]:
    rows = await session.scalars(select(MonitoringAlert).where(col(MonitoringAlert.id).in_(ids)))
    by_village: dict[str, list[MonitoringAlert]] = defaultdict(list)
    for alert in rows:
        by_village[alert.village_code].append(alert)
    out: dict[uuid.UUID, tuple[int, str, dict[str, Any]]] = {}
    for village, alerts in by_village.items():
        publics = await monitoring_alerts.alert_publics(
            session, alerts, village, principal.may_see_pii(village)
        )
        for alert, public in zip(alerts, publics, strict=True):
            out[alert.id] = (alert.revision, village, public.model_dump(mode="json"))
    return out


async def _entries(
    session: AsyncSession, principal: Principal, rows: list[Change]
) -> list[dict[str, Any]]:
    """The feed entries of upsert rows, with each object as it is now.

    An object that changed again (or moved) after its row was read is left out here: its newer
    row has a higher number and comes on a later page, so it is delivered exactly once.
    """
    wanted: dict[str, list[uuid.UUID]] = defaultdict(list)
    for row in rows:
        wanted[row.entity_type].append(row.entity_id)
    current: dict[tuple[str, uuid.UUID], tuple[int, str, dict[str, Any]]] = {}
    for entity_type, ids in wanted.items():
        if entity_type == changelog.HOUSEHOLD:
            found = await _household_data(session, principal, ids)
        elif entity_type == changelog.MONITORING_ALERT:
            found = await _alert_data(session, principal, ids)
        else:
            found = await _record_data(session, principal, entity_type, ids)
        current.update({(entity_type, k): v for k, v in found.items()})
    entries = []
    for row in rows:
        now = current.get((row.entity_type, row.entity_id))
        if now is None or now[0] != row.version or now[1] != row.region_code:
            continue
        entries.append(_entry(row, data=now[2]))
    return entries


def _entry(row: Change, *, data: dict[str, Any] | None, op: str | None = None) -> dict[str, Any]:
    return {
        "type": row.entity_type,
        "id": str(row.entity_id),
        "op": op or row.op,
        "version": row.version,
        "household_id": str(row.household_id),
        "data": data,
    }


async def read_changes(
    session: AsyncSession,
    *,
    principal: Principal,
    cursor: str | None,
    limit: int,
    settings: Settings,
) -> dict[str, Any]:
    if principal.device_id is not None:
        # First, while the transaction's view is fresh (SQLite cannot upgrade a stale one).
        await _touch(session, principal)
    # First the watermark, then the rows (in later statements, which see all it vouches for).
    latest = await changelog.watermark(session)
    # On SQLite the watermark has just read the counter: no second query for its horizon.
    counter = await session.get(ChangeCounter, 1)
    horizon = (counter.horizon_txid, counter.horizon) if counter is not None else START
    state = _state_for(principal, cursor, horizon=horizon, latest=latest, settings=settings)
    readable = changelog.upto(latest)
    changes: list[dict[str, Any]] = []
    has_more = False

    if state.x is not None:
        lost = [
            not_(within_regions(state.r, col(Change.region_code))),
            # Deletions the phone applied before the reassignment are done: sent again, they
            # would remove what has since moved into a village it keeps.
            or_(col(Change.op) == changelog.UPSERT, changelog.after(state.s or START)),
            readable,
        ]
        rows = await _page_rows(session, state.x, lost, state.q, limit + 1)
        for row in rows[:limit]:
            changes.append(_entry(row, data=None, op=changelog.DELETE))
            state.q = changelog.position_of(row)
        if len(rows) > limit:
            has_more = True
        else:
            state.x, state.q = None, START

    room = limit - len(changes)
    if not has_more and room > 0:
        scope: list[Any] = [readable]
        if state.s is not None and state.a is not None:
            # Below `s`, a gained village's objects as they are now (its old deletions concern
            # nothing the phone holds, or something that moved into a village it holds).
            gained = and_(
                not_(within_regions(state.a, col(Change.region_code))),
                col(Change.op) == changelog.UPSERT,
            )
            scope.append(or_(changelog.after(state.s), gained))
        rows = await _page_rows(session, state.r, scope, state.p, room + 1)
        page = rows[:room]
        upserts = [row for row in page if row.op == changelog.UPSERT]
        data = {(e["type"], e["id"]): e for e in await _entries(session, principal, upserts)}
        for row in page:
            if row.op == changelog.DELETE:
                changes.append(_entry(row, data=None))
            elif (entry := data.get((row.entity_type, str(row.entity_id)))) is not None:
                changes.append(entry)
            state.p = changelog.position_of(row)
        has_more = len(rows) > room
        if state.s is not None and (state.p >= state.s or not has_more):
            # Caught up with where the feed stood at the reassignment: back to one stream.
            state.p = max(state.p, state.s)
            state.a, state.s = None, None
        if not has_more and state.s is None:
            # Nothing more in the caller's villages up to `latest`: the cursor moves there, so
            # that it stays newer than any later pruning of other villages' deletions.
            state.p = max(state.p, latest)
    elif room == 0:
        has_more = True

    return {"changes": changes, "next_cursor": encode(state, settings), "has_more": has_more}


async def _touch(session: AsyncSession, principal: Principal) -> None:
    """Note the pull on the device; best effort, never at the cost of the answer."""
    assert principal.device_id is not None
    try:
        async with session.begin_nested():
            await touch_device(
                session, principal.device_id, user_id=principal.id, synced=True, now=utcnow()
            )
    except OperationalError:
        log.info("device %s: last sync time not updated (database busy)", principal.device_id)
