"""A believable demo county as of 2026: 莘县 (聊城), four towns, twelve villages, 600 registered
households (all exited by 2020) and 96 ordinary ones, monitoring cases and department alerts.

Deterministic (fixed random seed) and safe to run again: regions are upserted, households that
already exist are skipped, demo users get their demo password back.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.core.config import get_settings
from app.demo import monitoring as demo_monitoring
from app.demo import records as demo_records
from app.households import id_numbers
from app.households.models import Household, Member
from app.regions import service as regions_service
from app.users import service as users_service
from app.users.models import Role
from app.users.schemas import UserCreate

COUNTY = "371522000000"
DEMO_PASSWORD = "fieldsync-demo"

# (town code, town name, [(village code, village name, registered rural population)])
TOWNS = [
    (
        "371522001000",
        "莘亭街道",
        [
            ("371522001201", "北街村", 1830),
            ("371522001202", "西关村", 2140),
            ("371522001203", "东杨村", 1460),
        ],
    ),
    (
        "371522101000",
        "燕店镇",
        [
            ("371522101201", "王庄村", 1286),
            ("371522101202", "后屯村", 1712),
            ("371522101203", "马集村", 2055),
        ],
    ),
    (
        "371522102000",
        "观城镇",
        [
            ("371522102201", "前营村", 1594),
            ("371522102202", "张寨村", 1377),
            ("371522102203", "刘楼村", 1921),
        ],
    ),
    (
        "371522103000",
        "古城镇",
        [
            ("371522103201", "孙堂村", 1108),
            ("371522103202", "赵庄村", 1643),
            ("371522103203", "李庄村", 1489),
        ],
    ),
]
HOUSEHOLDS_PER_VILLAGE = 50

USERS = [
    ("county.admin", "县扶贫信息中心 刘主任", Role.county_admin, [COUNTY]),
    ("officer.xinting", "信息员 郭丽", Role.officer, [v[0] for v in TOWNS[0][2]]),
    ("officer.yandian", "信息员 王秀英", Role.officer, [v[0] for v in TOWNS[1][2]]),
    ("officer.guancheng", "信息员 陈伟", Role.officer, [v[0] for v in TOWNS[2][2]]),
    ("officer.gucheng", "信息员 杨帆", Role.officer, [v[0] for v in TOWNS[3][2]]),
    ("secretary.wangzhuang", "第一书记 孟庆华", Role.first_secretary, ["371522101201"]),
    ("secretary.qianying", "第一书记 韩冬", Role.first_secretary, ["371522102201"]),
    ("town.xinting", "莘亭街道 乡村振兴办 高敏", Role.town_staff, [TOWNS[0][0]]),
    ("town.yandian", "燕店镇 乡村振兴办 李娜", Role.town_staff, [TOWNS[1][0]]),
    ("town.guancheng", "观城镇 乡村振兴办 郑凯", Role.town_staff, [TOWNS[2][0]]),
    ("town.gucheng", "古城镇 乡村振兴办 褚文", Role.town_staff, [TOWNS[3][0]]),
]

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_MALE = [
    "建国",
    "建华",
    "国强",
    "志刚",
    "学军",
    "长林",
    "福生",
    "振东",
    "庆山",
    "宝山",
    "金海",
    "德明",
    "永刚",
    "立新",
    "红军",
    "春生",
    "海涛",
    "小龙",
    "子豪",
    "浩然",
]
GIVEN_FEMALE = [
    "秀英",
    "桂兰",
    "玉梅",
    "凤霞",
    "翠花",
    "春梅",
    "淑珍",
    "丽娟",
    "红霞",
    "小芳",
    "雪梅",
    "海燕",
    "欣怡",
    "梓涵",
    "雨桐",
]
CADRES = [
    ("李明", "county", "莘县农业农村局"),
    ("赵振华", "city", "聊城市财政局"),
    ("孙志强", "section", "燕店镇人民政府"),
    ("周海燕", "county", "莘县教育和体育局"),
    ("吴建军", "section", "观城镇人民政府"),
    ("冯立平", "city", "聊城市卫生健康委员会"),
]

ATTRIBUTES = (["general"] * 12) + (["dibao"] * 5) + (["tekun"] * 2) + ["dibao_tekun"]
# 2026: every registered household exited by 2020 (the register is history); most still
# receive policy support. Monitoring (app.demo.monitoring) watches who is at risk now.
STATUSES = (["lifted"] * 4) + ["lifted_no_support"]
# Ordinary farm households (一般农户) per village: not in the register, watched all the same.
ORDINARY_PER_VILLAGE = 8
CAUSES = (
    (["illness"] * 8)
    + (["disability"] * 3)
    + (["lack_labour"] * 3)
    + (["schooling"] * 2)
    + (["lack_capital"] * 2)
    + (["lack_skills"] * 2)
    + ["disaster", "lack_land", "poor_transport", "low_motivation", "other"]
)


def regions_csv() -> str:
    lines = [
        "code,name,parent_code,rural_population",
        "370000000000,山东省,,",
        "371500000000,聊城市,370000000000,",
        f"{COUNTY},莘县,371500000000,",
    ]
    for town_code, town_name, villages in TOWNS:
        lines.append(f"{town_code},{town_name},{COUNTY},")
        for code, name, population in villages:
            lines.append(f"{code},{name},{town_code},{population}")
            for group in ("01", "02", "03"):
                lines.append(f"{code}-{group},{name}{int(group)}组,{code},")
    return "\n".join(lines) + "\n"


def _id_number(rng: random.Random, birth: date, male: bool) -> str:
    seq = rng.randrange(0, 500) * 2 + (1 if male else 0)
    body = f"371522{birth:%Y%m%d}{seq:03d}"
    return body + id_numbers.check_char(body)


def _birth(rng: random.Random, age: int) -> date:
    return date(2026 - age, 1, 1) + timedelta(days=rng.randrange(0, 365))


def _household(
    rng: random.Random, village: str, seq: int, key: str, *, ordinary: bool = False
) -> tuple[Household, list[Member]]:
    surname = rng.choice(SURNAMES)
    male_head = rng.random() < 0.8
    head_age = rng.randrange(28, 86)
    size = rng.choices([1, 2, 3, 4, 5, 6], weights=[12, 22, 22, 24, 14, 6])[0]
    people: list[tuple[str, str, int, bool]] = []  # name, relation, age, male
    head_given = rng.choice(GIVEN_MALE if male_head else GIVEN_FEMALE)
    people.append((surname + head_given, "head", head_age, male_head))
    if size >= 2:
        people.append(
            (
                rng.choice(SURNAMES) + rng.choice(GIVEN_FEMALE if male_head else GIVEN_MALE),
                "spouse",
                max(20, head_age + rng.randrange(-5, 4)),
                not male_head,
            )
        )
    for _ in range(max(0, size - 2)):
        if head_age > 62 and rng.random() < 0.5:
            male = rng.random() < 0.5
            people.append(
                (
                    surname + rng.choice(GIVEN_MALE if male else GIVEN_FEMALE),
                    "grandchild",
                    rng.randrange(3, 18),
                    male,
                )
            )
        elif head_age < 50 and rng.random() < 0.25:
            male = rng.random() < 0.5
            people.append(
                (
                    surname + rng.choice(GIVEN_MALE if male else GIVEN_FEMALE),
                    "parent",
                    head_age + rng.randrange(22, 30),
                    male,
                )
            )
        else:
            male = rng.random() < 0.5
            people.append(
                (
                    surname + rng.choice(GIVEN_MALE if male else GIVEN_FEMALE),
                    "child",
                    max(1, head_age - rng.randrange(20, 32)),
                    male,
                )
            )

    main_cause = rng.choice(CAUSES)
    others = sorted({rng.choice(CAUSES) for _ in range(rng.randrange(0, 3))} - {main_cause})
    status = rng.choice(STATUSES)
    identified = rng.choice([2014, 2014, 2015, 2016])
    planned = min(2020, identified + rng.randrange(1, 5))
    cadre = rng.choice(CADRES)
    household = Household(
        number=f"{village}{seq:04d}",
        village_code=village,
        group_name=f"{rng.randrange(1, 4)}组",
        head_name=people[0][0],
        phone=f"1{rng.choice('358')}{rng.randrange(0, 10)}{rng.randrange(10_000_000, 99_999_999)}"
        if rng.random() < 0.85
        else None,
        attribute=rng.choice(ATTRIBUTES),
        status=status,
        main_cause=main_cause,
        other_causes=others,
        identified_year=identified,
        planned_exit_year=planned,
        exit_year=planned,
        pairing_cadres=[
            {
                "name": cadre[0],
                "level": cadre[1],
                "unit": cadre[2],
                "start_date": f"{identified}-03-01",
                "end_date": None,
            }
        ],
    )
    if ordinary:
        # Not in the register: no attribute, status, cause, identification or pairing cadre.
        household.number = f"{village}{9000 + seq}"
        household.origin = "ordinary"
        for name in ("attribute", "status", "main_cause", "identified_year"):
            setattr(household, name, None)
        household.other_causes, household.pairing_cadres = [], []
        household.planned_exit_year = household.exit_year = None
        main_cause = rng.choice(["illness", "disaster", "other", "other"])
    members = []
    for name, relation, age, male in people:
        has_id = rng.random() > 0.03  # 岑溪 found thousands without one: keep some to flag
        number = _id_number(rng, _birth(rng, age), male) if has_id else None
        health = "healthy"
        if main_cause == "illness" and relation in ("head", "spouse") and rng.random() < 0.7:
            health = rng.choice(["chronic", "chronic", "serious"])
        elif main_cause == "disability" and relation == "head":
            health = "disabled"
        labour = (
            "none"
            if age < 16 or age > 75
            else (
                "weak"
                if health != "healthy" or age > 60
                else rng.choice(["normal", "normal", "skilled"])
            )
        )
        members.append(
            Member(
                household_id=household.id,
                name=name,
                id_number=number,
                id_number_hash=id_numbers.search_hash(number, key=key) if number else None,
                birth_date=id_numbers.birth_date(number) if number else None,
                relation=relation,
                health=health,
                labour=labour,
                in_school=6 <= age <= 18,
                medical_insurance=rng.random() < 0.97,
            )
        )
    return household, members


async def seed_demo(session: AsyncSession, *, echo: Callable[[str], None] = print) -> str:
    """Create (or complete) the demo county; returns the logins to print."""
    report = await regions_service.import_regions(session, text=regions_csv())
    if report.errors:
        raise RuntimeError("; ".join(report.errors))
    echo(
        f"regions: {report.created} created, {report.updated} updated, {report.unchanged} unchanged"
    )

    rng = random.Random(20161)  # same county every run
    key = get_settings().pii_hash_key
    existing = set(
        (
            await session.scalars(
                select(Household.number).where(col(Household.number).startswith("371522"))
            )
        ).all()
    )
    created = 0
    for _, _, villages in TOWNS:
        for village, name, _ in villages:
            for seq in range(1, HOUSEHOLDS_PER_VILLAGE + ORDINARY_PER_VILLAGE + 1):
                ordinary = seq > HOUSEHOLDS_PER_VILLAGE
                household, members = _household(
                    rng,
                    village,
                    seq - HOUSEHOLDS_PER_VILLAGE if ordinary else seq,
                    key,
                    ordinary=ordinary,
                )
                if household.number in existing:
                    continue
                session.add(household)
                session.add_all(members)
                created += 1
            echo(
                f"  {name}: {HOUSEHOLDS_PER_VILLAGE} registered, "
                f"{ORDINARY_PER_VILLAGE} ordinary households"
            )
    await session.flush()
    echo(f"households: {created} created, {len(existing)} already there")

    authors: dict[str, uuid.UUID] = {}
    town_staff: dict[str, uuid.UUID] = {}
    admin: uuid.UUID | None = None
    for username, display, role, regions in USERS:
        user, _ = await users_service.upsert_user(
            session,
            data=UserCreate(
                username=username,
                password=DEMO_PASSWORD,
                role=role,
                regions=regions,
                display_name=display,
            ),
        )
        if role is Role.officer:
            authors.update({village: user.id for village in regions})
        elif role is Role.town_staff:
            town_staff.update({town: user.id for town in regions})
        elif role is Role.county_admin:
            admin = user.id
    assert admin is not None
    with_records = await demo_records.seed_records(session, authors=authors, prefix="371522")
    echo(f"field records: added for {with_records} households (income history, visits, measures)")
    cases, alerts = await demo_monitoring.seed_monitoring(
        session,
        actors=demo_monitoring.Actors(officers=authors, town_staff=town_staff, county_admin=admin),
        county=COUNTY,
        prefix="371522",
    )
    echo(f"monitoring: {cases} cases (every category in every status) and {alerts} alerts added")
    lines = ["", "Demo logins (password for all: " + DEMO_PASSWORD + "):"]
    for username, display, role, regions in USERS:
        lines.append(f"  {username:<22} {role.value:<16} {display} — {', '.join(regions)}")
    return "\n".join(lines) + "\n"
