"""What the audit log records of writes, kept by the database session itself.

Like the sync change log (`app.sync.changelog`), the log is written by session events, not by
each service, so no write path can forget it: every flush notes the audited objects it inserted,
changed or deleted (which fields, with personal data masked), and the commit appends the notes
of its transaction to the chain in one go (`app.audit.chain.append`). Notes of a savepoint that
is rolled back go with it. Sign-ins are noted by `note` (see `app.audit.service`).

Which tables are audited is handed in where the app is assembled (`install`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.util import identity_key
from sqlmodel import col

from app.audit import chain
from app.auth.principal import caller_of
from app.core.base import utcnow
from app.core.db import SAVEPOINT_COMMITS
from app.households.id_numbers import mask, mask_phone
from app.households.models import Household
from app.households.privacy import coarse, scrub

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
SHOWN_CHARS = 120  # of a text or structured value
SECRET = "***"
# Columns every write has that say nothing of what changed (who and when are the entry's own).
_SKIPPED = frozenset(
    {"id", "created_at", "updated_at", "received_at", "content_hash", "author_id", "updated_by"}
)


def mask_name(name: str) -> str:
    """A person's name with its first character kept: 张**."""
    return name[:1] + "*" * (len(name) - 1)


# Personal data by column name, as the API shows it to someone without `pii:read`.
MASKS: dict[str, Callable[[str], str]] = {
    "id_number": mask,
    "phone": mask_phone,
    "head_name": mask_name,
    "bank_account": mask_phone,
}


@dataclass(frozen=True)
class Audited:
    """An audited table: the name entries give its rows, and masks of its own columns."""

    entity_type: str
    masks: dict[str, Callable[[str], str]] = field(default_factory=dict)
    # The column naming the row's region; without one: its household's village, or the actor's
    # region.
    region: str | None = None
    # Bookkeeping columns: not recorded, and an update of nothing else is no entry (a phone's
    # last sync, written at every batch).
    quiet: frozenset[str] = frozenset()


_audited: dict[type[Any], Audited] = {}
_PENDING = "fieldsync_audit_pending"


@dataclass
class _Note:
    fields: dict[str, Any]
    transaction: SessionTransaction  # the innermost transaction the note was made in
    household_id: uuid.UUID | None = None  # region still to look up from the household


def _secret(name: str) -> bool:
    return name.endswith("_hash") or any(w in name for w in ("password", "secret", "token"))


def shown(name: str, value: Any, masks: dict[str, Callable[[str], str]]) -> Any:
    """A column's value as the audit log keeps it: personal data masked, secrets hidden."""
    return _shown(value, _how(name, masks))


# How a column's values are kept: hidden (a secret), masked (with its masker), or shown.
_How = Callable[[str], str] | bool | None


def _how(name: str, masks: dict[str, Callable[[str], str]]) -> _How:
    if _secret(name):
        return True
    masker = masks.get(name) or MASKS.get(name)
    if masker is not None:
        return masker
    return False if name in ("lat", "lon") else None


def _shown(value: Any, how: _How) -> Any:
    if value is None:
        return None
    if how is True:
        return SECRET
    if callable(how):
        return how(str(value))
    if how is False and isinstance(value, float):  # a position: rounded
        return coarse(value)
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return scrub(value)[:SHOWN_CHARS]


# Per audited class: its recorded columns and how each is kept (worked out once, not per row).
_plans: dict[type[Any], list[tuple[str, _How]]] = {}


def _plan(obj: Any, audited: Audited) -> list[tuple[str, _How]]:
    plan = _plans.get(type(obj))
    if plan is None:
        plan = _plans[type(obj)] = [
            (attr.key, _how(attr.key, audited.masks))
            for attr in inspect(obj).mapper.column_attrs
            if attr.key not in _SKIPPED and attr.key not in audited.quiet
        ]
    return plan


def _changes(obj: Any, action: str, audited: Audited) -> dict[str, Any]:
    if action == DELETE:
        return {}
    if action == CREATE:  # every value set, read from the object as it was flushed
        values = obj.__dict__
        return {
            name: _shown(values[name], how)
            for name, how in _plan(obj, audited)
            if values.get(name) is not None
        }
    attrs = inspect(obj).attrs
    return {
        name: _shown(attrs[name].value, how)
        for name, how in _plan(obj, audited)
        if attrs[name].history.has_changes()
    }


def note(session: Session, fields: dict[str, Any]) -> None:
    """Add an entry (the `chain.HASHED` fields but `id` and `at`) to the transaction's notes."""
    _notes(session).append(_Note(_entry(fields), _innermost(session)))


