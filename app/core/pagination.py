"""Keyset pagination: opaque cursors over a unique, immutable ordering."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, inspect, literal, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, Mapped

from app.core.config import get_settings
from app.core.errors import InvalidInput
from app.core.i18n import Text

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class PageParams(BaseModel):
    limit: int
    cursor: str | None


def _page_params(
    limit: Annotated[
        int | None,
        Query(ge=1, description="Page size (default 100, at most 500)."),
    ] = None,
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the previous page.", max_length=512)
    ] = None,
) -> PageParams:
    settings = get_settings()
    if limit is not None and limit > settings.page_limit_max:
        raise InvalidInput.field(
            "query.limit",
            Text("limit must be at most {page_limit_max}", page_limit_max=settings.page_limit_max),
            type="less_than_equal",
        )
    return PageParams(limit=limit or settings.page_limit_default, cursor=cursor)


PageDep = Annotated[PageParams, Depends(_page_params)]


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([str(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, size: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        values = None
    if (
        not isinstance(values, list)
        or len(values) != size
        or not all(isinstance(v, str) and _storable(v) for v in values)
    ):
        raise InvalidInput.field("query.cursor", Text("cursor is not one this API issued"))
    return values


def _storable(value: str) -> bool:
    """Whether every database can take `value` as text: no NUL (PostgreSQL refuses it) and no
    lone surrogate (not UTF-8)."""
    if "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


# The range of the widest integer column (BIGINT) on both databases.
_INT_RANGE = range(-(2**63), 2**63)


def _from_cursor(key: InstrumentedAttribute[Any], value: str) -> Any:
    try:
        python_type = key.type.python_type
    except NotImplementedError:
        python_type = str
    if python_type is object:  # e.g. SQLModel's AutoString
        python_type = str
    try:
        if python_type is datetime:
            return cursor_datetime(value)
        typed = python_type(value)
    except (TypeError, ValueError):
        raise InvalidInput.field(
            "query.cursor", Text("cursor is not one this API issued")
        ) from None
    if isinstance(typed, int) and typed not in _INT_RANGE:
        raise InvalidInput.field("query.cursor", Text("cursor is not one this API issued"))
    return typed


def cursor_datetime(value: str) -> datetime:
    """A datetime key of a cursor: with its offset, in range; ValueError otherwise."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("naive datetime in cursor")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("datetime out of range") from None


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    *,
    keys: Sequence[Mapped[Any]],
    page: PageParams,
    descending: bool = False,
) -> tuple[list[Any], str | None]:
    """Run `stmt` ordered by `keys` (unique together, never edited) from the cursor on.

    With `descending`, newest (largest) first.

    `keys` are model attributes as `sqlmodel.col()` types them, e.g. `[col(Household.number)]`.
    Returns the rows of one page and the cursor of the next page (None on the last page).
    """
    # At runtime each key is its InstrumentedAttribute, which knows its column type and name.
    attributes: list[InstrumentedAttribute[Any]] = [inspect(key) for key in keys]
    if page.cursor:
        values = decode_cursor(page.cursor, size=len(keys))
        # Bound with each column's own type, so values are stored-form on every database.
        typed = [
            literal(_from_cursor(attr, v), attr.type)
            for attr, v in zip(attributes, values, strict=True)
        ]
        left: Any = keys[0] if len(keys) == 1 else tuple_(*keys)
        right: Any = typed[0] if len(keys) == 1 else tuple_(*typed)
        stmt = stmt.where(left < right if descending else left > right)
    order = [attr.desc() for attr in attributes] if descending else list(keys)
    stmt = stmt.order_by(*order).limit(page.limit + 1)
    rows = list((await session.scalars(stmt)).all())
    next_cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        last = rows[-1]
        next_cursor = encode_cursor([getattr(last, attr.key) for attr in attributes])
    return rows, next_cursor
