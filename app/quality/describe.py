"""From a check's row to the issue the API shows: detail, reasons, link, masked ID number."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.auth.principal import Principal
from app.core.config import get_settings
from app.core.i18n import Text
from app.core.money import fen_str
from app.households.vocabulary import CAUSE_LABELS, Cause
from app.quality import gb11643
from app.quality.checks import CAUSE_BITS, INCOME_BITS
from app.quality.schemas import QualityIssue
from app.quality.vocabulary import IssueKind, IssueRecordType

_API = "/api/v1"
_UNSUPPORTED = {
    Cause.illness: Text("every current member is healthy"),
    Cause.disability: Text("no current member is disabled"),
    Cause.schooling: Text("no current member is in school"),
}
_INCOME_TEXT = {
    "negative_component": Text("a component is negative"),
    "totals_mismatch": Text("the stored totals do not add up from the components"),
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
    detail: Text,
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


def _duplicate(row: Any, holders: list[Holder], principal: Principal) -> tuple[Text, list[str]]:
    here = [h for h in holders if h.household_id == row.household_id]
    elsewhere = [h for h in holders if h.household_id != row.household_id]
    visible = sorted({h.household_number for h in elsewhere if principal.covers(h.village_code)})
    hidden = len({h.household_id for h in elsewhere if not principal.covers(h.village_code)})
    places = []
    if here:
        places.append(Text("{count} in this household", count=len(here)))
    if visible:
        places.append(Text("in household {numbers}", numbers=", ".join(visible)))
    if hidden:
        places.append(Text("in {count} household(s) outside your regions", count=hidden))
    values = {"name": row.name, "count": len(holders)}
    if places:
        detail = Text(
            "{name}: {count} other current member(s) hold the same ID number ({places})",
            places=Text.join(places),
            **values,
        )
    else:
        detail = Text("{name}: {count} other current member(s) hold the same ID number", **values)
    reasons = (["other_household"] if elsewhere else []) + (["same_household"] if here else [])
    return detail, reasons


def _income(row: Any) -> tuple[Text, list[str]]:
    fired = [name for name, bit in INCOME_BITS.items() if row.n1 & bit]
    texts = []
    for name in fired:
        if name == "negative_net_income":
            texts.append(Text("net income {income} yuan is negative", income=fen_str(row.n2)))
        elif name == "per_capita_above_bound":
            bound = fen_str(get_settings().quality_max_per_capita_yuan * 100)
            texts.append(
                Text(
                    "per-capita income {income} yuan is above {bound} yuan",
                    income=fen_str(row.n3),
                    bound=bound,
                )
            )
        else:
            texts.append(_INCOME_TEXT[name])
    detail = Text(
        "{year} {kind} snapshot: {problems}", year=row.n4, kind=row.text, problems=Text.join(texts)
    )
    return detail, fired


def _causes(row: Any) -> tuple[Text, list[str]]:
    causes = [cause for cause, bit in CAUSE_BITS.items() if row.n1 & bit]
    texts = []
    for cause in causes:
        values = {"cause": cause.value, "label": CAUSE_LABELS[cause], "but": _UNSUPPORTED[cause]}
        if cause == row.text:
            texts.append(Text("main cause {cause} ({label}) but {but}", **values))
        else:
            texts.append(Text("other cause {cause} ({label}) but {but}", **values))
    return Text.join(texts), [c.value for c in causes]


def _head(row: Any) -> tuple[Text, list[str]]:
    if not row.n1:
        return (
            Text("no current member has the relation head (head_name is {name})", name=row.name),
            ["no_head_member"],
        )
    values = {"head": row.text, "name": row.name}
    if row.n1 > 1:
        detail = Text(
            "the head member is {head}, the household's head_name {name} ({count} members have "
            "the relation head)",
            count=row.n1,
            **values,
        )
    else:
        detail = Text("the head member is {head}, the household's head_name {name}", **values)
    return detail, ["head_name_differs"]


def from_row(
    row: Any, *, kind: IssueKind, holders: list[Holder], principal: Principal, today: date
) -> QualityIssue:
    """The issue of one row of the SQL checks (see checks.py for what n1…n4 hold per kind)."""
    reasons: list[str] = []
    masked = None
    detail: Text
    match kind:
        case IssueKind.id_number_missing:
            detail = Text("{name} has no ID number", name=row.name)
        case IssueKind.id_number_invalid:
            # The SQL form of the rule reported it; normalize says why (tests keep them equal).
            problem = gb11643.problem(row.text, today=today) or "format"
            detail = Text("{name}: {problem}", name=row.name, problem=gb11643.PROBLEMS[problem])
            reasons = [problem]
            masked = gb11643.masked(row.text)
        case IssueKind.id_number_duplicate:
            detail, reasons = _duplicate(row, holders, principal)
            masked = gb11643.masked(row.text)
        case IssueKind.head_not_member:
            detail, reasons = _head(row)
        case IssueKind.size_mismatch:
            detail = Text(
                "the latest income snapshot ({year}, {kind}) counts {size} people; "
                "the household has {members} current members",
                year=row.n4,
                kind=row.text,
                size=row.n1,
                members=row.n2,
            )
        case IssueKind.cause_contradicts_members:
            detail, reasons = _causes(row)
        case IssueKind.cause_repeated:
            detail = Text("the main cause {cause} is also an other cause", cause=row.text)
            reasons = [row.text]
        case IssueKind.income_implausible:
            detail, reasons = _income(row)
        case IssueKind.visit_without_photo:
            detail = Text(
                "{mode} visit of {visited_at} has no photo",
                mode=row.text,
                visited_at=row.at.isoformat(),
            )
        case IssueKind.deceased_member_listed:
            values = {"name": row.name, "on": str(row.text)[:10], "alerts": row.n1}
            if row.n1 > 1:
                detail = Text(
                    "{name}: a department reported a death on {on} ({alerts} department "
                    "alerts); the member is still listed (remove the member with reason death, "
                    "or verify the alert as no_risk if the report was wrong)",
                    **values,
                )
            else:
                detail = Text(
                    "{name}: a department reported a death on {on}; the member is still listed "
                    "(remove the member with reason death, or verify the alert as no_risk if the "
                    "report was wrong)",
                    **values,
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
