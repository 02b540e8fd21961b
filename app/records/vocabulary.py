"""Vocabulary of the field records: English codes of the public contract, Chinese labels beside."""

from __future__ import annotations

from enum import StrEnum


class RecordType(StrEnum):
    visit = "visit"
    income_snapshot = "income_snapshot"
    measure = "measure"


class VisitMode(StrEnum):
    in_home = "in_home"  # 入户
    phone = "phone"  # 电话
    video = "video"  # 视频
    other = "other"


class Crs(StrEnum):
    wgs84 = "wgs84"  # the phone's GPS
    gcj02 = "gcj02"  # 国测局坐标 (AMap, Tencent)
    bd09 = "bd09"  # 百度坐标


class Check(StrEnum):
    ok = "ok"
    not_ok = "not_ok"
    unknown = "unknown"


# 两不愁三保障 + safe drinking water: the household exit indicators.
INDICATORS = ("food", "clothing", "education", "medical", "housing", "water")


class PhotoTag(StrEnum):
    before = "before"
    after = "after"
    evidence = "evidence"
    sign_in = "sign_in"  # 拍照签到


class SnapshotKind(StrEnum):
    baseline = "baseline"  # 建档时基线
    annual = "annual"  # 年度核算
    verification = "verification"  # 脱贫验收核实
    monitoring = "monitoring"  # 防返贫监测


class MeasureCategory(StrEnum):
    industry = "industry"  # 产业
    employment = "employment"  # 就业
    finance = "finance"  # 金融 / 小额信贷
    public_welfare_job = "public_welfare_job"  # 公益岗位
    health = "health"  # 健康
    compulsory_education = "compulsory_education"  # 义务教育保障
    other_education = "other_education"  # 其他教育
    social_safety_net = "social_safety_net"  # 兜底/综合保障
    housing_safety = "housing_safety"  # 住房安全 / 危房改造
    drinking_water = "drinking_water"  # 饮水安全
    relocation = "relocation"  # 易地扶贫搬迁
    ecological = "ecological"  # 生态补偿
    photovoltaic = "photovoltaic"  # 光伏收益
    social_help = "social_help"  # 社会帮扶
    living_conditions = "living_conditions"  # 人居环境改善
    infrastructure = "infrastructure"  # 基础设施
    other = "other"


class MeasureStatus(StrEnum):
    planned = "planned"
    not_started = "not_started"
    in_progress = "in_progress"
    done = "done"
    cancelled = "cancelled"


class Outcome(StrEnum):
    """What writing a record did: shared by the single PUT and batch sync."""

    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    conflict = "conflict"
    stale = "stale"
