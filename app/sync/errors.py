"""The sync endpoints' problem types."""

from __future__ import annotations

from app.core.errors import AppError, Conflict, Forbidden, NotFound


class BatchTooLarge(AppError):
    status = 413
    code = "batch_too_large"
    title = "Batch too large"


class BatchIdReused(Conflict):
    code = "batch_id_reused"
    title = "Batch id reused"


class BatchNotFound(NotFound):
    code = "batch_not_found"
    title = "Batch not found"


class DeviceMismatch(Forbidden):
    code = "device_mismatch"
    title = "Device mismatch"


class CursorGone(AppError):
    """A change-feed cursor the server cannot continue from: the phone starts a fresh download."""

    status = 410
    code = "cursor_gone"
    title = "Start a fresh download"


class ConflictNotFound(NotFound):
    code = "conflict_not_found"
    title = "Conflict not found"


class ConflictResolved(Conflict):
    code = "conflict_already_resolved"
    title = "Conflict already resolved"


class HeldRecordNotFound(NotFound):
    code = "held_record_not_found"
    title = "Held record not found"


class HeldRecordDecided(Conflict):
    code = "held_record_decided"
    title = "Held record already decided"


class HeldRecordClash(Conflict):
    """Accepting a held record met a later revision or other content of the same revision:
    nothing was written and the record stays held."""

    code = "held_record_clash"
    title = "Held record clashes with the stored record"
