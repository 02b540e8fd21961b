"""Region-code columns compare bytewise on PostgreSQL (COLLATE "C"), so that their plain indexes
serve the range and LIKE-prefix conditions of region scopes whatever the cluster's locale.

SQLite compares bytewise already (BINARY): nothing to do there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 08:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column): every column holding region codes that region scopes are applied to. The
# referenced region.code and its foreign keys change together: same type, same collation.
COLUMNS = [
    ("region", "code"),
    ("region", "parent_code"),
    ("household", "village_code"),
    ("user_region", "region_code"),
    ("sync_change", "region_code"),
    ("sync_conflict", "village_code"),
    ("poverty_threshold", "scope"),
]


def _set_type(type_: sa.String, existing: sa.String) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Only the collation changes: PostgreSQL rebuilds the indexes (and rechecks the foreign
    # keys) without rewriting the tables.
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=type_, existing_type=existing)


def upgrade() -> None:
    _set_type(sa.String(length=21, collation="C"), sa.String(length=21))


def downgrade() -> None:
    _set_type(sa.String(length=21), sa.String(length=21, collation="C"))
