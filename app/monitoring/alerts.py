"""Department alerts (部门筛查预警): import a department's list, show it, verify each alert.

A department's list (civil affairs, medical insurance …) is compared with the register by ID
number, through the members' keyed hash: each row that matches a current member of a household
under the county becomes an alert, which a cadre verifies on the next visit. Nothing is deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from app.audit import capture as audit_capture
from app.auth.principal import Principal, region_filter
from app.core.base import utcnow
from app.core.config import get_settings
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.i18n import Text
from app.core.money import fen_str
from app.core.pagination import PageParams, paginate
from app.households import id_numbers
from app.households.models import Household, Member
from app.households.privacy import scrub
from app.households.vocabulary import Status
from app.monitoring import alert_import
from app.monitoring.alert_import import AlertRow, Rejection
from app.monitoring.alerts_schemas import AlertImportReport, AlertPublic, AlertVerify, RejectedRow
from app.monitoring.models import MonitoringAlert, MonitoringCase
from app.monitoring.vocabulary import AlertKind, AlertOutcome, AlertStatus, Department
from app.regions import codes
from app.sync import changelog
from app.users.models import User

# Bound parameters per IN list and rows per multi-row INSERT: well inside SQLite's 32,766
# variables and PostgreSQL's 32,767 parameters (an alert row binds 20).
CHUNK = 500
# Rejected rows listed in an import's answer; `rejected` counts them all.
REJECTED_LISTED = 1000


class AlertNotFound(NotFound):
    code = "alert_not_found"
    title = "Alert not found"


class AlertAlreadyVerified(Conflict):
    code = "alert_already_verified"
    title = "Alert already verified"


def local_today() -> date:
    """Today where the county is (FIELDSYNC_REPORT_UTC_OFFSET_MINUTES: China Standard Time):
    a department's dates are local dates."""
    return (utcnow() + timedelta(minutes=get_settings().report_utc_offset_minutes)).date()


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- what callers see ------------------------------------------------------------------------


def _text(value: str | None, *, reveal_pii: bool) -> str | None:
    return value if reveal_pii or not value else scrub(value)


async def _publics(
    session: AsyncSession,
    rows: Sequence[MonitoringAlert],
    *,
    village_of: Callable[[MonitoringAlert], str],
    reveal_of: Callable[[str], bool],
) -> list[AlertPublic]:
    """The alerts as shown: each member's name and ID number loaded in one query per 500."""
    member_ids = sorted({row.member_id for row in rows})
    members: dict[uuid.UUID, tuple[str, str | None]] = {}
    for chunk in _chunks(member_ids):
        result = await session.execute(
            select(col(Member.id), col(Member.name), col(Member.id_number)).where(
                col(Member.id).in_(chunk)
            )
        )
        members.update({member_id: (name, number) for member_id, name, number in result})
    publics = []
    for row in rows:
        village = village_of(row)
        reveal = reveal_of(village)
        name, number = members.get(row.member_id, ("", None))
        publics.append(
            AlertPublic(
                id=row.id,
                county_code=row.county_code,
                village_code=village,
                household_id=row.household_id,
                member_id=row.member_id,
                member_name=name,
                member_id_number=(number if reveal else id_numbers.mask(number))
                if number
                else None,
                department=Department(row.department),
                kind=AlertKind(row.kind),
                amount=fen_str(row.amount) if row.amount is not None else None,
                occurred_on=row.occurred_on,
                note=_text(row.note, reveal_pii=reveal),
                status=AlertStatus(row.status),
                outcome=AlertOutcome(row.outcome) if row.outcome else None,
                case_id=row.case_id,
                verified_by=row.verified_by,
                verified_at=row.verified_at,
                verify_note=_text(row.verify_note, reveal_pii=reveal),
                revision=row.revision,
                imported_at=row.imported_at,
                pii_masked=not reveal,
            )
        )
    return publics


async def alert_publics(
    session: AsyncSession, rows: Sequence[Any], village_code: str, reveal_pii: bool
) -> list[AlertPublic]:
    """Alerts of one village as its readers see them (the change feed's form), in order.

    Without `reveal_pii` the member's ID number is masked and ID and mobile numbers in the notes
    are masked too. Member names and ID numbers come from one query (per 500 members).
    """
    return await _publics(
        session, rows, village_of=lambda _: village_code, reveal_of=lambda _: reveal_pii
    )


