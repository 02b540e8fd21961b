"""The SQL form of GB 11643 (what the database counts and pages) says exactly what
`id_numbers.normalize` says, on both databases, for valid numbers and every way to break one."""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.households import id_numbers
from app.households.models import Member
from app.quality import gb11643
from tests.builders import VILLAGE_A3, World, make_household

TODAY = date(2026, 11, 23)


def _number(rng: random.Random, birth: str | None = None) -> str:
    if birth is None:
        day = date(1880, 1, 1) + timedelta(days=rng.randrange((TODAY - date(1880, 1, 1)).days))
        birth = day.strftime("%Y%m%d")
    body = f"{rng.randrange(110000, 660000)}{birth}{rng.randrange(1000):03d}"
    return body + id_numbers.check_char(body)


def corpus() -> list[str]:
    rng = random.Random(11643)
    numbers = ["11010519491231002X", "440524188001010014"]
    for _ in range(120):
        good = _number(rng)
        i = rng.randrange(17)
        changed = good[:i] + str((int(good[i]) + rng.randrange(1, 10)) % 10) + good[i + 1 :]
        other_check = rng.choice([c for c in gb11643.CHECK_CHARACTERS if c != good[17]])
        numbers += [good, changed, good[:17] + other_check, good[:17] + good[17].lower()]
        numbers += [good[:17], good[:16], good[1:] + "0", " " + good[:17], good[:17] + " "]
        numbers += [good[:6] + "1234" + good[10:], good[:8] + "AB" + good[10:]]
        numbers += [good[:3] + "X" + good[4:], good[:5] + "１" + good[6:], good.replace("1", "-")]
        old = good[:6] + good[8:17]  # 15 digits: two-digit year, no check character
        numbers += [old, old[:14] + "X"]
    for birth in [
        "19000229", "20000229", "20230229", "20240229", "21000229", "19800431", "19800430",
        "19800001", "19801301", "19800100", "19800132", "19801231", "18791231", "18800101",
        TODAY.strftime("%Y%m%d"), (TODAY + timedelta(days=1)).strftime("%Y%m%d"), "21000101",
        "00000101", "99991231",
    ]:  # fmt: skip
        numbers += [_number(rng, birth) for _ in range(3)]
    numbers += ["", "X" * 18, "0" * 18, "1" * 17 + "X", "9" * 15]
    return numbers


def test_the_tables_are_those_of_id_numbers() -> None:
    rng = random.Random(7)
    for _ in range(500):
        body = "".join(rng.choice("0123456789") for _ in range(17))
        total = sum(int(d) * w for d, w in zip(body, gb11643.WEIGHTS, strict=True))
        assert gb11643.CHECK_CHARACTERS[total % 11] == id_numbers.check_char(body)


async def test_sql_rule_agrees_with_normalize(session: AsyncSession, world: World) -> None:
    numbers = corpus()
    household = await make_household(session, village=VILLAGE_A3)
    members = [
        Member(household_id=household.id, name=str(i), id_number=number, relation="other")
        for i, number in enumerate(numbers)
    ]
    session.add_all(members)
    await session.flush()
    invalid_in_sql = set(
        await session.scalars(
            select(Member.id).where(
                Member.household_id == household.id,
                ~gb11643.valid_in_sql(col(Member.id_number), today=TODAY),
            )
        )
    )
    disagreements = [
        (m.id_number, gb11643.problem(m.id_number or "", today=TODAY))
        for m in members
        if (m.id in invalid_in_sql) != (gb11643.problem(m.id_number or "", today=TODAY) is not None)
    ]
    assert not disagreements
    assert 0.3 < len(invalid_in_sql) / len(members) < 0.9  # both kinds, plenty of each


def test_every_problem_has_its_reason() -> None:
    good = "11010519491231002X"
    assert gb11643.problem(good, today=TODAY) is None
    assert gb11643.problem(good[:17] + "1", today=TODAY) == "check_character"
    assert gb11643.problem(good.lower(), today=TODAY) == "not_normalized"
    assert gb11643.problem("110105491231002", today=TODAY) == "not_normalized"
    assert gb11643.problem("110105491331002", today=TODAY) == "birth_date_not_a_date"
    assert gb11643.problem(good[:17], today=TODAY) == "format"
    future = "110105" + (TODAY + timedelta(days=1)).strftime("%Y%m%d") + "002"
    assert gb11643.problem(future + id_numbers.check_char(future), today=TODAY) == (
        "birth_date_implausible"
    )
    assert gb11643.masked(good) == "110105********002X"
    assert gb11643.masked("12345") == "*****"
