"""Region figures kept per village between requests, computed again only where something changed.

A region's figures are sums over its villages (`app.progress.region.Sums`), so a county's are
its villages' added up. Each village's sums are kept in the process with the key they were
computed under; a request reads every village's current key in one small query and computes
again, in one grouped query for all of them, only the villages whose key moved. A county of
50,000 households then costs its few hundred keys, not its million visits.

A village's key changes whenever anything its figures depend on may have:
- its change log (`app.sync.changelog`): every write of its households, their members,
  records, monitoring cases and alerts moves a row of the village there. The key is the
  village's latest position at or before the log's watermark: a transaction that commits
  later than another that started after it is counted once the watermark passes it (the
  delay is the one the change feed has).
- photos arriving (`PhotoStored`): they clear "photos missing"; the villages of the households
  whose records name the photo get their stamp moved.
- thresholds and income exclusions, anywhere (a few rows: their count and latest change).
- the hour: visit windows, overdue measures and ages move with time.

A transaction that wrote itself neither reads nor keeps figures (what it sees is not
committed). Each API process keeps its own figures; nothing is shared but the database.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import String, and_, cast, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.principal import Principal, within_regions
from app.households.models import Household
from app.monitoring.models import IncomeExclusion
from app.photos.events import PhotoStored
from app.photos.models import PhotoRef
from app.progress.models import VillageStamp
from app.progress.region import Sums, child_of, sums_by_child
from app.regions import codes
from app.regions.models import Region
from app.sync import changelog
from app.sync.models import Change
from app.thresholds.models import PovertyThreshold

# Villages kept per database, least recently used dropped first: about 2 KB each.
MAX_VILLAGES = 20_000
# Villages computed in one grouped query.
_CHUNK = 500
_WROTE = "fieldsync_figures_stamped"  # session.info: this transaction moved a stamp


@dataclass(frozen=True)
class _Kept:
    key: tuple[Any, ...]
    sums: Sums
    computed_at: datetime


_KEPT: WeakKeyDictionary[Engine, OrderedDict[str, _Kept]] = WeakKeyDictionary()
# Per region and level: the villages' keys, the children's sums, the oldest time.
_Summed = OrderedDict[tuple[str, codes.Level], tuple[Any, dict[str, Sums], datetime]]
_SUMMED: WeakKeyDictionary[Engine, _Summed] = WeakKeyDictionary()
MAX_REGIONS = 2_000


def _engine(session: AsyncSession) -> Engine:
    bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind


def _kept(session: AsyncSession) -> OrderedDict[str, _Kept]:
    """The village figures kept for the session's database."""
    return _KEPT.setdefault(_engine(session), OrderedDict())


def _summed(session: AsyncSession) -> _Summed:
    """The children's sums kept for the session's database."""
    return _SUMMED.setdefault(_engine(session), OrderedDict())


def _usable(session: AsyncSession) -> bool:
    """Figures are read and kept only in transactions that wrote nothing they depend on."""
    return not (changelog.wrote_changes(session) or session.info.get(_WROTE))


def _global_key() -> list[Any]:
    """Thresholds and income exclusions, anywhere: their count and their latest change."""
    return [
        select(func.count()).select_from(PovertyThreshold).scalar_subquery(),
        select(func.max(col(PovertyThreshold.updated_at))).scalar_subquery(),
        select(func.count()).select_from(IncomeExclusion).scalar_subquery(),
        select(func.max(col(IncomeExclusion.updated_at))).scalar_subquery(),
    ]


async def _village_keys(session: AsyncSession, code: str) -> dict[str, tuple[Any, ...]]:
    """Each village of `code`: its latest change-log position, its photo stamp, and what every
    village depends on (in one statement, after the watermark's)."""
    latest = await changelog.watermark(session)
    region = col(Region.code)
    last_change = (
        select(cast(col(Change.txid), String) + literal(":") + cast(col(Change.seq), String))
        .where(col(Change.region_code) == region, changelog.upto(latest))
        .order_by(col(Change.txid).desc(), col(Change.seq).desc())
        .limit(1)
        .scalar_subquery()
    )
    stamp = (
        select(col(VillageStamp.photos))
        .where(col(VillageStamp.village_code) == region)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(region, last_change, stamp, *_global_key()).where(
            within_regions([code], region), col(Region.level) == int(codes.Level.village)
        )
    )
    return {row[0]: tuple(row[1:]) for row in rows}


async def child_sums(
    session: AsyncSession, principal: Principal, code: str, level: codes.Level, now: datetime
) -> tuple[dict[str, Sums], datetime] | None:
    """The sums of each child region of `code` (as `region.child_of` places villages) and when
    the oldest of them was computed; None when this transaction may not use kept figures. The
    caller covers `code` (all its villages). While no village's key moved, the children's sums
    themselves are kept too."""
    if not _usable(session):
        return None
    hour = now.astimezone(UTC).strftime("%Y%m%d%H")
    keys = {v: (*key, hour) for v, key in (await _village_keys(session, code)).items()}
    summed = _summed(session)
    signature = tuple(sorted(keys.items()))
    found = summed.get((code, level))
    if found is not None and found[0] == signature:
        return found[1], found[2]
    by_village, oldest = await _village_sums(session, principal, code, keys, now)
    by_child: dict[str, Sums] = {}
    for village, sums in by_village.items():
        by_child.setdefault(child_of(level, code, village), Sums()).add(sums)
    summed[(code, level)] = (signature, by_child, oldest)
    while len(summed) > MAX_REGIONS:
        summed.popitem(last=False)
    return by_child, oldest


async def _village_sums(
    session: AsyncSession,
    principal: Principal,
    code: str,
    keys: dict[str, tuple[Any, ...]],
    now: datetime,
) -> tuple[dict[str, Sums], datetime]:
    """The sums of each village of `keys`, kept or computed again, and the oldest's time."""
    kept = _kept(session)
    found: dict[str, _Kept] = {}
    stale: list[str] = []
    for village, key in keys.items():
        entry = kept.get(village)
        if entry is not None and entry.key == key:
            kept.move_to_end(village)
            found[village] = entry
        else:
            stale.append(village)
    for start in range(0, len(stale), _CHUNK):
        chunk = stale[start : start + _CHUNK]
        computed = await sums_by_child(
            session,
            level=codes.Level.town,
            code=code,
            principal=principal,
            now=now,
            villages=chunk,
        )
        for village in chunk:
            entry = _Kept(keys[village], computed.get(village, Sums()), now)
            kept[village] = found[village] = entry
            kept.move_to_end(village)
    while len(kept) > MAX_VILLAGES:
        kept.popitem(last=False)
    oldest = min((e.computed_at for e in found.values()), default=now)
    # Not copied: the caller only adds them into sums of its own.
    return {v: e.sums for v, e in found.items()}, oldest


_STAMP = {
    name: dialect.insert(VillageStamp)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


async def on_photo_stored(session: AsyncSession, event: PhotoStored) -> None:
    """Subscriber: a photo arrived; the villages whose records name it get their stamp moved."""
    villages = list(
        await session.scalars(
            select(col(Household.village_code))
            .join(PhotoRef, and_(col(PhotoRef.household_id) == col(Household.id)))
            .where(col(PhotoRef.sha256) == event.sha256)
            .distinct()
            .order_by(col(Household.village_code))
        )
    )
    if not villages:
        return
    statement = _STAMP[session.get_bind().dialect.name]
    statement = statement.values([{"village_code": v, "photos": 1} for v in villages])
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["village_code"],
            set_={"photos": col(VillageStamp.photos) + 1},
        )
    )
    session.info[_WROTE] = True
