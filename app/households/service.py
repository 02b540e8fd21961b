"""Households and members: queries within the caller's villages and the rules of the record."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from app.auth.principal import Principal, region_filter
from app.core.base import utcnow
from app.core.conditional import require_if_match
from app.core.config import get_settings
from app.core.errors import FieldError, InvalidInput
from app.core.events import publish
from app.core.i18n import Text
from app.core.pagination import PageParams, paginate
from app.households import id_numbers
from app.households.errors import (
    ExitRuleNotMet,
    HouseholdNotFound,
    HouseholdNumberTaken,
    IdNumberRegistered,
    MemberNotFound,
    OverrideNotAllowed,
)
from app.households.events import HouseholdStatusChanged
from app.households.exit_rule import exit_reasons
from app.households.models import Household, HouseholdChange, Member
from app.households.schemas import (
    REGISTER_FIELDS,
    HouseholdCreate,
    HouseholdMove,
    HouseholdUpdate,
    MemberCreate,
    MemberRemoval,
    MemberUpdate,
    not_on_register,
)
from app.households.vocabulary import EXIT_STATUSES, POOR_STATUSES, IdentificationStandard
from app.monitoring.vocabulary import Origin
from app.regions import codes
from app.regions.models import Region
from app.users.models import Role


@dataclass(frozen=True)
class HouseholdRecord:
    """A household with its current members, as the API shows it."""

    household: Household
    members: list[Member]


@dataclass(frozen=True)
class HouseholdFilters:
    region: str | None = None
    origin: str | None = None
    status: str | None = None
    attribute: str | None = None
    q: str | None = None
    updated_since: datetime | None = None


def _visible(principal: Principal) -> SelectOfScalar[Household]:
    return select(Household).where(principal.within(Household.village_code))


async def members_of(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Member]]:
    out: dict[uuid.UUID, list[Member]] = defaultdict(list)
    if not ids:
        return out
    rows = await session.scalars(
        select(Member)
        .where(col(Member.household_id).in_(ids), col(Member.removed_at).is_(None))
        .order_by(col(Member.household_id), col(Member.created_at), col(Member.id))
    )
    for member in rows:
        out[member.household_id].append(member)
    return out


async def _with_members(
    session: AsyncSession, households: Sequence[Household]
) -> list[HouseholdRecord]:
    members = await members_of(session, [h.id for h in households])
    return [HouseholdRecord(h, members.get(h.id, [])) for h in households]


async def list_households(
    session: AsyncSession, *, principal: Principal, filters: HouseholdFilters, page: PageParams
) -> tuple[list[HouseholdRecord], str | None]:
    """Households in the caller's villages, ordered by household number (stable under edits)."""
    stmt = _visible(principal)
    if filters.region:
        stmt = stmt.where(region_filter(filters.region, col(Household.village_code)))
    if filters.origin:
        stmt = stmt.where(Household.origin == filters.origin)
    if filters.status:
        stmt = stmt.where(Household.status == filters.status)
    if filters.attribute:
        stmt = stmt.where(Household.attribute == filters.attribute)
    if filters.q:
        term = filters.q.strip()
        stmt = stmt.where(
            or_(
                col(Household.head_name).contains(term, autoescape=True),
                col(Household.number).startswith(term, autoescape=True),
                col(Household.id).in_(
                    select(Member.household_id).where(
                        col(Member.name).contains(term, autoescape=True),
                        col(Member.removed_at).is_(None),
                    )
                ),
            )
        )
    if filters.updated_since:
        stmt = stmt.where(Household.updated_at >= filters.updated_since)
    rows, cursor = await paginate(session, stmt, keys=[col(Household.number)], page=page)
    return await _with_members(session, rows), cursor


async def search_by_id_number(
    session: AsyncSession, *, principal: Principal, id_number: str, page: PageParams
) -> tuple[list[HouseholdRecord], str | None]:
    """Households (in the caller's villages) with a current member holding this ID number."""
    digest = id_numbers.search_hash(id_number, key=get_settings().pii_hash_key)
    stmt = _visible(principal).where(
        col(Household.id).in_(
            select(Member.household_id).where(
                Member.id_number_hash == digest,
                col(Member.removed_at).is_(None),
            )
        )
    )
    rows, cursor = await paginate(session, stmt, keys=[col(Household.number)], page=page)
    return await _with_members(session, rows), cursor


