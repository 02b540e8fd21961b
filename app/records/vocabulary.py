"""Vocabulary of the field records: English codes of the public contract, Chinese labels beside."""

from __future__ import annotations

from enum import StrEnum


class RecordType(StrEnum):
    visit = "visit"
    income_snapshot = "income_snapshot"
    measure = "measure"
    monitoring_case = "monitoring_case"  # 监测对象: opened like a record, then its procedure


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


# --- Chinese labels of the codes above (GET /api/v1/vocabulary, exports) -------------------

RECORD_TYPE_LABELS = {
    RecordType.visit: "走访记录",
    RecordType.income_snapshot: "收入核算",
    RecordType.measure: "帮扶措施",
    RecordType.monitoring_case: "监测对象",
}
VISIT_MODE_LABELS = {
    VisitMode.in_home: "入户",
    VisitMode.phone: "电话",
    VisitMode.video: "视频",
    VisitMode.other: "其他",
}
CRS_LABELS = {
    Crs.wgs84: "WGS-84 (GPS)",
    Crs.gcj02: "GCJ-02 国测局坐标",
    Crs.bd09: "BD-09 百度坐标",
}
CHECK_LABELS = {Check.ok: "达标", Check.not_ok: "未达标", Check.unknown: "未核实"}
INDICATOR_LABELS = {
    "food": "不愁吃",
    "clothing": "不愁穿",
    "education": "义务教育保障",
    "medical": "基本医疗保障",
    "housing": "住房安全保障",
    "water": "饮水安全保障",
}
PHOTO_TAG_LABELS = {
    PhotoTag.before: "实施前",
    PhotoTag.after: "实施后",
    PhotoTag.evidence: "佐证材料",
    PhotoTag.sign_in: "拍照签到",
}
SNAPSHOT_KIND_LABELS = {
    SnapshotKind.baseline: "建档时基线",
    SnapshotKind.annual: "年度核算",
    SnapshotKind.verification: "脱贫验收核实",
    SnapshotKind.monitoring: "防返贫监测",
}
MEASURE_CATEGORY_LABELS = {
    MeasureCategory.industry: "产业帮扶",
    MeasureCategory.employment: "就业帮扶",
    MeasureCategory.finance: "金融帮扶(小额信贷)",
    MeasureCategory.public_welfare_job: "公益岗位",
    MeasureCategory.health: "健康帮扶",
    MeasureCategory.compulsory_education: "义务教育保障",
    MeasureCategory.other_education: "其他教育帮扶",
    MeasureCategory.social_safety_net: "兜底/综合保障",
    MeasureCategory.housing_safety: "住房安全(危房改造)",
    MeasureCategory.drinking_water: "饮水安全",
    MeasureCategory.relocation: "易地扶贫搬迁",
    MeasureCategory.ecological: "生态补偿",
    MeasureCategory.photovoltaic: "光伏收益",
    MeasureCategory.social_help: "社会帮扶",
    MeasureCategory.living_conditions: "人居环境改善",
    MeasureCategory.infrastructure: "基础设施",
    MeasureCategory.other: "其他",
}
MEASURE_STATUS_LABELS = {
    MeasureStatus.planned: "计划",
    MeasureStatus.not_started: "未开工",
    MeasureStatus.in_progress: "实施中",
    MeasureStatus.done: "已完成",
    MeasureStatus.cancelled: "已取消",
}