async def note_inserted(
    session: AsyncSession,
    entity_type: str,
    rows: Iterable[tuple[uuid.UUID, uuid.UUID, str, dict[str, Any]]],
) -> None:
    """Note new rows a bulk Core INSERT wrote (the flush hook sees only ORM objects): `rows` are
    (id, household_id, village_code, values), e.g. from the statement's RETURNING; the values
    are masked here as any other write's."""
    sync = session.sync_session
    caller = caller_of(sync)
    principal = caller.principal if caller else None
    for entity_id, household_id, village, values in rows:
        note(
            sync,
            {
                "actor_id": principal.id if principal else None,
                "actor_role": principal.role.value if principal else None,
                "device_id": principal.device_id if principal else None,
                "client_address": caller.client_address if caller else None,
                "action": CREATE,
                "entity_type": entity_type,
                "entity_id": str(entity_id),
                "household_id": household_id,
                "region_code": village,
                "changes": {name: shown(name, value, {}) for name, value in values.items()},
            },
        )


def _entry(fields: dict[str, Any]) -> dict[str, Any]:
    entry = dict.fromkeys(chain.HASHED)
    entry.update(fields, id=uuid.uuid4(), at=utcnow())
    entry["changes"] = entry["changes"] or {}
    return entry


def _notes(session: Session) -> list[_Note]:
    notes: list[_Note] = session.info.setdefault(_PENDING, [])
    return notes


def _innermost(session: Session) -> SessionTransaction:
    transaction = session.get_nested_transaction() or session.get_transaction()
    assert transaction is not None  # a flush runs in a transaction
    return transaction


def _after_flush(session: Session, _context: Any) -> None:
    found: list[tuple[Any, str, Audited]] = []
    for objects, action in ((session.new, CREATE), (session.dirty, UPDATE)):
        for obj in objects:
            audited = _audited.get(type(obj))
            if audited is not None and (
                action == CREATE or session.is_modified(obj, include_collections=False)
            ):
                found.append((obj, action, audited))
    for obj in session.deleted:
        if (audited := _audited.get(type(obj))) is not None:
            found.append((obj, DELETE, audited))
    if not found:
        return
    caller = caller_of(session)
    principal = caller.principal if caller else None
    actor_region = principal.region_codes[0] if principal and principal.region_codes else None
    transaction = _innermost(session)
    notes = _notes(session)
    for obj, action, audited in found:
        changes = _changes(obj, action, audited)
        if action == UPDATE and not changes:
            continue
        household_id = getattr(obj, "household_id", None)
        if isinstance(obj, Household):
            household_id = obj.id
        region = getattr(obj, audited.region, None) if audited.region else None
        pending_household = None
        if region is None and household_id is not None:
            known = session.identity_map.get(identity_key(Household, household_id))
            if known is not None:
                region = known.village_code
            else:
                pending_household = household_id
        fields = {
            "actor_id": principal.id if principal else None,
            "actor_role": principal.role.value if principal else None,
            "device_id": principal.device_id if principal else None,
            "client_address": caller.client_address if caller else None,
            "action": action,
            "entity_type": audited.entity_type,
            "entity_id": _identity(obj),
            "household_id": household_id,
            "region_code": region if region is not None or pending_household else actor_region,
            "changes": changes,
        }
        notes.append(_Note(_entry(fields), transaction, pending_household))


def _identity(obj: Any) -> str:
    # From the columns: a new object has no identity key until the flush is over.
    return ":".join(str(part) for part in inspect(obj).mapper.primary_key_from_instance(obj))


def _sealed_here(session: Session) -> SessionTransaction | None:
    """The transaction this commit ends, if its notes are appended now: the root's, or in a
    session whose commits are savepoints (the tests'), a savepoint right under the root."""
    nested = session.get_nested_transaction()
    if nested is None:
        return session.get_transaction()
    if session.info.get(SAVEPOINT_COMMITS) and nested.parent is session.get_transaction():
        return nested
    return None


def _before_commit(session: Session) -> None:
    sealed = _sealed_here(session)
    if sealed is None:
        return
    session.flush()  # what the commit would flush is noted too
    # The notes of what this commit ends; in the tests' sessions, notes of writes made outside
    # the savepoint (a test's own setup) stay out of a request's commit.
    pending: list[_Note] = session.info.pop(_PENDING, [])
    notes = [n for n in pending if _within(n.transaction, sealed)]
    if len(notes) < len(pending):
        session.info[_PENDING] = [n for n in pending if not _within(n.transaction, sealed)]
    if not notes:
        return
    connection = session.connection()
    _place(connection, [n for n in notes if n.household_id is not None])
    chain.append(connection, [n.fields for n in notes])


def _place(connection: Any, notes: Iterable[_Note]) -> None:
    """Regions of notes whose household was not loaded: one query for all of them."""
    notes = list(notes)
    if not notes:
        return
    ids = {n.household_id for n in notes}
    villages = dict(
        connection.execute(
            select(col(Household.id), col(Household.village_code)).where(col(Household.id).in_(ids))
        ).all()
    )
    for n in notes:
        n.fields["region_code"] = villages.get(n.household_id)


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    notes = session.info.get(_PENDING)
    if notes:
        session.info[_PENDING] = [n for n in notes if not _within(n.transaction, previous)]


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def install(audited: dict[type[Any], Audited]) -> None:
    """Audit writes of `audited` tables on every ORM session (idempotent)."""
    _audited.update(audited)
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_soft_rollback", _after_soft_rollback)
        event.listen(Session, "after_transaction_end", _after_transaction_end)
