"""Field records (visits, income snapshots, measures), poverty thresholds, household changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 01:01:54.711607
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    threshold = op.create_table(
        "poverty_threshold",
        sa.Column("scope", sa.String(length=21), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("poverty_line", sa.BigInteger(), nullable=True),
        sa.Column("monitoring_threshold", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "year", name=op.f("pk_poverty_threshold")),
    )
    op.create_table(
        "household_change",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("status_from", sa.String(length=32), nullable=True),
        sa.Column("status_to", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["user_account.id"],
            name=op.f("fk_household_change_actor_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["household.id"],
            name=op.f("fk_household_change_household_id_household"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household_change")),
    )
    with op.batch_alter_table("household_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_household_change_household_id"), ["household_id"], unique=False
        )

    op.create_table(
        "income_snapshot",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("household_size", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("wage_income", sa.BigInteger(), nullable=False),
        sa.Column("business_income", sa.BigInteger(), nullable=False),
        sa.Column("business_expenses", sa.BigInteger(), nullable=False),
        sa.Column("property_dividend", sa.BigInteger(), nullable=False),
        sa.Column("property_other", sa.BigInteger(), nullable=False),
        sa.Column("transfer_family_planning", sa.BigInteger(), nullable=False),
        sa.Column("transfer_dibao", sa.BigInteger(), nullable=False),
        sa.Column("transfer_tekun", sa.BigInteger(), nullable=False),
        sa.Column("transfer_pension", sa.BigInteger(), nullable=False),
        sa.Column("transfer_ecological", sa.BigInteger(), nullable=False),
        sa.Column("transfer_other", sa.BigInteger(), nullable=False),
        sa.Column("property_income", sa.BigInteger(), nullable=False),
        sa.Column("transfer_income", sa.BigInteger(), nullable=False),
        sa.Column("net_income", sa.BigInteger(), nullable=False),
        sa.Column("per_capita_income", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["user_account.id"],
            name=op.f("fk_income_snapshot_author_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["household.id"],
            name=op.f("fk_income_snapshot_household_id_household"),
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["user_account.id"],
            name=op.f("fk_income_snapshot_updated_by_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_income_snapshot")),
    )
    with op.batch_alter_table("income_snapshot", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_income_snapshot_household_id"), ["household_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_income_snapshot_year"), ["year"], unique=False)

    op.create_table(
        "measure",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("funds", sa.BigInteger(), nullable=True),
        sa.Column("funds_spent", sa.BigInteger(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress_pct", sa.Integer(), nullable=False),
        sa.Column("progress_reports", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["user_account.id"], name=op.f("fk_measure_author_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_measure_household_id_household")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["user_account.id"], name=op.f("fk_measure_updated_by_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measure")),
    )
    with op.batch_alter_table("measure", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_measure_category"), ["category"], unique=False)
        batch_op.create_index(batch_op.f("ix_measure_household_id"), ["household_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_measure_status"), ["status"], unique=False)

    op.create_table(
        "visit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=False),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("crs", sa.String(length=8), nullable=True),
        sa.Column("address", sa.String(length=500), nullable=True),
        sa.Column("findings", sa.Text(), nullable=True),
        sa.Column("requests", sa.Text(), nullable=True),
        sa.Column("follow_up", sa.Text(), nullable=True),
        sa.Column("check_food", sa.String(length=8), nullable=False),
        sa.Column("check_clothing", sa.String(length=8), nullable=False),
        sa.Column("check_education", sa.String(length=8), nullable=False),
        sa.Column("check_medical", sa.String(length=8), nullable=False),
        sa.Column("check_housing", sa.String(length=8), nullable=False),
        sa.Column("check_water", sa.String(length=8), nullable=False),
        sa.Column("photos", sa.JSON(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["user_account.id"], name=op.f("fk_visit_author_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_visit_household_id_household")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["user_account.id"], name=op.f("fk_visit_updated_by_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit")),
    )
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visit_household_id"), ["household_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_visit_visited_at"), ["visited_at"], unique=False)

    op.create_table(
        "measure_revision",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("measure_id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress_pct", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["user_account.id"],
            name=op.f("fk_measure_revision_author_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["household.id"],
            name=op.f("fk_measure_revision_household_id_household"),
        ),
        sa.ForeignKeyConstraint(
            ["measure_id"], ["measure.id"], name=op.f("fk_measure_revision_measure_id_measure")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measure_revision")),
    )
    with op.batch_alter_table("measure_revision", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_measure_revision_household_id"), ["household_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_measure_revision_measure_id"), ["measure_id"], unique=False
        )

    # National lines (yuan per person-year, current prices; DOMAIN.md) and the monitoring
    # threshold after 2020. Counties add their own rows; the API edits them.
    now = datetime.now(UTC)
    lines = {
        2010: 2300,
        2011: 2536,
        2012: 2625,
        2013: 2736,
        2014: 2800,
        2015: 2855,
        2016: 2952,
        2017: 2952,
        2018: 2995,
        2019: 3218,
        2020: 4000,
    }
    rows = [
        {
            "scope": "national",
            "year": year,
            "poverty_line": yuan * 100,
            "monitoring_threshold": None,
            "note": "国家扶贫标准",
            "updated_at": now,
        }
        for year, yuan in lines.items()
    ]
    rows[-1]["note"] = "国家扶贫标准 (约4000元)"
    rows.append(
        {
            "scope": "national",
            "year": 2021,
            "poverty_line": None,
            "monitoring_threshold": 600000,
            "note": "防返贫监测范围 (约为扶贫标准的1.5倍)",
            "updated_at": now,
        }
    )
    op.bulk_insert(threshold, rows)


def downgrade() -> None:

    with op.batch_alter_table("measure_revision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_measure_revision_measure_id"))
        batch_op.drop_index(batch_op.f("ix_measure_revision_household_id"))

    op.drop_table("measure_revision")
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visit_visited_at"))
        batch_op.drop_index(batch_op.f("ix_visit_household_id"))

    op.drop_table("visit")
    with op.batch_alter_table("measure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_measure_status"))
        batch_op.drop_index(batch_op.f("ix_measure_household_id"))
        batch_op.drop_index(batch_op.f("ix_measure_category"))

    op.drop_table("measure")
    with op.batch_alter_table("income_snapshot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_income_snapshot_year"))
        batch_op.drop_index(batch_op.f("ix_income_snapshot_household_id"))

    op.drop_table("income_snapshot")
    with op.batch_alter_table("household_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_household_change_household_id"))

    op.drop_table("household_change")
    op.drop_table("poverty_threshold")
