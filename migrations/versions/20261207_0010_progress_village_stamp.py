"""Region figures kept per village: the stamp photos move (see app/progress/figures.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "progress_village_stamp",
        sa.Column(
            "village_code",
            sa.String(length=21).with_variant(sa.String(length=21, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("photos", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("village_code", name=op.f("pk_progress_village_stamp")),
    )


def downgrade() -> None:
    op.drop_table("progress_village_stamp")