async def get_household(
    session: AsyncSession,
    *,
    principal: Principal,
    household_id: uuid.UUID,
    for_update: bool = False,
) -> Household:
    """One household in the caller's villages, else HouseholdNotFound (existence not leaked)."""
    stmt = _visible(principal).where(Household.id == household_id)
    if for_update:
        stmt = stmt.with_for_update()
    household = await session.scalar(stmt)
    if household is None:
        raise HouseholdNotFound(
            Text(
                "household {household_id} does not exist or is not visible to you",
                household_id=household_id,
            )
        )
    return household


async def visible_households(
    session: AsyncSession, *, principal: Principal, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Household]:
    """Those of `ids` that are households in the caller's villages, in one query per 500."""
    found: dict[uuid.UUID, Household] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):
        stmt = _visible(principal).where(col(Household.id).in_(unique[start : start + 500]))
        found.update({h.id: h for h in await session.scalars(stmt)})
    return found


async def get_household_record(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID
) -> HouseholdRecord:
    household = await get_household(session, principal=principal, household_id=household_id)
    return (await _with_members(session, [household]))[0]


async def check_id_numbers(
    session: AsyncSession,
    members: Sequence[tuple[str, str | None]],
    *,
    exclude_member: uuid.UUID | None = None,
) -> dict[str, str]:
    """Hashes of the given ID numbers; 422 when one repeats among them, 409 (IdNumberRegistered)
    when one belongs to a current member elsewhere.

    `members` are (field path, normalized ID number) pairs.
    """
    key = get_settings().pii_hash_key
    hashes: dict[str, str] = {}
    seen: dict[str, str] = {}
    errors: list[FieldError] = []
    for field, number in members:
        if number is None:
            continue
        digest = id_numbers.search_hash(number, key=key)
        if digest in seen:
            errors.append(
                FieldError.of(
                    field, Text("same ID number as {seen}", seen=seen[digest]), type="duplicate"
                )
            )
        seen[digest] = field
        hashes[field] = digest
    if errors:
        raise InvalidInput(Text("an ID number appears twice"), errors=errors)
    if hashes:
        stmt = select(Member.id_number_hash).where(
            col(Member.id_number_hash).in_(list(hashes.values())),
            col(Member.removed_at).is_(None),
        )
        if exclude_member is not None:
            stmt = stmt.where(Member.id != exclude_member)
        taken = set((await session.scalars(stmt)).all())
        clashes = [
            FieldError.of(
                f,
                Text("this ID number is already registered to a current member"),
                type="duplicate",
            )
            for f, d in hashes.items()
            if d in taken
        ]
        if clashes:
            raise IdNumberRegistered(
                Text("a person can belong to one household only: remove them from the other first"),
                errors=clashes,
            )
    return hashes


def _new_member(household_id: uuid.UUID, data: MemberCreate, digest: str | None) -> Member:
    return Member(
        household_id=household_id,
        name=data.name,
        id_number=data.id_number,
        id_number_hash=digest,
        birth_date=id_numbers.birth_date(data.id_number) if data.id_number else None,
        relation=data.relation.value,
        health=data.health.value,
        labour=data.labour.value,
        in_school=data.in_school,
        medical_insurance=data.medical_insurance,
        added_reason=data.added_reason.value,
    )


async def check_village(session: AsyncSession, *, principal: Principal, village_code: str) -> None:
    """InvalidInput naming body.village_code unless it is a known village of the caller."""
    village = await session.get(Region, village_code)
    if village is None or village.level != codes.Level.village:
        raise InvalidInput.field(
            "body.village_code",
            Text("{village_code} is not a known village", village_code=village_code),
            type="unknown_village",
        )
    if not principal.covers(village.code):
        raise InvalidInput.field(
            "body.village_code",
            Text("{village_code} is not in your county", village_code=village_code),
            type="outside_region",
        )


async def check_number_free(session: AsyncSession, *, number: str) -> None:
    """HouseholdNumberTaken (409) when a household has this number (户编号 is national)."""
    if await session.scalar(select(Household.id).where(Household.number == number)):
        raise HouseholdNumberTaken(
            Text("household number {number} is already registered", number=number),
            errors=[FieldError.of("body.number", Text("already registered"), type="duplicate")],
        )


