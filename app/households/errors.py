from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound


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
