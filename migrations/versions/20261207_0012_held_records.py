"""Held records: what a phone sent for a village taken from its author, kept for the county;
the regions an account no longer holds; a batch's count of held records.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _region_code() -> sa.types.TypeEngine[str]:
    return sa.String(length=21).with_variant(sa.String(length=21, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "user_region_ended",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("region_code", _region_code(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_user_region_ended_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "region_code", name=op.f("pk_user_region_ended")),
    )
    op.create_table(
        "held_record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("record_type", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("item", sa.JSON(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("village_code", _region_code(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("reason_code", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("accepted_author_id", sa.Uuid(), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["accepted_author_id"],
            ["user_account.id"],
            name=op.f("fk_held_record_accepted_author_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["user_account.id"], name=op.f("fk_held_record_author_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["sync_batch.id"], name=op.f("fk_held_record_batch_id_sync_batch")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["user_account.id"],
            name=op.f("fk_held_record_decided_by_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_held_record_household_id_household")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_record")),
        sa.UniqueConstraint(
            "record_type",
            "record_id",
            "revision",
            name=op.f("uq_held_record_record_type"),
        ),
    )
    with op.batch_alter_table("held_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_held_record_author_id"), ["author_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_held_record_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_held_record_household_id"), ["household_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_held_record_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_held_record_village_code"), ["village_code"], unique=False
        )
    # Batches received before count no held record.
    with op.batch_alter_table("sync_batch", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("held", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("sync_batch", schema=None) as batch_op:
        batch_op.alter_column("held", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("sync_batch", schema=None) as batch_op:
        batch_op.drop_column("held")
    with op.batch_alter_table("held_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_held_record_village_code"))
        batch_op.drop_index(batch_op.f("ix_held_record_status"))
        batch_op.drop_index(batch_op.f("ix_held_record_household_id"))
        batch_op.drop_index(batch_op.f("ix_held_record_batch_id"))
        batch_op.drop_index(batch_op.f("ix_held_record_author_id"))
    op.drop_table("held_record")
    op.drop_table("user_region_ended")