async def create_household(
    session: AsyncSession, *, principal: Principal, data: HouseholdCreate
) -> HouseholdRecord:
    """Register a household with its members (county admin, inside their county): on the
    register (建档立卡) or an ordinary one (一般农户), which has none of the register's fields."""
    await check_village(session, principal=principal, village_code=data.village_code)
    await check_number_free(session, number=data.number)
    hashes = await check_id_numbers(
        session, [(f"body.members.{i}.id_number", m.id_number) for i, m in enumerate(data.members)]
    )
    household = Household(
        number=data.number,
        village_code=data.village_code,
        group_name=data.group_name,
        head_name=data.head_name,
        phone=data.phone,
        origin=data.origin.value,
        attribute=data.attribute.value if data.attribute else None,
        status=data.status.value if data.status else None,
        main_cause=data.main_cause.value if data.main_cause else None,
        other_causes=[c.value for c in data.other_causes],
        # The column's default stays on an ordinary household; the API shows it as null.
        identification_standard=(
            data.identification_standard or IdentificationStandard.national
        ).value,
        identified_year=data.identified_year,
        planned_exit_year=data.planned_exit_year,
        exit_year=data.exit_year,
        pairing_cadres=[c.model_dump(mode="json") for c in data.pairing_cadres],
    )
    session.add(household)
    await session.flush()
    session.add(
        HouseholdChange(
            household_id=household.id,
            version=household.version,
            changed_at=household.created_at,
            actor_id=principal.id,
            changes={"status": [None, household.status]}
            if data.origin is Origin.registered
            else {"origin": [None, household.origin]},
            status_to=household.status,
        )
    )
    members = [
        _new_member(household.id, m, hashes.get(f"body.members.{i}.id_number"))
        for i, m in enumerate(data.members)
    ]
    session.add_all(members)
    await session.flush()
    return HouseholdRecord(household, members)


_NOT_NULL = ("head_name", "other_causes", "pairing_cadres")
# Not null on a registered household (an ordinary one has none of them).
_REGISTER_NOT_NULL = (
    "attribute",
    "status",
    "main_cause",
    "identification_standard",
    "identified_year",
)


async def _touch(
    session: AsyncSession,
    household: Household,
    *,
    principal: Principal | None,
    changes: dict[str, list[Any]],
    override_reason: str | None = None,
) -> None:
    """Bump the version and keep what changed ({field: [old, new]}) in the household's history."""
    household.version += 1
    household.updated_at = utcnow()
    status = changes.get("status")
    session.add(
        HouseholdChange(
            household_id=household.id,
            version=household.version,
            changed_at=household.updated_at,
            actor_id=principal.id if principal else None,
            changes=changes,
            status_from=status[0] if status else None,
            status_to=status[1] if status else None,
            override_reason=override_reason if status else None,
        )
    )
    if status:
        await publish(
            session,
            HouseholdStatusChanged(
                household=household,
                status_from=status[0],
                status_to=status[1],
                actor_id=principal.id if principal else None,
            ),
        )


async def update_household(
    session: AsyncSession,
    *,
    principal: Principal,
    household_id: uuid.UUID,
    data: HouseholdUpdate,
    if_match: str | None,
) -> HouseholdRecord:
    """Apply a partial update guarded by If-Match; bumps the version."""
    household = await get_household(
        session, principal=principal, household_id=household_id, for_update=True
    )
    require_if_match(if_match, version=household.version)
    await apply_changes(
        session, household, data.model_dump(exclude_unset=True, mode="json"), principal=principal
    )
    return (await _with_members(session, [household]))[0]