# --- reading ---------------------------------------------------------------------------------


def _visible(principal: Principal) -> Any:
    """Alerts of the caller's villages.

    An alert belongs to the village its household was in when it was imported (its own
    `village_code`): the village whose phones the change feed sends it to.
    """
    return select(MonitoringAlert).where(principal.within(col(MonitoringAlert.village_code)))


async def list_alerts(
    session: AsyncSession,
    *,
    principal: Principal,
    region: str | None,
    status: AlertStatus | None,
    kind: AlertKind | None,
    department: Department | None,
    page: PageParams,
) -> tuple[list[AlertPublic], str | None]:
    """Alerts of the caller's villages under `region`, newest import first."""
    stmt = _visible(principal)
    if region is not None:
        under = region_filter(region, col(MonitoringAlert.village_code))
        if not principal.covers(region):
            raise NotFound(
                Text("region {region} does not exist or is not visible to you", region=region)
            )
        stmt = stmt.where(under)
    if status is not None:
        stmt = stmt.where(col(MonitoringAlert.status) == status.value)
    if kind is not None:
        stmt = stmt.where(col(MonitoringAlert.kind) == kind.value)
    if department is not None:
        stmt = stmt.where(col(MonitoringAlert.department) == department.value)
    rows, cursor = await paginate(
        session,
        stmt,
        keys=[col(MonitoringAlert.imported_at), col(MonitoringAlert.id)],
        page=page,
        descending=True,
    )
    publics = await _publics(
        session,
        rows,
        village_of=lambda row: row.village_code,
        reveal_of=principal.may_see_pii,
    )
    return publics, cursor


async def get_alert(
    session: AsyncSession, *, principal: Principal, alert_id: uuid.UUID, for_update: bool = False
) -> MonitoringAlert:
    """An alert of the caller's villages, else AlertNotFound (existence not leaked)."""
    stmt = _visible(principal).where(col(MonitoringAlert.id) == alert_id)
    if for_update:
        stmt = stmt.with_for_update()
    alert: MonitoringAlert | None = await session.scalar(stmt)
    if alert is None:
        raise AlertNotFound(
            Text("alert {alert_id} does not exist or is not visible to you", alert_id=alert_id)
        )
    return alert


async def get_alert_public(
    session: AsyncSession, *, principal: Principal, alert_id: uuid.UUID
) -> AlertPublic:
    alert = await get_alert(session, principal=principal, alert_id=alert_id)
    village = alert.village_code
    return (await alert_publics(session, [alert], village, principal.may_see_pii(village)))[0]


# --- verifying -------------------------------------------------------------------------------


async def verify_alert(
    session: AsyncSession, *, principal: Principal, alert_id: uuid.UUID, data: AlertVerify
) -> AlertPublic:
    """Record what verifying an open alert found (核实); a verified alert stays as decided.

    Any caller with `monitoring:write` whose regions hold the household's village: its officers
    and first secretary, the town's staff, the county admin.
    """
    alert = await get_alert(session, principal=principal, alert_id=alert_id, for_update=True)
    village = alert.village_code
    if alert.status == AlertStatus.verified:
        raise AlertAlreadyVerified(
            Text(
                "alert {alert_id} was verified at {alert_verified_at} (outcome {alert_outcome})",
                alert_id=alert_id,
                alert_verified_at=alert.verified_at,
                alert_outcome=alert.outcome,
            ),
            outcome=alert.outcome,
        )
    if data.case_id is not None:
        case_household = await session.scalar(
            select(col(MonitoringCase.household_id)).where(col(MonitoringCase.id) == data.case_id)
        )
        if case_household != alert.household_id:
            raise InvalidInput.field(
                "body.case_id",
                Text(
                    "{case_id} is not a monitoring case of the alert's household",
                    case_id=data.case_id,
                ),
                type="case_of_other_household",
            )
    alert.status = AlertStatus.verified.value
    alert.outcome = data.outcome.value
    alert.case_id = data.case_id
    alert.verified_by = principal.id
    alert.verified_at = utcnow()
    alert.verify_note = data.note
    alert.revision += 1
    session.add(alert)
    await session.flush()
    return (await alert_publics(session, [alert], village, principal.may_see_pii(village)))[0]


