"""Monitoring vocabulary: English codes of the public contract, Chinese labels beside.

The labels of every code here are served by GET /api/v1/vocabulary (with the other domains').
"""

from __future__ import annotations

from enum import StrEnum


class Origin(StrEnum):
    registered = "registered"  # 建档立卡户
    ordinary = "ordinary"  # 一般农户


class CaseCategory(StrEnum):
    unstable_lifted = "unstable_lifted"  # 脱贫不稳定户
    marginal = "marginal"  # 边缘易致贫户
    sudden_hardship = "sudden_hardship"  # 突发严重困难户


class RiskType(StrEnum):
    illness = "illness"  # 因病
    disability = "disability"  # 因残
    schooling = "schooling"  # 因学
    disaster = "disaster"  # 因灾
    accident = "accident"  # 因意外事故
    industry_failure = "industry_failure"  # 产业失败
    unstable_employment = "unstable_employment"  # 务工就业不稳
    lack_labour = "lack_labour"  # 缺劳动力
    high_rigid_expenses = "high_rigid_expenses"  # 刚性支出较大
    other = "other"  # 其他


MAX_RISK_TYPES = 5


class FoundVia(StrEnum):
    self_report = "self_report"  # 农户自主申报
    cadre_visit = "cadre_visit"  # 干部走访排查
    department_alert = "department_alert"  # 部门筛查预警


class CaseStatus(StrEnum):
    proposed = "proposed"  # 已申报
    village_reviewed = "village_reviewed"  # 村级评议通过
    town_reviewed = "town_reviewed"  # 乡镇审核通过
    identified = "identified"  # 已识别为监测对象
    clearing_village_reviewed = "clearing_village_reviewed"  # 风险消除村级评议通过
    clearing_town_reviewed = "clearing_town_reviewed"  # 风险消除乡镇审核通过
    cleared = "cleared"  # 风险已消除
    rejected = "rejected"  # 未通过识别


# A case in one of these is closed: the household may have a new one.
CLOSED_CASE_STATUSES = frozenset({CaseStatus.cleared, CaseStatus.rejected})


class Step(StrEnum):
    village_review = "village_review"  # 村级评议
    town_review = "town_review"  # 乡镇审核
    county_approval = "county_approval"  # 县级审批
    clearance_village_review = "clearance_village_review"  # 风险消除村级评议
    clearance_town_review = "clearance_town_review"  # 风险消除乡镇审核
    clearance_county_approval = "clearance_county_approval"  # 风险消除县级审批


# The step a case in each status waits for (none once cleared or rejected); who takes it and
# where it leads: app/monitoring/steps.py, whose table a test holds to this one.
NEXT_STEP: dict[CaseStatus, Step] = {
    CaseStatus.proposed: Step.village_review,
    CaseStatus.village_reviewed: Step.town_review,
    CaseStatus.town_reviewed: Step.county_approval,
    CaseStatus.identified: Step.clearance_village_review,
    CaseStatus.clearing_village_reviewed: Step.clearance_town_review,
    CaseStatus.clearing_town_reviewed: Step.clearance_county_approval,
}


class Decision(StrEnum):
    approve = "approve"  # 同意
    reject = "reject"  # 不同意


class ClearingMethod(StrEnum):
    assisted = "assisted"  # 帮扶消除
    natural = "natural"  # 自然消除


class ClearingBlock(StrEnum):
    """Why a case's risk cannot be cleared yet (the clearing rule's reasons)."""

    too_soon = "too_soon"  # 识别未满半年
    income_below_threshold = "income_below_threshold"  # 收入未超过监测范围
    income_not_stable = "income_not_stable"  # 收入未稳定超过监测范围半年
    rigid_expenses_unresolved = "rigid_expenses_unresolved"  # 刚性支出未解决
    guarantee_not_secured = "guarantee_not_secured"  # 三保障和饮水安全未保障
    no_measure = "no_measure"  # 未落实帮扶措施
    no_labour = "no_labour"  # 无劳动能力 (兜底保障, 不消除)


