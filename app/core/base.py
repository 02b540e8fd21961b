"""Shared column helpers and the metadata naming convention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, String
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Field, SQLModel

# Stable constraint names on every database, so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on both databases (SQLite stores no offset: we store UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timezone-aware column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def created_at_field() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def updated_at_field() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def uuid_pk() -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True)


# JSON columns, empty by default. The factories are Python functions on purpose: on every
# construction of a table model SQLModel asks pydantic whether each default factory takes the
# validated data, and for a builtin such as `list` that means parsing its text signature (about
# 0.1 ms a field; half the cost of building a Household).
def _empty_list() -> list[Any]:
    return []


def _empty_dict() -> dict[str, Any]:
    return {}


def json_list() -> Any:
    return Field(default_factory=_empty_list, sa_type=JSON)


def json_dict() -> Any:
    return Field(default_factory=_empty_dict, sa_type=JSON)


def region_code_type() -> TypeEngine[str]:
    """A region code column (21 characters) that compares bytewise on both databases.

    Region conditions are code ranges (`app.auth.principal.has_prefix`), exact only in bytewise
    order; and a plain index serves them, and LIKE 'prefix%' too, whatever the cluster's
    locale. SQLite compares bytewise already (BINARY).
    """
    return String(21).with_variant(String(21, collation="C"), "postgresql")