# --- importing -------------------------------------------------------------------------------


@dataclass
class ImportCounts:
    """Where an import stands: rows read from the file, and what became of those checked."""

    read: int = 0
    rejected: int = 0
    checked: int = 0  # valid rows looked up so far (of `valid`)
    valid: int = 0
    matched: int = 0
    unmatched: int = 0
    duplicate: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    def report(self, county_code: str) -> AlertImportReport:
        return AlertImportReport(
            county_code=county_code,
            rows=self.read,
            matched=self.matched,
            unmatched=self.unmatched,
            duplicate=self.duplicate,
            rejected=self.rejected,
            rejected_rows=[
                RejectedRow(row=r.row, field=r.field, reason=r.reason)
                for r in self.rejections[:REJECTED_LISTED]
            ],
        )


ImportProgress = Callable[[ImportCounts], None]

_ALERT_KEY = ("county_code", "department", "id_number_hash", "kind", "occurred_on")
_ALERTS = SQLModel.metadata.tables[MonitoringAlert.__tablename__]


def _insert_new(dialect: Any) -> Any:
    # Built once and run executemany: SQLAlchemy sends it as multi-row INSERTs of a cached
    # compilation ("insertmanyvalues"), where compiling a 500-row VALUES took longer than the
    # database's work.
    return (
        dialect.insert(_ALERTS)
        .on_conflict_do_nothing(index_elements=list(_ALERT_KEY))
        .returning(_ALERTS.c.id, _ALERTS.c.village_code, _ALERTS.c.household_id)
    )


_INSERT = {"postgresql": _insert_new(postgresql), "sqlite": _insert_new(sqlite)}
# What the audit log keeps of an imported alert.
_AUDITED = ("department", "kind", "amount", "occurred_on", "member_id", "imported_by")


def _audited(values: dict[str, Any]) -> dict[str, Any]:
    return {name: values[name] for name in _AUDITED}


@dataclass(frozen=True)
class _Holder:
    member_id: uuid.UUID
    household_id: uuid.UUID
    village_code: str


async def _holders(
    session: AsyncSession, county_code: str, digests: Iterable[str]
) -> dict[str, _Holder]:
    """Current members of households under the county (not removed 注销/清退) by ID-number hash.

    Two holding one number (a data-quality issue of its own) resolve to the first by household
    number, then member id: the same member each time.

    Only the hashes are conditions in SQL; the county and the household's status are checked
    here. With the county's code range as bound parameters too, PostgreSQL's generic plan of the
    prepared statement (used from its sixth run on) guessed the range holds 0.5% of the
    households and walked every household of the county for each lookup (3.5 s instead of 20 ms
    on 100,000 members). Looked up by hash alone, the plan is the hash index either way.
    """
    rows = await session.execute(
        select(
            col(Member.id_number_hash),
            col(Member.id),
            col(Member.household_id),
            col(Household.village_code),
            col(Household.number),
            col(Household.status),
        )
        .join(Household, col(Household.id) == Member.household_id)
        .where(col(Member.id_number_hash).in_(sorted(digests)), col(Member.removed_at).is_(None))
    )
    found: dict[str, tuple[tuple[str, uuid.UUID], _Holder]] = {}
    for digest, member, household, village, number, status in rows:
        if digest is None or status == Status.removed or not codes.is_within(village, county_code):
            continue
        rank = (number, member)
        if digest not in found or rank < found[digest][0]:
            found[digest] = (rank, _Holder(member, household, village))
    return {digest: holder for digest, (_, holder) in found.items()}


@dataclass
class AlertImport:
    """An import under way: the file's distinct rows (hashed) not yet looked up, the counts."""

    county_code: str
    actor_id: uuid.UUID
    pending: list[tuple[str, AlertRow]]
    counts: ImportCounts
    imported_at: datetime = field(default_factory=utcnow)

    @property
    def done(self) -> bool:
        return not self.pending


