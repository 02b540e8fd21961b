"""Errors of the user administration endpoints."""

from app.core.errors import Conflict, NotFound


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "User not found"


class UsernameTaken(Conflict):
    code = "username_taken"
    title = "Username already taken"


class CannotDisableYourself(Conflict):
    code = "cannot_disable_yourself"
    title = "You cannot disable your own account"
