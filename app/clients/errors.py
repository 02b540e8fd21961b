"""Errors of the API client endpoints."""

from app.core.errors import Conflict, NotFound


class ClientNotFound(NotFound):
    code = "client_not_found"
    title = "API client not found"


class ClientDisabled(Conflict):
    code = "client_disabled"
    title = "API client disabled"
