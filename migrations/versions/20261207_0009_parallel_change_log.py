"""The change log without a common lock: positions (txid, seq).

PostgreSQL writers no longer queue on the sync_counter row: a change is positioned by its
transaction's id and a sequence (see app/sync/changelog.py). Rows written before keep txid 0 and
their numbers, so cursors issued before stay valid; the sequence starts after the counter.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQUENCE = "sync_change_seq"


def upgrade() -> None:
    with op.batch_alter_table("sync_change") as batch:
        batch.add_column(sa.Column("txid", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("sync_change") as batch:
        batch.alter_column("txid", server_default=None)
        batch.drop_index("ix_sync_change_region_code_seq")
        batch.create_index(
            "ix_sync_change_region_code_txid_seq", ["region_code", "txid", "seq"], unique=False
        )
    with op.batch_alter_table("sync_counter") as batch:
        batch.add_column(
            sa.Column("horizon_txid", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("sync_counter") as batch:
        batch.alter_column("horizon_txid", server_default=None)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE SEQUENCE {SEQUENCE} AS bigint")
        op.execute(
            f"SELECT setval('{SEQUENCE}', greatest(1, (SELECT value FROM sync_counter "
            "WHERE id = 1)), (SELECT value FROM sync_counter WHERE id = 1) > 0)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Back to numbers in commit order: renumber the log in position order past everything.
        op.execute(
            "UPDATE sync_change SET seq = s.n + (SELECT coalesce(max(seq), 0) FROM sync_change) "
            "FROM (SELECT entity_type, entity_id, region_code, "
            "row_number() OVER (ORDER BY txid, seq) AS n FROM sync_change) AS s "
            "WHERE sync_change.entity_type = s.entity_type "
            "AND sync_change.entity_id = s.entity_id AND sync_change.region_code = s.region_code"
        )
        op.execute(
            "UPDATE sync_counter SET value = (SELECT coalesce(max(seq), 0) FROM sync_change)"
        )
        op.execute(f"DROP SEQUENCE {SEQUENCE}")
    with op.batch_alter_table("sync_counter") as batch:
        batch.drop_column("horizon_txid")
    with op.batch_alter_table("sync_change") as batch:
        batch.drop_index("ix_sync_change_region_code_txid_seq")
        batch.create_index("ix_sync_change_region_code_seq", ["region_code", "seq"], unique=False)
        batch.drop_column("txid")
