"""Errors of monitoring cases and their procedure."""

from __future__ import annotations

import uuid
from typing import Any

from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.i18n import Text


class CaseNotFound(NotFound):
    code = "case_not_found"
    title = "Monitoring case not found"


class CaseOpen(Conflict):
    """The household already has a case that is neither cleared nor rejected."""

    code = "case_open"
    title = "The household has an open monitoring case"

    def __init__(self, *, household_id: uuid.UUID, case_id: uuid.UUID, status: str) -> None:
        super().__init__(
            Text(
                "household {household_id} already has the open monitoring case "
                "{case_id} (status {status}): a household has one open case at a "
                "time",
                household_id=household_id,
                case_id=case_id,
                status=status,
            ),
            open_case_id=str(case_id),
            open_case_status=status,
        )


class CaseClosed(Conflict):
    """A new revision of a case that is cleared or rejected: it is kept as it was decided."""

    code = "case_closed"
    title = "The monitoring case is closed"


class StepOutOfOrder(Conflict):
    code = "step_out_of_order"
    title = "Step out of order"

    def __init__(self, *, step: str, status: str, expected_step: str | None) -> None:
        if expected_step is None:
            detail = Text("the case is {status}: it takes no more steps", status=status)
        else:
            detail = Text(
                "the case is {status}: its next step is {expected_step}, not {step}",
                status=status,
                expected_step=expected_step,
                step=step,
            )
        super().__init__(detail, case_status=status, expected_step=expected_step)


class ClearingBlocked(InvalidInput):
    """The clearing rule does not (yet) allow the risk to be cleared."""

    code = "clearing_blocked"
    title = "The risk cannot be cleared yet"

    def __init__(self, detail: Text, *, reasons: list[dict[str, Any]]) -> None:
        super().__init__(detail, reasons=reasons)
