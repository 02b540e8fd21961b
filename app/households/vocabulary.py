"""The household record's vocabulary: English codes of the public contract, Chinese labels beside.

The national codes (status 0/1/3/4, cause 1…99) are kept for exports to the national system.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar, cast

E = TypeVar("E", bound=StrEnum)


class Attribute(StrEnum):
    general = "general"  # 一般贫困户
    dibao = "dibao"  # 低保贫困户
    tekun = "tekun"  # 特困供养贫困户 (原五保)
    dibao_tekun = "dibao_tekun"  # 低保+特困


class Status(StrEnum):
    new = "new"  # 新识别
    in_poverty = "in_poverty"  # 未脱贫 (0)
    lifted = "lifted"  # 已脱贫(享受政策) (1)
    lifted_no_support = "lifted_no_support"  # 已脱贫(不享受政策) (4)
    returned = "returned"  # 返贫 (3)
    removed = "removed"  # 注销/清退


STATUS_NATIONAL_CODE = {
    Status.in_poverty: "0",
    Status.lifted: "1",
    Status.returned: "3",
    Status.lifted_no_support: "4",
}
# Chinese labels, for people (exports, messages); the codes above are the contract.
ATTRIBUTE_LABELS = {
    Attribute.general: "一般贫困户",
    Attribute.dibao: "低保贫困户",
    Attribute.tekun: "特困供养贫困户",
    Attribute.dibao_tekun: "低保特困户",
}
STATUS_LABELS = {
    Status.new: "新识别",
    Status.in_poverty: "未脱贫",
    Status.lifted: "已脱贫(享受政策)",
    Status.lifted_no_support: "已脱贫(不享受政策)",
    Status.returned: "返贫",
    Status.removed: "已注销",
}
# Statuses whose members count as poor population (poverty incidence).
POOR_STATUSES = frozenset({Status.new, Status.in_poverty, Status.returned})
# Leaving poverty: setting one of these from a poor status is an exit, which the exit rule must
# support unless the county admin overrides it with a reason.
EXIT_STATUSES = frozenset({Status.lifted, Status.lifted_no_support})


class Cause(StrEnum):
    illness = "illness"  # 1 因病
    disability = "disability"  # 2 因残
    schooling = "schooling"  # 3 因学
    disaster = "disaster"  # 4 因灾
    lack_land = "lack_land"  # 5 缺土地
    lack_water = "lack_water"  # 6 缺水
    lack_skills = "lack_skills"  # 7 缺技术
    lack_labour = "lack_labour"  # 8 缺劳力
    lack_capital = "lack_capital"  # 9 缺资金
    poor_transport = "poor_transport"  # 10 交通条件落后
    low_motivation = "low_motivation"  # 11 自身发展动力不足
    marriage = "marriage"  # 12 因婚
    funeral = "funeral"  # 13 因丧
    other = "other"  # 99 其他


CAUSE_LABELS = {
    Cause.illness: "因病",
    Cause.disability: "因残",
    Cause.schooling: "因学",
    Cause.disaster: "因灾",
    Cause.lack_land: "缺土地",
    Cause.lack_water: "缺水",
    Cause.lack_skills: "缺技术",
    Cause.lack_labour: "缺劳力",
    Cause.lack_capital: "缺资金",
    Cause.poor_transport: "交通条件落后",
    Cause.low_motivation: "自身发展动力不足",
    Cause.marriage: "因婚",
    Cause.funeral: "因丧",
    Cause.other: "其他",
}


class IdentificationStandard(StrEnum):
    national = "national"  # 国家标准
    provincial = "provincial"  # 省定标准
    municipal = "municipal"  # 市定标准


IDENTIFICATION_STANDARD_LABELS = {
    IdentificationStandard.national: "国家标准",
    IdentificationStandard.provincial: "省定标准",
    IdentificationStandard.municipal: "市定标准",
}


class Relation(StrEnum):
    head = "head"  # 01 户主
    spouse = "spouse"  # 02 配偶
    child = "child"  # 03 子/女
    parent = "parent"  # 父母
    grandchild = "grandchild"  # 孙子女
    other = "other"  # 99 其他


RELATION_LABELS = {
    Relation.head: "户主",
    Relation.spouse: "配偶",
    Relation.child: "子女",
    Relation.parent: "父母",
    Relation.grandchild: "孙子女",
    Relation.other: "其他",
}


class Health(StrEnum):
    healthy = "healthy"  # 健康
    chronic = "chronic"  # 长期慢性病
    serious = "serious"  # 患大病
    disabled = "disabled"  # 残疾


HEALTH_LABELS = {
    Health.healthy: "健康",
    Health.chronic: "长期慢性病",
    Health.serious: "患大病",
    Health.disabled: "残疾",
}


class Labour(StrEnum):
    normal = "normal"  # 普通劳动力
    skilled = "skilled"  # 技能劳动力
    weak = "weak"  # 弱劳动力或半劳动力
    lost = "lost"  # 丧失劳动力
    none = "none"  # 无劳动力


LABOUR_LABELS = {
    Labour.normal: "普通劳动力",
    Labour.skilled: "技能劳动力",
    Labour.weak: "弱劳动力或半劳动力",
    Labour.lost: "丧失劳动力",
    Labour.none: "无劳动力",
}


class CadreLevel(StrEnum):
    city = "city"  # 市级干部 (~10 households)
    county = "county"  # 县级干部 (~5)
    section = "section"  # 科级干部 (1)
    other = "other"


CADRE_LEVEL_LABELS = {
    CadreLevel.city: "市级干部",
    CadreLevel.county: "县级干部",
    CadreLevel.section: "科级干部",
    CadreLevel.other: "其他",
}


class MemberRemovalReason(StrEnum):
    death = "death"  # 死亡
    married_out = "married_out"  # 嫁出
    moved_out = "moved_out"  # 迁出
    other = "other"


MEMBER_REMOVAL_REASON_LABELS = {
    MemberRemovalReason.death: "死亡",
    MemberRemovalReason.married_out: "嫁出",
    MemberRemovalReason.moved_out: "迁出",
    MemberRemovalReason.other: "其他",
}


class MemberAdditionReason(StrEnum):
    newborn = "newborn"  # 新生儿
    married_in = "married_in"  # 嫁入
    moved_in = "moved_in"  # 迁入
    initial = "initial"  # 建档时录入
    other = "other"


MEMBER_ADDITION_REASON_LABELS = {
    MemberAdditionReason.newborn: "新生儿",
    MemberAdditionReason.married_in: "嫁入",
    MemberAdditionReason.moved_in: "迁入",
    MemberAdditionReason.initial: "建档时录入",
    MemberAdditionReason.other: "其他",
}


# --- reading codes from spreadsheets (the national system's exports) -----------------------
# A cell may hold the English code, the national code, the Chinese label above or another
# spelling the national system and county offices use: all are converted here, and only here.

CAUSE_NATIONAL_CODE = {
    Cause.illness: "1",
    Cause.disability: "2",
    Cause.schooling: "3",
    Cause.disaster: "4",
    Cause.lack_land: "5",
    Cause.lack_water: "6",
    Cause.lack_skills: "7",
    Cause.lack_labour: "8",
    Cause.lack_capital: "9",
    Cause.poor_transport: "10",
    Cause.low_motivation: "11",
    Cause.marriage: "12",
    Cause.funeral: "13",
    Cause.other: "99",
}
# 与户主关系: 01 户主, 02 配偶, 03 子 (a son or daughter), 99 其他.
RELATION_NATIONAL_CODE = {
    Relation.head: "01",
    Relation.spouse: "02",
    Relation.child: "03",
    Relation.other: "99",
}
_SPELLINGS: dict[type[StrEnum], dict[str, StrEnum]] = {
    Attribute: {
        "一般户": Attribute.general,
        "一般": Attribute.general,
        "低保户": Attribute.dibao,
        "低保": Attribute.dibao,
        "特困供养户": Attribute.tekun,
        "特困户": Attribute.tekun,
        "特困": Attribute.tekun,
        "五保贫困户": Attribute.tekun,
        "五保户": Attribute.tekun,
        "低保+特困": Attribute.dibao_tekun,
        "低保特困": Attribute.dibao_tekun,
    },
    Status: {"注销": Status.removed, "清退": Status.removed, "注销/清退": Status.removed},
    IdentificationStandard: {
        "国家": IdentificationStandard.national,
        "省定": IdentificationStandard.provincial,
        "市定": IdentificationStandard.municipal,
    },
    Relation: {
        "之子": Relation.child,
        "之女": Relation.child,
        "子": Relation.child,
        "女": Relation.child,
        "儿子": Relation.child,
        "女儿": Relation.child,
        "之父": Relation.parent,
        "之母": Relation.parent,
        "父亲": Relation.parent,
        "母亲": Relation.parent,
        "之孙子": Relation.grandchild,
        "之孙女": Relation.grandchild,
        "孙子": Relation.grandchild,
        "孙女": Relation.grandchild,
    },
    Health: {"慢性病": Health.chronic, "大病": Health.serious, "残疾人": Health.disabled},
    Labour: {"弱劳动力": Labour.weak, "半劳动力": Labour.weak},
}
_TERM_SOURCES: dict[type[StrEnum], tuple[dict[Any, str], dict[Any, str]]] = {
    Attribute: (ATTRIBUTE_LABELS, {}),
    Status: (STATUS_LABELS, dict(STATUS_NATIONAL_CODE)),
    Cause: (CAUSE_LABELS, CAUSE_NATIONAL_CODE),
    IdentificationStandard: (IDENTIFICATION_STANDARD_LABELS, {}),
    Relation: (RELATION_LABELS, RELATION_NATIONAL_CODE),
    Health: (HEALTH_LABELS, {}),
    Labour: (LABOUR_LABELS, {}),
}


def _key(text: str) -> str:
    """Spelling differences that do not matter: blanks, full-width brackets, case, leading 0s."""
    key = "".join(text.split()).replace("（", "(").replace("）", ")").replace("＋", "+").lower()
    return str(int(key)) if key.isdigit() else key


def _terms(enum: type[StrEnum]) -> dict[str, StrEnum]:
    labels, national = _TERM_SOURCES[enum]
    terms: dict[str, StrEnum] = {}
    for member in enum:
        terms[_key(member.value)] = member
        if member in labels:
            terms[_key(labels[member])] = member
        if member in national:
            terms[_key(national[member])] = member
    terms.update({_key(spelling): member for spelling, member in _SPELLINGS.get(enum, {}).items()})
    return terms


_TERMS = {enum: _terms(enum) for enum in _TERM_SOURCES}
READABLE = tuple(_TERM_SOURCES)


def parse_term(enum: type[E], text: str) -> E | None:
    """The member of `enum` (one of READABLE) a cell names: its code, national code, Chinese
    label or another known spelling; None when it names none."""
    return cast("E | None", _TERMS[enum].get(_key(text)))


def term_labels(enum: type[StrEnum]) -> str:
    """The Chinese labels of `enum`, for a message saying what a cell may hold."""
    labels = _TERM_SOURCES[enum][0]
    return "、".join(labels[m] for m in enum if m in labels)


_YES = frozenset({"是", "有", "已参加", "参加", "已参保", "1", "y", "yes", "true"})
_NO = frozenset({"否", "无", "未参加", "未参保", "0", "n", "no", "false"})
# 在校生状况: 非在校生, or the stage of schooling (学前教育, 小学, 七年级, 高中二年级, 中职 …).
_NOT_IN_SCHOOL = frozenset({"非在校生", "不在校", "否", "无", "辍学", "0", "no", "false"})
_SCHOOL_STAGES = ("在校", "学前", "小学", "初中", "高中", "年级", "中职", "高职", "中专", "技工")
_SCHOOL_STAGES_TOO = ("大专", "本科", "研究生", "是", "1", "yes", "true")


def parse_flag(text: str) -> bool | None:
    """A yes/no cell (是/否 …); None when it says neither."""
    key = _key(text)
    return True if key in _YES else False if key in _NO else None


def parse_in_school(text: str) -> bool | None:
    """An 在校生状况 cell: a stage of schooling is True, 非在校生 False; None when unknown."""
    key = _key(text)
    if key in _NOT_IN_SCHOOL:
        return False
    if any(stage in key for stage in _SCHOOL_STAGES) or key in _SCHOOL_STAGES_TOO:
        return True
    return None
