"""Who is calling, and which part of the county they may see."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_

from app.core.errors import InvalidInput
from app.core.i18n import text_of
from app.regions import codes
from app.users.models import Role, User

# Reading, by kind of data. Routes ask for the scope of what they show; `pii:read` unmasks ID
# numbers, phones and exact positions (see `Principal.may_see_pii`).
READ_SCOPES: tuple[str, ...] = (
    "households:read",  # households and their members, regions, thresholds
    "records:read",  # visits, income snapshots, support measures, a household's timeline
    "progress:read",  # household and region progress, data quality, exports
    "photos:read",  # photos, their thumbnails and content
    "sync:read",  # sync status, conflicts, devices, the change feed
)
# What a third-party client may be granted: reading only, never a write scope.
CLIENT_SCOPES: tuple[str, ...] = (*READ_SCOPES, "pii:read")

# What each role's tokens are granted; authorization checks roles and regions, scopes say what a
# token may be used for (a login may ask for fewer; a client gets what it was registered with).
# `monitoring:write` takes the steps of a monitoring case's procedure (which step, by role).
ROLE_SCOPES: dict[Role, tuple[str, ...]] = {
    Role.officer: (*READ_SCOPES, "households:write", "monitoring:write", "pii:read"),
    Role.first_secretary: (*READ_SCOPES, "households:write", "monitoring:write"),
    # Town staff read everything under their town and take the town's steps; they write no
    # field record.
    Role.town_staff: (*READ_SCOPES, "monitoring:write", "pii:read"),
    Role.county_admin: (
        *READ_SCOPES,
        "households:write",
        "monitoring:write",
        "regions:write",
        "users:write",
        "pii:read",
    ),
    # The upper bound: each client's tokens carry only the scopes it was registered with.
    Role.api_client: CLIENT_SCOPES,
}


def has_prefix(column: Any, prefix: str) -> ColumnElement[bool]:
    """SQL condition: `column` (a region code) starts with `prefix`, as an index range.

    Exact because region-code columns compare bytewise on both databases (BINARY on SQLite,
    COLLATE "C" on PostgreSQL: see `app.core.base.region_code_type`).
    """
    low, high = codes.prefix_range(prefix)
    return and_(column >= low, column < high)


def within_regions(region_codes: Iterable[str], column: Any) -> ColumnElement[bool]:
    """SQL condition: `column` (a region code) lies in one of `region_codes`."""
    conditions: list[ColumnElement[bool]] = []
    for own in region_codes:
        if codes.level_of(own) in (codes.Level.village, codes.Level.natural_village):
            # The village itself and its natural villages (371522101201-03).
            conditions.append(column == own)
            conditions.append(has_prefix(column, own + "-"))
        else:
            conditions.append(has_prefix(column, codes.prefix_of(own)))
    return or_(*conditions) if conditions else false()


def region_filter(region: str, column: Any) -> ColumnElement[bool]:
    """SQL condition for a list's `region` query parameter: `column` (a region code) lies under
    `region`. A code of the right shape that names no division is a 422 naming query.region."""
    try:
        codes.level_of(region)
    except codes.InvalidCode as exc:
        raise InvalidInput.field("query.region", text_of(exc)) from None
    return within_regions([region], column)


@dataclass(frozen=True)
class Principal:
    user: User
    role: Role
    region_codes: tuple[str, ...]
    family_id: uuid.UUID | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    device_id: str | None = None

    @property
    def id(self) -> uuid.UUID:
        return self.user.id

    def covers(self, code: str) -> bool:
        """Whether `code` lies in (or is) one of the caller's regions."""
        return any(codes.is_within(code, own) for own in self.region_codes)

    def may_see_pii(self, village_code: str) -> bool:
        """Whether ID numbers, phones and exact positions of the village are shown in full."""
        return "pii:read" in self.scopes and self.covers(village_code)

    def within(self, column: Any) -> ColumnElement[bool]:
        """SQL condition: `column` (a region code) lies in one of the caller's regions."""
        return within_regions(self.region_codes, column)

    def visible_regions(self, column: Any) -> ColumnElement[bool]:
        """SQL condition for regions the caller may read: `within` plus their ancestors."""
        above = {code for own in self.region_codes for code in codes.ancestors_of(own)}
        return or_(self.within(column), column.in_(sorted(above))) if above else self.within(column)


# Where a request's session keeps who is calling (see `remember_caller`).
_CALLER = "fieldsync_caller"


@dataclass(frozen=True)
class Caller:
    """Who a session works for: the principal and the address the request came from."""

    principal: Principal | None
    client_address: str | None


def remember_caller(info: dict[str, Any], caller: Caller) -> None:
    """Note in a session's `info` (or what starts it) whom its writes are for: the audit log
    reads it."""
    info[_CALLER] = caller


def caller_of(session: Any) -> Caller | None:
    """Whom the session works for, if a request said so."""
    caller = session.info.get(_CALLER)
    return caller if isinstance(caller, Caller) else None
