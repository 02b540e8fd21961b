from app.core.errors import Conflict, NotFound


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
