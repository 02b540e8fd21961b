"""Event types and delivery states: English codes of the public contract, Chinese labels beside."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    visit_created = "visit.created"  # 新增走访
    household_status_changed = "household.status_changed"  # 户状态变更
    household_risk_flagged = "household.risk_flagged"  # 出现返贫风险
    measure_completed = "measure.completed"  # 帮扶措施完成
    sync_batch_received = "sync.batch_received"  # 收到离线同步批次
    monitoring_case_identified = "monitoring.case_identified"  # 识别为监测对象
    monitoring_case_cleared = "monitoring.case_cleared"  # 监测对象风险消除
    # Sent on request (POST /webhooks/{id}/test) to one webhook; nobody subscribes to it.
    webhook_test = "webhook.test"  # 测试事件


EVENT_TYPE_LABELS = {
    EventType.visit_created: "新增走访",
    EventType.household_status_changed: "户状态变更",
    EventType.household_risk_flagged: "出现返贫风险",
    EventType.measure_completed: "帮扶措施完成",
    EventType.sync_batch_received: "收到离线同步批次",
    EventType.monitoring_case_identified: "识别为监测对象",
    EventType.monitoring_case_cleared: "监测对象风险消除",
    EventType.webhook_test: "测试事件",
}

# The read scope an event type's data belongs to: subscribing needs it (a county admin holds
# them all; an API client those it was granted), and events stop when the owner loses it.
EVENT_SCOPES: dict[EventType, str] = {
    EventType.visit_created: "records:read",
    EventType.measure_completed: "records:read",
    EventType.household_status_changed: "households:read",
    EventType.household_risk_flagged: "progress:read",
    EventType.sync_batch_received: "sync:read",
    # A case is a field record of the household, read with its other records.
    EventType.monitoring_case_identified: "records:read",
    EventType.monitoring_case_cleared: "records:read",
}
# What a webhook may subscribe to: every type with a scope (not `webhook.test`).
SUBSCRIBABLE: tuple[EventType, ...] = tuple(t for t in EventType if t in EVENT_SCOPES)


class DeliveryStatus(StrEnum):
    pending = "pending"  # 待发送: not attempted yet (or asked to be sent again)
    failed = "failed"  # 重试中: attempted, failed, retried at next_attempt_at
    delivered = "delivered"  # 已送达: the receiver answered 2xx
    dead = "dead"  # 已放弃: still failing when its retry period ended


DELIVERY_STATUS_LABELS = {
    DeliveryStatus.pending: "待发送",
    DeliveryStatus.failed: "重试中",
    DeliveryStatus.delivered: "已送达",
    DeliveryStatus.dead: "已放弃",
}


# Deliveries still to be made: they hold back later events of their household.
OPEN_STATUSES = (DeliveryStatus.pending.value, DeliveryStatus.failed.value)
