"""The vocabulary document: for each vocabulary, its codes (the contract) and Chinese labels."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Term(BaseModel):
    code: str = Field(description="The code the API sends and accepts.", examples=["lifted"])
    label: str = Field(description="What to show people.", examples=["已脱贫(享受政策)"])


def _example(schema: dict[str, Any]) -> None:
    # The example is the document itself (imported late: the service builds it from this model).
    from app.vocabulary import service

    schema["examples"] = [service.get_vocabulary().model_dump(mode="json")]


class Vocabulary(BaseModel):
    """Each vocabulary's codes in the order of the contract, with their Chinese labels."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_example)

    # households
    household_origin: list[Term] = Field(description="户类别: a household's `origin`.")
    household_status: list[Term] = Field(description="贫困户状态: `status`.")
    household_attribute: list[Term] = Field(description="贫困户属性: `attribute`.")
    poverty_cause: list[Term] = Field(description="致贫原因: `main_cause`, `other_causes`.")
    identification_standard: list[Term] = Field(description="识别标准.")
    member_relation: list[Term] = Field(description="与户主关系: a member's `relation`.")
    member_health: list[Term] = Field(description="健康状况: `health`.")
    member_labour: list[Term] = Field(description="劳动能力: `labour`.")
    member_addition_reason: list[Term] = Field(description="成员增加原因: `added_reason`.")
    member_removal_reason: list[Term] = Field(description="成员减少原因: a removal's `reason`.")
    cadre_level: list[Term] = Field(description="帮扶责任人级别: a pairing cadre's `level`.")
    # field records
    record_type: list[Term] = Field(description="记录类型: sync batch and change feed `type`.")
    visit_mode: list[Term] = Field(description="走访方式: a visit's `mode`.")
    coordinate_system: list[Term] = Field(description="坐标系: a position's `crs`.")
    indicator: list[Term] = Field(description="两不愁三保障及饮水安全: a visit's `checks` keys.")
    check: list[Term] = Field(description="核查结果: the values of a visit's `checks`.")
    photo_tag: list[Term] = Field(description="照片类型: a photo's `tag`.")
    snapshot_kind: list[Term] = Field(description="收入核算类型: an income snapshot's `kind`.")
    measure_category: list[Term] = Field(description="帮扶措施类别: a measure's `category`.")
    measure_status: list[Term] = Field(description="帮扶措施状态: a measure's `status`.")
    # progress
    exit_reason: list[Term] = Field(description="未达退出标准原因: a household's exit `reasons`.")
    risk_flag: list[Term] = Field(description="返贫风险标识: a household's `risk_flags`.")
    # monitoring
    case_category: list[Term] = Field(description="监测对象类别: a case's `category`.")
    risk_type: list[Term] = Field(description="风险类型: a case's `risk_types`.")
    found_via: list[Term] = Field(description="发现方式: a case's `found_via`.")
    case_status: list[Term] = Field(description="监测对象状态: a case's `status`.")
    case_step: list[Term] = Field(description="识别与风险消除程序: a step's `step`.")
    step_decision: list[Term] = Field(description="评议审核结果: a step's `decision`.")
    clearing_method: list[Term] = Field(description="风险消除方式: `clearing_method`.")
    clearing_block: list[Term] = Field(description="不能消除风险的原因: clearing `reasons`.")
    alert_department: list[Term] = Field(description="预警部门: an alert's `department`.")
    alert_kind: list[Term] = Field(description="预警类型: an alert's `kind`.")
    alert_status: list[Term] = Field(description="预警状态: an alert's `status`.")
    alert_outcome: list[Term] = Field(description="核实结果: a verified alert's `outcome`.")
    # the rest
    quality_issue_kind: list[Term] = Field(description="数据质量问题: an issue's `kind`.")
    webhook_event_type: list[Term] = Field(description="推送事件: a webhook event's `type`.")
    webhook_delivery_status: list[Term] = Field(description="推送状态: a delivery's `status`.")
    role: list[Term] = Field(description="角色: a user's `role`.")
