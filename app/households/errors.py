from typing import Any

from app.core.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound
from app.core.i18n import Text


class HouseholdNotFound(NotFound):
    code = "household_not_found"
    title = "Household not found"


class MemberNotFound(NotFound):
    code = "member_not_found"
    title = "Member not found"


class HouseholdNumberTaken(Conflict):
    code = "household_number_taken"
    title = "Household number already registered"


class IdNumberRegistered(Conflict):
    code = "id_number_registered"
    title = "ID number already registered"


class ExitRuleNotMet(InvalidInput):
    """An exit (lifted) the exit rule does not support, without the county admin's reason."""

    code = "exit_rule_not_met"
    title = "Exit rule not met"


class OverrideNotAllowed(Forbidden):
    code = "override_not_allowed"
    title = "Only the county admin may override the exit rule"


class HouseholdFileUnreadable(InvalidInput):
    """The import file as a whole cannot be read: nothing was checked or written.

    `reason`: not_xlsx, bad_xlsx, no_header, missing_columns; `message` in 简体中文.
    """

    code = "household_file_unreadable"
    title = "Household file unreadable"

    def __init__(self, reason: str, detail: Text, message: str, **extensions: Any) -> None:
        super().__init__(detail, reason=reason, message=message, **extensions)
        self.reason = reason


class HouseholdFileTooLarge(AppError):
    """The import file passes a limit (`reason`: bytes, inflated, rows): split it."""

    status = 413
    code = "household_file_too_large"
    title = "Household file too large"

    def __init__(self, reason: str, detail: Text, message: str, **extensions: Any) -> None:
        super().__init__(detail, reason=reason, message=message, **extensions)
        self.reason = reason


class HouseholdImportInvalid(InvalidInput):
    """An import (not a dry run) with errors in its rows: nothing was written; `report` says
    what is wrong in each row."""

    code = "household_import_invalid"
    title = "Household import has errors"
