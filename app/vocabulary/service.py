"""The vocabulary: each domain's codes with the Chinese labels kept beside its enums.

Every label comes from its domain's vocabulary module; a code without a label is an error here
(and in tests/test_vocabulary.py), so a new code cannot ship unlabelled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from enum import StrEnum
from functools import cache
from typing import Any

from app.exports.columns import FLAG_LABELS
from app.households import vocabulary as households
from app.monitoring import vocabulary as monitoring
from app.progress import household_schemas as progress
from app.quality import vocabulary as quality
from app.records import vocabulary as records
from app.users.models import ROLE_LABELS, Role
from app.vocabulary.schemas import Term, Vocabulary
from app.webhooks import vocabulary as webhooks


def _monitoring(enum: type[StrEnum]) -> tuple[type[StrEnum], Mapping[Any, str]]:
    return enum, monitoring.LABELS[enum]


# Vocabulary name → its codes (an enum, or the codes in order) and their labels.
SOURCES: dict[str, tuple[Iterable[str], Mapping[Any, str]]] = {
    "household_origin": _monitoring(monitoring.Origin),
    "household_status": (households.Status, households.STATUS_LABELS),
    "household_attribute": (households.Attribute, households.ATTRIBUTE_LABELS),
    "poverty_cause": (households.Cause, households.CAUSE_LABELS),
    "identification_standard": (
        households.IdentificationStandard,
        households.IDENTIFICATION_STANDARD_LABELS,
    ),
    "member_relation": (households.Relation, households.RELATION_LABELS),
    "member_health": (households.Health, households.HEALTH_LABELS),
    "member_labour": (households.Labour, households.LABOUR_LABELS),
    "member_addition_reason": (
        households.MemberAdditionReason,
        households.MEMBER_ADDITION_REASON_LABELS,
    ),
    "member_removal_reason": (
        households.MemberRemovalReason,
        households.MEMBER_REMOVAL_REASON_LABELS,
    ),
    "cadre_level": (households.CadreLevel, households.CADRE_LEVEL_LABELS),
    "record_type": (records.RecordType, records.RECORD_TYPE_LABELS),
    "visit_mode": (records.VisitMode, records.VISIT_MODE_LABELS),
    "coordinate_system": (records.Crs, records.CRS_LABELS),
    "indicator": (records.INDICATORS, records.INDICATOR_LABELS),
    "check": (records.Check, records.CHECK_LABELS),
    "photo_tag": (records.PhotoTag, records.PHOTO_TAG_LABELS),
    "snapshot_kind": (records.SnapshotKind, records.SNAPSHOT_KIND_LABELS),
    "measure_category": (records.MeasureCategory, records.MEASURE_CATEGORY_LABELS),
    "measure_status": (records.MeasureStatus, records.MEASURE_STATUS_LABELS),
    "exit_reason": (progress.ExitBlock, progress.EXIT_BLOCK_LABELS),
    # Labelled for the export; the labels belong beside RiskCode (progress).
    "risk_flag": (progress.RiskCode, FLAG_LABELS),
    "case_category": _monitoring(monitoring.CaseCategory),
    "risk_type": _monitoring(monitoring.RiskType),
    "found_via": _monitoring(monitoring.FoundVia),
    "case_status": _monitoring(monitoring.CaseStatus),
    "case_step": _monitoring(monitoring.Step),
    "step_decision": _monitoring(monitoring.Decision),
    "clearing_method": _monitoring(monitoring.ClearingMethod),
    "clearing_block": _monitoring(monitoring.ClearingBlock),
    "alert_department": _monitoring(monitoring.Department),
    "alert_kind": _monitoring(monitoring.AlertKind),
    "alert_status": _monitoring(monitoring.AlertStatus),
    "alert_outcome": _monitoring(monitoring.AlertOutcome),
    "quality_issue_kind": (quality.IssueKind, quality.LABELS[quality.IssueKind]),
    "webhook_event_type": (webhooks.EventType, webhooks.EVENT_TYPE_LABELS),
    "webhook_delivery_status": (webhooks.DeliveryStatus, webhooks.DELIVERY_STATUS_LABELS),
    "role": (Role, ROLE_LABELS),
}


class UnlabelledCode(LookupError):
    """A code of the contract without its Chinese label: a programming error."""


def terms(codes: Iterable[str], labels: Mapping[Any, str]) -> list[Term]:
    """The codes in order, each with its label."""
    out = []
    for code in codes:
        value = str(code)
        if value not in labels:
            raise UnlabelledCode(f"the code {value!r} has no label")
        out.append(Term(code=value, label=labels[value]))
    return out


@cache
def get_vocabulary() -> Vocabulary:
    """Every vocabulary of the contract (fixed for a release: built once)."""
    return Vocabulary(**{name: terms(codes, labels) for name, (codes, labels) in SOURCES.items()})


@cache
def vocabulary_etag() -> str:
    """A strong ETag of the document: a digest of its JSON."""
    text = json.dumps(get_vocabulary().model_dump(mode="json"), ensure_ascii=False)
    return f'"{hashlib.sha256(text.encode()).hexdigest()[:32]}"'