async def apply_changes(
    session: AsyncSession,
    household: Household,
    changes: dict[str, Any],
    *,
    principal: Principal,
    field_prefix: str = "body.",
) -> dict[str, list[Any]]:
    """Check and apply validated field changes (a HouseholdUpdate's, `override_reason`
    included); returns what changed ({field: [old, new]}).

    A change that alters nothing leaves the version alone. Used by PATCH, sync batches and
    conflict resolution alike, so the exit rule and its override are checked on every path.
    """
    changes = dict(changes)
    reason: str | None = changes.pop("override_reason", None)
    origin = changes.pop("origin", None)
    if origin is not None and origin != household.origin:
        raise InvalidInput.field(
            f"{field_prefix}origin",
            Text(
                "origin cannot change: the household is {household_origin}",
                household_origin=household.origin,
            ),
            type="immutable",
        )
    not_null: tuple[str, ...] = _NOT_NULL
    if household.origin == Origin.ordinary:
        given = [f for f in REGISTER_FIELDS if changes.get(f) not in (None, [])]
        if given:
            raise InvalidInput(
                Text("an ordinary household has none of the register's fields"),
                errors=[
                    FieldError.of(f"{field_prefix}{f}", not_on_register(f), type="not_allowed")
                    for f in given
                ],
            )
        # Nulls (and no other causes) are what it has already.
        changes = {name: value for name, value in changes.items() if name not in REGISTER_FIELDS}
    else:
        not_null += _REGISTER_NOT_NULL
    nulls = [f for f in not_null if f in changes and changes[f] is None]
    if nulls:
        raise InvalidInput(
            Text("these fields cannot be null"),
            errors=[
                FieldError.of(f"{field_prefix}{f}", Text("cannot be null"), type="not_null")
                for f in nulls
            ],
        )
    main = changes.get("main_cause", household.main_cause)
    others = changes.get("other_causes", household.other_causes)
    if main is not None and main in others:
        raise InvalidInput.field(
            f"{field_prefix}other_causes", Text("other_causes repeats main_cause")
        )
    identified = changes.get("identified_year", household.identified_year)
    for name in ("planned_exit_year", "exit_year"):
        year = changes.get(name, getattr(household, name))
        if year is not None and identified is not None and year < identified:
            raise InvalidInput.field(
                f"{field_prefix}{name}", Text("{name} is before identified_year", name=name)
            )
    await _check_exit(
        session,
        household,
        status_to=changes.get("status"),
        reason=reason,
        principal=principal,
        field_prefix=field_prefix,
    )
    diff = {
        name: [getattr(household, name), value]
        for name, value in changes.items()
        if getattr(household, name) != value
    }
    if diff:
        for name, (_, value) in diff.items():
            setattr(household, name, value)
        await _touch(session, household, principal=principal, changes=diff, override_reason=reason)
        await session.flush()
    return diff


async def _check_exit(
    session: AsyncSession,
    household: Household,
    *,
    status_to: str | None,
    reason: str | None,
    principal: Principal,
    field_prefix: str,
) -> None:
    """An exit (a poor status → lifted or lifted_no_support) needs the exit rule to hold, or
    the county admin's `override_reason`; a reason goes with an exit status only."""
    if reason is not None and principal.role is not Role.county_admin:
        raise OverrideNotAllowed(
            Text("only the county admin may set a status the exit rule does not support"),
            errors=[
                FieldError.of(
                    f"{field_prefix}override_reason",
                    Text("only the county admin may give an override reason"),
                    type="forbidden",
                )
            ],
        )
    if reason is not None and status_to not in EXIT_STATUSES:
        raise InvalidInput.field(
            f"{field_prefix}override_reason",
            Text("override_reason goes with status lifted or lifted_no_support"),
            type="unexpected",
        )
    if status_to not in EXIT_STATUSES or household.status not in POOR_STATUSES:
        return
    if reason is not None:
        return
    held = await exit_reasons()(session, principal, household.id)
    if not held:
        return
    reasons = [{"code": code, "detail": detail} for code, detail in held]
    raise ExitRuleNotMet(
        Text(
            "the exit rule does not hold for this household: {codes}. The "
            "county admin may set {status_to} anyway, giving an "
            "override_reason.",
            codes=", ".join(dict.fromkeys(code for code, _ in held)),
            status_to=status_to,
        ),
        errors=[
            FieldError.of(
                f"{field_prefix}status",
                Text("{status_to}: the exit rule does not hold", status_to=status_to),
                type="exit_rule_not_met",
            )
        ],
        reasons=reasons,
    )


async def move_household(
    session: AsyncSession,
    *,
    principal: Principal,
    household_id: uuid.UUID,
    data: HouseholdMove,
    if_match: str | None,
) -> HouseholdRecord:
    """Transfer a household to another village of the county (迁移); bumps the version.

    Its records go with it: the old village's phones get delete entries in the sync feed.
    """
    household = await get_household(
        session, principal=principal, household_id=household_id, for_update=True
    )
    require_if_match(if_match, version=household.version)
    await check_village(session, principal=principal, village_code=data.village_code)
    if data.village_code != household.village_code:
        diff: dict[str, list[Any]] = {"village_code": [household.village_code, data.village_code]}
        if data.reason:
            diff["move_reason"] = [None, data.reason]
        household.village_code = data.village_code
        await _touch(session, household, principal=principal, changes=diff)
        await session.flush()
    return (await _with_members(session, [household]))[0]


async def fields_changed_since(
    session: AsyncSession, household: Household, version: int
) -> set[str]:
    """The fields any change after `version` touched (from the household's history)."""
    rows = await session.scalars(
        select(HouseholdChange.changes).where(
            HouseholdChange.household_id == household.id, HouseholdChange.version > version
        )
    )
    return {name for changes in rows for name in changes}