class Department(StrEnum):
    civil_affairs = "civil_affairs"  # 民政
    medical_insurance = "medical_insurance"  # 医保
    education = "education"  # 教育
    housing = "housing"  # 住建
    disabled_persons = "disabled_persons"  # 残联
    emergency = "emergency"  # 应急管理
    human_resources = "human_resources"  # 人社
    public_security = "public_security"  # 公安


class AlertKind(StrEnum):
    death = "death"  # 死亡
    large_medical_expense = "large_medical_expense"  # 大额医疗支出
    dropout = "dropout"  # 辍学
    dilapidated_house = "dilapidated_house"  # 危房
    disability = "disability"  # 新增残疾
    disaster = "disaster"  # 受灾
    job_loss = "job_loss"  # 失业
    assistance_granted = "assistance_granted"  # 纳入救助
    moved_out = "moved_out"  # 户籍迁出


class AlertStatus(StrEnum):
    open = "open"  # 待核实
    verified = "verified"  # 已核实


class AlertOutcome(StrEnum):
    case_opened = "case_opened"  # 已纳入监测
    no_risk = "no_risk"  # 核实无风险
    data_corrected = "data_corrected"  # 数据已更正


LABELS: dict[type[StrEnum], dict[str, str]] = {
    Origin: {"registered": "建档立卡户", "ordinary": "一般农户"},
    CaseCategory: {
        "unstable_lifted": "脱贫不稳定户",
        "marginal": "边缘易致贫户",
        "sudden_hardship": "突发严重困难户",
    },
    RiskType: {
        "illness": "因病",
        "disability": "因残",
        "schooling": "因学",
        "disaster": "因灾",
        "accident": "因意外事故",
        "industry_failure": "产业失败",
        "unstable_employment": "务工就业不稳",
        "lack_labour": "缺劳动力",
        "high_rigid_expenses": "刚性支出较大",
        "other": "其他",
    },
    FoundVia: {
        "self_report": "农户自主申报",
        "cadre_visit": "干部走访排查",
        "department_alert": "部门筛查预警",
    },
    CaseStatus: {
        "proposed": "已申报",
        "village_reviewed": "村级评议通过",
        "town_reviewed": "乡镇审核通过",
        "identified": "已识别为监测对象",
        "clearing_village_reviewed": "风险消除村级评议通过",
        "clearing_town_reviewed": "风险消除乡镇审核通过",
        "cleared": "风险已消除",
        "rejected": "未通过识别",
    },
    Step: {
        "village_review": "村级评议",
        "town_review": "乡镇审核",
        "county_approval": "县级审批",
        "clearance_village_review": "风险消除村级评议",
        "clearance_town_review": "风险消除乡镇审核",
        "clearance_county_approval": "风险消除县级审批",
    },
    Decision: {"approve": "同意", "reject": "不同意"},
    ClearingMethod: {"assisted": "帮扶消除", "natural": "自然消除"},
    ClearingBlock: {
        "too_soon": "识别未满半年",
        "income_below_threshold": "人均纯收入未超过监测范围",
        "income_not_stable": "收入未稳定超过监测范围半年以上",
        "rigid_expenses_unresolved": "刚性支出问题未解决",
        "guarantee_not_secured": "两不愁三保障及饮水安全未保障",
        "no_measure": "未落实帮扶措施",
        "no_labour": "无劳动能力, 纳入兜底保障, 不作风险消除",
    },
    Department: {
        "civil_affairs": "民政部门",
        "medical_insurance": "医保部门",
        "education": "教育部门",
        "housing": "住建部门",
        "disabled_persons": "残联",
        "emergency": "应急管理部门",
        "human_resources": "人社部门",
        "public_security": "公安部门",
    },
    AlertKind: {
        "death": "死亡",
        "large_medical_expense": "大额医疗支出",
        "dropout": "辍学",
        "dilapidated_house": "住房安全问题",
        "disability": "新增残疾",
        "disaster": "受灾",
        "job_loss": "失业",
        "assistance_granted": "纳入社会救助",
        "moved_out": "户籍迁出",
    },
    AlertStatus: {"open": "待核实", "verified": "已核实"},
    AlertOutcome: {
        "case_opened": "已纳入监测",
        "no_risk": "核实无风险",
        "data_corrected": "数据已更正",
    },
}
