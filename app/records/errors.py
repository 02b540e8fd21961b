from typing import Any

from app.core.errors import Conflict, NotFound
from app.core.i18n import Text


class RecordNotFound(NotFound):
    code = "record_not_found"
    title = "Record not found"


class RecordConflict(Conflict):
    """Same revision, different content: the phone and the server disagree about one revision."""

    code = "conflict"
    title = "Conflicting revision"

    def __init__(self, detail: Text, *, record: dict[str, Any]) -> None:
        super().__init__(detail, record=record)


class RecordStale(Conflict):
    """The server already holds a later revision of this record."""

    code = "stale"
    title = "Stale revision"

    def __init__(self, detail: Text, *, record: dict[str, Any]) -> None:
        super().__init__(detail, record=record)