def begin_import(
    file: alert_import.AlertFile, *, county_code: str, actor_id: uuid.UUID
) -> AlertImport:
    """Hash the valid rows' ID numbers and drop rows repeated in the file (duplicates). CPU
    only, no database: the API runs it in a worker thread."""
    key = get_settings().pii_hash_key
    counts = ImportCounts(read=file.read, rejected=file.rejected, rejections=file.rejections)
    seen: set[tuple[str, str, str, Any]] = set()
    pending: list[tuple[str, AlertRow]] = []
    for row in file.rows:
        digest = id_numbers.search_hash(row.id_number, key=key)
        alert_key = (row.department, digest, row.kind, row.occurred_on)
        if alert_key in seen:
            counts.duplicate += 1
        else:
            seen.add(alert_key)
            pending.append((digest, row))
    counts.valid = len(file.rows)
    counts.checked = counts.duplicate
    return AlertImport(county_code, actor_id, pending, counts)


async def import_rows(
    session: AsyncSession,
    job: AlertImport,
    *,
    limit: int | None = None,
    progress: ImportProgress | None = None,
) -> None:
    """Store the next `limit` (default: all) pending rows that match a current member under
    the county as open alerts, and count them.

    Set-based: ID-number hashes are looked up 500 at a time and new alerts written by 500 in
    multi-row INSERT … ON CONFLICT DO NOTHING on (county, department, ID number, kind, date),
    so a row stored before (or meanwhile, by another import) is a duplicate, never an error.
    Rows are taken off `job.pending` once written: the caller commits, and may call again in a
    new transaction for the next rows (the CLI does, to hold SQLite's write lock briefly).
    """
    insert = _INSERT[session.get_bind().dialect.name]
    counts = job.counts
    taken = job.pending if limit is None else job.pending[:limit]
    for chunk in _chunks(taken):
        holders = await _holders(session, job.county_code, {digest for digest, _ in chunk})
        values = []
        for digest, row in chunk:
            holder = holders.get(digest)
            if holder is None:
                counts.unmatched += 1
                continue
            values.append(
                {
                    "id": uuid.uuid4(),
                    "county_code": job.county_code,
                    "department": row.department,
                    "id_number_hash": digest,
                    "kind": row.kind,
                    "amount": row.amount,
                    "occurred_on": row.occurred_on,
                    "note": row.note,
                    "household_id": holder.household_id,
                    "member_id": holder.member_id,
                    "village_code": holder.village_code,
                    "status": AlertStatus.open.value,
                    "outcome": None,
                    "case_id": None,
                    "verified_by": None,
                    "verified_at": None,
                    "verify_note": None,
                    "revision": 1,
                    "imported_at": job.imported_at,
                    "imported_by": job.actor_id,
                }
            )
        if values:
            stored = (await session.execute(insert, values)).all()
            # A bulk INSERT: no ORM flush saw these rows, so the change log is told of them.
            await changelog.log_inserted(
                session,
                changelog.MONITORING_ALERT,
                [
                    (alert_id, household_id, village, 1)
                    for alert_id, village, household_id in stored
                ],
            )
            written = {v["id"]: v for v in values}
            await audit_capture.note_inserted(
                session,
                "monitoring_alert",
                [
                    (alert_id, household_id, village, _audited(written[alert_id]))
                    for alert_id, village, household_id in stored
                ],
            )
            counts.matched += len(stored)
            counts.duplicate += len(values) - len(stored)
        counts.checked += len(chunk)
        if progress is not None:
            progress(counts)
    del job.pending[: len(taken)]


async def import_alerts(
    session: AsyncSession,
    *,
    county_code: str,
    actor_id: uuid.UUID,
    file: alert_import.AlertFile,
) -> AlertImportReport:
    """Import a department's file, read already, in the session's transaction (see
    `import_rows`); the file's bad rows are reported, the good ones imported regardless."""
    job = begin_import(file, county_code=county_code, actor_id=actor_id)
    await import_rows(session, job)
    return job.counts.report(county_code)


async def default_importer(session: AsyncSession, county_code: str) -> User | None:
    """The county's first active county admin (by username): who a CLI import is recorded as."""
    from app.users.models import Role, UserRegion

    return await session.scalar(
        select(User)
        .join(UserRegion, col(UserRegion.user_id) == User.id)
        .where(
            col(User.role) == Role.county_admin.value,
            col(User.is_active).is_(True),
            col(UserRegion.region_code) == county_code,
        )
        .order_by(col(User.username))
        .limit(1)
    )
