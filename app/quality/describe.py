"""From a check's row to the issue the API shows: detail, reasons, link, masked ID number."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.auth.principal import Principal
from app.core.config import get_settings
from app.core.money import fen_str
from app.households.vocabulary import CAUSE_LABELS, Cause
from app.quality import gb11643
from app.quality.checks import CAUSE_BITS, INCOME_BITS
from app.quality.schemas import QualityIssue
from app.quality.vocabulary import IssueKind, IssueRecordType

_API = "/api/v1"
_UNSUPPORTED = {
    Cause.illness: "every current member is healthy",
    Cause.disability: "no current member is disabled",
    Cause.schooling: "no current member is in school",
}
_INCOME_TEXT = {
    "negative_component": "a component is negative",
    "totals_mismatch": "the stored totals do not add up from the components",
}


@dataclass(frozen=True)
class Holder:
    """Another current member holding the same ID number: where, for the duplicate's detail."""

    household_id: uuid.UUID
    household_number: str
    village_code: str


def href(record_type: IssueRecordType, household_id: uuid.UUID, record_id: uuid.UUID) -> str:
    """The path this API serves the record at."""
    match record_type:
        case IssueRecordType.household:
            return f"{_API}/households/{record_id}"
        case IssueRecordType.member:
            return f"{_API}/households/{household_id}/members/{record_id}"
        case IssueRecordType.visit:
            return f"{_API}/visits/{record_id}"
        case IssueRecordType.income_snapshot:
            return f"{_API}/income-snapshots/{record_id}"


def issue(
    kind: IssueKind,
    *,
    village_code: str,
    record_type: IssueRecordType,
    record_id: uuid.UUID,
    household_id: uuid.UUID,
    household_number: str,
    detail: str,
    reasons: list[str] | None = None,
    id_number_masked: str | None = None,
) -> QualityIssue:
    return QualityIssue(
        kind=kind,
        village_code=village_code,
        household_id=household_id,
        household_number=household_number,
        record_type=record_type,
        record_id=record_id,
        href=href(record_type, household_id, record_id),
        reasons=reasons or [],
        detail=detail,
        id_number_masked=id_number_masked,
    )


def _duplicate(row: Any, holders: list[Holder], principal: Principal) -> tuple[str, list[str]]:
    here = [h for h in holders if h.household_id == row.household_id]
    elsewhere = [h for h in holders if h.household_id != row.household_id]
    visible = sorted({h.household_number for h in elsewhere if principal.covers(h.village_code)})
    hidden = len({h.household_id for h in elsewhere if not principal.covers(h.village_code)})
    places = []
    if here:
        places.append(f"{len(here)} in this household")
    if visible:
        places.append("in household " + ", ".join(visible))
    if hidden:
        places.append(f"in {hidden} household(s) outside your regions")
    count = len(holders)
    detail = f"{row.name}: {count} other current member(s) hold the same ID number"
    detail += f" ({'; '.join(places)})" if places else ""
    reasons = (["other_household"] if elsewhere else []) + (["same_household"] if here else [])
    return detail, reasons


def _income(row: Any) -> tuple[str, list[str]]:
    fired = [name for name, bit in INCOME_BITS.items() if row.n1 & bit]
    texts = []
    for name in fired:
        if name == "negative_net_income":
            texts.append(f"net income {fen_str(row.n2)} yuan is negative")
        elif name == "per_capita_above_bound":
            bound = fen_str(get_settings().quality_max_per_capita_yuan * 100)
            texts.append(f"per-capita income {fen_str(row.n3)} yuan is above {bound} yuan")
        else:
            texts.append(_INCOME_TEXT[name])
    return f"{row.n4} {row.text} snapshot: " + "; ".join(texts), fired


def _causes(row: Any) -> tuple[str, list[str]]:
    causes = [cause for cause, bit in CAUSE_BITS.items() if row.n1 & bit]
    texts = []
    for cause in causes:
        role = "main cause" if cause == row.text else "other cause"
        texts.append(f"{role} {cause.value} ({CAUSE_LABELS[cause]}) but {_UNSUPPORTED[cause]}")
    return "; ".join(texts), [c.value for c in causes]


def _head(row: Any) -> tuple[str, list[str]]:
    if not row.n1:
        return (
            f"no current member has the relation head (head_name is {row.name})",
            ["no_head_member"],
        )
    several = f" ({row.n1} members have the relation head)" if row.n1 > 1 else ""
    return (
        f"the head member is {row.text}, the household's head_name {row.name}{several}",
        ["head_name_differs"],
    )


def from_row(
    row: Any, *, kind: IssueKind, holders: list[Holder], principal: Principal, today: date
) -> QualityIssue:
    """The issue of one row of the SQL checks (see checks.py for what n1…n4 hold per kind)."""
    reasons: list[str] = []
    masked = None
    match kind:
        case IssueKind.id_number_missing:
            detail = f"{row.name} has no ID number"
        case IssueKind.id_number_invalid:
            # The SQL form of the rule reported it; normalize says why (tests keep them equal).
            problem = gb11643.problem(row.text, today=today) or "format"
            detail, reasons = f"{row.name}: {gb11643.PROBLEMS[problem]}", [problem]
            masked = gb11643.masked(row.text)
        case IssueKind.id_number_duplicate:
            detail, reasons = _duplicate(row, holders, principal)
            masked = gb11643.masked(row.text)
        case IssueKind.head_not_member:
            detail, reasons = _head(row)
        case IssueKind.size_mismatch:
            detail = (
                f"the latest income snapshot ({row.n4}, {row.text}) counts {row.n1} people; "
                f"the household has {row.n2} current members"
            )
        case IssueKind.cause_contradicts_members:
            detail, reasons = _causes(row)
        case IssueKind.cause_repeated:
            detail, reasons = f"the main cause {row.text} is also an other cause", [row.text]
        case IssueKind.income_implausible:
            detail, reasons = _income(row)
        case IssueKind.visit_without_photo:
            detail = f"{row.text} visit of {row.at.isoformat()} has no photo"
        case IssueKind.deceased_member_listed:
            alerts = f" ({row.n1} department alerts)" if row.n1 > 1 else ""
            detail = (
                f"{row.name}: a department reported a death on {str(row.text)[:10]}{alerts}; "
                "the member is still listed (remove the member with reason death, or verify "
                "the alert as no_risk if the report was wrong)"
            )
        case _:  # pragma: no cover - visit_far_from_village is computed in Python
            raise ValueError(f"{kind} is not a SQL check")
    return issue(
        kind,
        village_code=row.village_code,
        record_type=IssueRecordType(row.record_type),
        record_id=row.record_id,
        household_id=row.household_id,
        household_number=row.household_number,
        detail=detail,
        reasons=reasons,
        id_number_masked=masked,
    )
