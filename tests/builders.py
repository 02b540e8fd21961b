"""Builders for test data: regions, users with tokens, households."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import TokenFamily
from app.auth.principal import ROLE_SCOPES
from app.core.config import get_settings
from app.core.security import create_access_token, hash_password
from app.households import id_numbers
from app.households.models import Household, Member
from app.regions import codes
from app.regions.models import Region
from app.users.models import Role, User, UserRegion

PASSWORD = "correct-horse-battery"

COUNTY_A = "371522000000"
TOWN_A1 = "371522101000"
TOWN_A2 = "371522102000"
VILLAGE_A1 = "371522101201"
VILLAGE_A2 = "371522101202"
VILLAGE_A3 = "371522102201"
COUNTY_B = "371523000000"
TOWN_B1 = "371523101000"
VILLAGE_B1 = "371523101201"

# Known-good ID numbers (DOMAIN.md) and some more made with the check-digit rule.
ID_HEAD_A1 = "11010519491231002X"
ID_SPOUSE_A1 = "440524188001010014"
PHONE_A1 = "13805351234"


def make_id_number(seq: int, birth: str = "19800101", area: str = "371522") -> str:
    body = f"{area}{birth}{seq % 1000:03d}"
    return body + id_numbers.check_char(body)


@lru_cache
def password_hash() -> str:
    return hash_password(PASSWORD)


async def make_region(
    session: AsyncSession, code: str, name: str, *, population: int | None = None
) -> Region:
    ancestors = codes.ancestors_of(code)
    parent = None
    for candidate in reversed(ancestors):
        if await session.get(Region, candidate) is not None:
            parent = candidate
            break
    region = _region(code, name, parent, population)
    session.add(region)
    await session.flush()
    return region


async def make_user(
    session: AsyncSession, *, username: str, role: Role, regions: list[str], active: bool = True
) -> User:
    user = _user(username, role, active=active)
    session.add(user)
    await session.flush()
    session.add_all(UserRegion(user_id=user.id, region_code=c) for c in regions)
    await session.flush()
    return user


async def token_for(session: AsyncSession, user: User, *, device_id: str | None = None) -> str:
    """An access token for `user`, as a login would issue it (without the password round trip)."""
    family = _token_family(user, device_id=device_id)
    session.add(family)
    await session.flush()
    return _access_token(user, family)


async def make_household(
    session: AsyncSession,
    *,
    village: str,
    number: str | None = None,
    members: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> Household:
    household = _household(village=village, number=number, **fields)
    session.add(household)
    await session.flush()
    session.add_all(_members(household, members or []))
    await session.flush()
    return household


def _region(code: str, name: str, parent: str | None, population: int | None) -> Region:
    return Region(
        code=code,
        name=name,
        parent_code=parent,
        level=int(codes.level_of(code)),
        rural_population=population,
    )


def _user(username: str, role: Role, *, active: bool = True) -> User:
    return User(
        username=username,
        password_hash=password_hash(),
        role=role.value,
        display_name=username,
        is_active=active,
    )


def _token_family(user: User, *, device_id: str | None = None) -> TokenFamily:
    return TokenFamily(
        user_id=user.id,
        device_id=device_id,
        scope=" ".join(ROLE_SCOPES[Role(user.role)]),
    )


def _access_token(user: User, family: TokenFamily) -> str:
    token, _ = create_access_token(
        get_settings(), user_id=user.id, family_id=family.id, role=user.role, scope=family.scope
    )
    return token


def _household(*, village: str, number: str | None = None, **fields: Any) -> Household:
    # An ordinary household (一般农户) has none of the register's fields unless given.
    registered = fields.setdefault("origin", "registered") == "registered"
    return Household(
        number=number or f"{village[:12]}{uuid.uuid4().int % 10_000:04d}{uuid.uuid4().hex[:4]}",
        village_code=village,
        head_name=fields.pop("head_name", "张建国"),
        attribute=fields.pop("attribute", "general" if registered else None),
        status=fields.pop("status", "in_poverty" if registered else None),
        main_cause=fields.pop("main_cause", "illness" if registered else None),
        identified_year=fields.pop("identified_year", 2014 if registered else None),
        **fields,
    )


def _members(household: Household, specs: list[dict[str, Any]]) -> list[Member]:
    key = get_settings().pii_hash_key
    members = []
    for spec in specs:
        number = spec.get("id_number")
        members.append(
            Member(
                household_id=household.id,
                name=spec.get("name", "成员"),
                id_number=number,
                id_number_hash=id_numbers.search_hash(number, key=key) if number else None,
                birth_date=id_numbers.birth_date(number) if number else None,
                relation=spec.get("relation", "child"),
                health=spec.get("health", "healthy"),
                labour=spec.get("labour", "normal"),
                in_school=spec.get("in_school", False),
                medical_insurance=spec.get("medical_insurance", False),
            )
        )
    return members


@dataclass
class World:
    """Two counties: A (two towns, three villages) and B (one village), with a user per role."""

    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    households: dict[str, Household] = field(default_factory=dict)

    def headers(self, who: str | None) -> dict[str, str]:
        """Authorization header of a named user; None means no token at all."""
        if who is None:
            return {}
        return {"Authorization": f"Bearer {self.tokens[who]}"}


# The people of the world, by name: role and assigned regions.
PEOPLE: dict[str, tuple[Role, list[str]]] = {
    "officer_a1": (Role.officer, [VILLAGE_A1]),
    "officer_a2": (Role.officer, [VILLAGE_A2]),
    "secretary_a1": (Role.first_secretary, [VILLAGE_A1]),
    "town_a1": (Role.town_staff, [TOWN_A1]),
    "admin_a": (Role.county_admin, [COUNTY_A]),
    "admin_b": (Role.county_admin, [COUNTY_B]),
}


# The world's regions, parents first: code, name, rural population.
WORLD_REGIONS: list[tuple[str, str, int | None]] = [
    ("370000000000", "山东省", None),
    ("371500000000", "聊城市", None),
    (COUNTY_A, "莘县", None),
    (TOWN_A1, "燕店镇", None),
    (TOWN_A2, "观城镇", None),
    (VILLAGE_A1, "王庄村", 1286),
    (VILLAGE_A2, "后屯村", 1712),
    (VILLAGE_A3, "前营村", 1594),
    (COUNTY_B, "冠县", None),
    (TOWN_B1, "清泉街道", None),
    (VILLAGE_B1, "南关村", 980),
]


async def build_world(session: AsyncSession) -> World:
    """The world in four flushes (most tests build one: it is their fixed cost)."""
    world = World()
    known: set[str] = set()
    for code, name, population in WORLD_REGIONS:
        parent = next((c for c in reversed(codes.ancestors_of(code)) if c in known), None)
        session.add(_region(code, name, parent, population))
        known.add(code)
    await session.flush()
    for name, (role, _) in PEOPLE.items():
        world.users[name] = _user(f"{name}-{uuid.uuid4().hex[:6]}", role)
    session.add_all(world.users.values())
    await session.flush()
    for name, (_, regions) in PEOPLE.items():
        user = world.users[name]
        session.add_all(UserRegion(user_id=user.id, region_code=c) for c in regions)
        family = _token_family(user)
        session.add(family)
        world.tokens[name] = _access_token(user, family)
    first = (
        (
            "a1",
            {
                "village": VILLAGE_A1,
                "number": "3715221012010001",
                "head_name": "张建国",
                "phone": PHONE_A1,
            },
            [
                {
                    "name": "张建国",
                    "id_number": ID_HEAD_A1,
                    "relation": "head",
                    "health": "chronic",
                },
                {"name": "李秀英", "id_number": ID_SPOUSE_A1, "relation": "spouse"},
                {"name": "张小龙", "id_number": None, "relation": "child"},
            ],
        ),
        (
            "a2",
            {
                "village": VILLAGE_A2,
                "number": "3715221012020001",
                "head_name": "王福生",
                "phone": "13912345678",
            },
            [{"name": "王福生", "id_number": make_id_number(11, "19650304"), "relation": "head"}],
        ),
        (
            "b1",
            {
                "village": VILLAGE_B1,
                "number": "3715231012010001",
                "head_name": "赵长林",
                "phone": "13700001111",
            },
            [
                {
                    "name": "赵长林",
                    "id_number": make_id_number(21, "19700512", "371523"),
                    "relation": "head",
                }
            ],
        ),
    )
    for key, fields, _ in first:
        world.households[key] = _household(**fields)
    session.add_all(world.households.values())
    await session.flush()
    for key, _, members in first:
        session.add_all(_members(world.households[key], members))
    await session.flush()
    return world