# --- members -------------------------------------------------------------------------------


async def get_member(
    session: AsyncSession, *, household: Household, member_id: uuid.UUID
) -> Member:
    member = await session.scalar(
        select(Member).where(
            Member.id == member_id,
            Member.household_id == household.id,
            col(Member.removed_at).is_(None),
        )
    )
    if member is None:
        raise MemberNotFound(
            Text(
                "member {member_id} is not a current member of this household", member_id=member_id
            )
        )
    return member


async def _guarded_household(
    session: AsyncSession, *, principal: Principal, household_id: uuid.UUID, if_match: str | None
) -> Household:
    household = await get_household(
        session, principal=principal, household_id=household_id, for_update=True
    )
    require_if_match(if_match, version=household.version)
    return household


async def _check_single_head(
    session: AsyncSession, household: Household, *, exclude: uuid.UUID | None = None
) -> None:
    stmt = (
        select(func.count())
        .select_from(Member)
        .where(
            Member.household_id == household.id,
            Member.relation == "head",
            col(Member.removed_at).is_(None),
        )
    )
    if exclude is not None:
        stmt = stmt.where(Member.id != exclude)
    if await session.scalar(stmt):
        raise InvalidInput.field(
            "body.relation", Text("the household already has a head"), type="duplicate"
        )


async def create_member(
    session: AsyncSession,
    *,
    principal: Principal,
    household_id: uuid.UUID,
    data: MemberCreate,
    if_match: str | None,
) -> tuple[Household, Member]:
    """Add a member (newborn, married in, moved in…); If-Match carries the household's ETag."""
    household = await _guarded_household(
        session, principal=principal, household_id=household_id, if_match=if_match
    )
    if data.relation.value == "head":
        await _check_single_head(session, household)
    hashes = await check_id_numbers(session, [("body.id_number", data.id_number)])
    member = _new_member(household.id, data, hashes.get("body.id_number"))
    session.add(member)
    await session.flush()
    await _touch(
        session, household, principal=principal, changes={"member_added": [None, str(member.id)]}
    )
    await session.flush()
    return household, member


async def update_member(
    session: AsyncSession,
    *,
    principal: Principal,
    household_id: uuid.UUID,
    member_id: uuid.UUID,
    data: MemberUpdate,
    if_match: str | None,
) -> tuple[Household, Member]:
    """Change a member; If-Match carries the household's ETag, whose version is bumped."""
    household = await _guarded_household(
        session, principal=principal, household_id=household_id, if_match=if_match
    )
    member = await get_member(session, household=household, member_id=member_id)
    changes = data.model_dump(exclude_unset=True, mode="json")
    nulls = [f for f, v in changes.items() if v is None and f != "id_number"]
    if nulls:
        raise InvalidInput(
            Text("these fields cannot be null"),
            errors=[
                FieldError.of(f"body.{f}", Text("cannot be null"), type="not_null") for f in nulls
            ],
        )
    if changes.get("relation") == "head" and member.relation != "head":
        await _check_single_head(session, household, exclude=member.id)
    if "id_number" in changes:
        number = changes["id_number"]
        hashes = await check_id_numbers(
            session, [("body.id_number", number)], exclude_member=member.id
        )
        changes["id_number_hash"] = hashes.get("body.id_number")
        changes["birth_date"] = id_numbers.birth_date(number) if number else None
    if changes:
        for name, value in changes.items():
            setattr(member, name, value)
        member.updated_at = utcnow()
        fields = sorted(k for k in changes if k not in ("id_number_hash", "birth_date"))
        await _touch(
            session,
            household,
            principal=principal,
            changes={"member_updated": [str(member.id), fields]},
        )
        await session.flush()
    return household, member


async def remove_member(
    session: AsyncSession,
    *,
    principal: Principal,
    household_id: uuid.UUID,
    member_id: uuid.UUID,
    data: MemberRemoval,
    if_match: str | None,
) -> Household:
    """Record that a member left (death, married out, moved out); the record is kept."""
    household = await _guarded_household(
        session, principal=principal, household_id=household_id, if_match=if_match
    )
    member = await get_member(session, household=household, member_id=member_id)
    member.removed_at = utcnow()
    member.removed_reason = data.reason.value
    member.updated_at = member.removed_at
    await _touch(
        session,
        household,
        principal=principal,
        changes={"member_removed": [str(member.id), data.reason.value]},
    )
    await session.flush()
    return household
