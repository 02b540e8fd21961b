"""Monitoring: ordinary households, monitoring cases and their steps, department alerts, rigid
expenses and monitoring transfers on income snapshots, income exclusions, status overrides.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 05:19:36.955861
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.base

# As app.core.base.region_code_type: bytewise on PostgreSQL too (see migration 0005).

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "monitoring_income_exclusion",
        sa.Column(
            "scope",
            sa.String(length=21).with_variant(sa.String(length=21, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("item", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("updated_at", app.core.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "item", name=op.f("pk_monitoring_income_exclusion")),
    )
    op.create_table(
        "monitoring_alert",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "county_code",
            sa.String(length=21).with_variant(sa.String(length=21, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("department", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("id_number_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column(
            "village_code",
            sa.String(length=21).with_variant(sa.String(length=21, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("verified_by", sa.Uuid(), nullable=True),
        sa.Column("verified_at", app.core.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("verify_note", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("imported_at", app.core.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["county_code"], ["region.code"], name=op.f("fk_monitoring_alert_county_code_region")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["household.id"],
            name=op.f("fk_monitoring_alert_household_id_household"),
        ),
        sa.ForeignKeyConstraint(
            ["imported_by"],
            ["user_account.id"],
            name=op.f("fk_monitoring_alert_imported_by_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["household_member.id"],
            name=op.f("fk_monitoring_alert_member_id_household_member"),
        ),
        sa.ForeignKeyConstraint(
            ["verified_by"],
            ["user_account.id"],
            name=op.f("fk_monitoring_alert_verified_by_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["village_code"], ["region.code"], name=op.f("fk_monitoring_alert_village_code_region")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_alert")),
        sa.UniqueConstraint(
            "county_code",
            "department",
            "id_number_hash",
            "kind",
            "occurred_on",
            name=op.f("uq_monitoring_alert_county_code"),
        ),
    )
    with op.batch_alter_table("monitoring_alert", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitoring_alert_household_id"), ["household_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_monitoring_alert_member_id"), ["member_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_monitoring_alert_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_monitoring_alert_village_code"), ["village_code"], unique=False
        )

    op.create_table(
        "monitoring_case",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("received_at", app.core.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.core.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("risk_types", sa.JSON(), nullable=False),
        sa.Column("found_via", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=True),
        sa.Column("found_on", sa.Date(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("photos", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("identified_on", sa.Date(), nullable=True),
        sa.Column("cleared_on", sa.Date(), nullable=True),
        sa.Column("clearing_method", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("open_household_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["monitoring_alert.id"],
            name=op.f("fk_monitoring_case_alert_id_monitoring_alert"),
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["user_account.id"],
            name=op.f("fk_monitoring_case_author_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["household.id"],
            name=op.f("fk_monitoring_case_household_id_household"),
        ),
        sa.ForeignKeyConstraint(
            ["open_household_id"],
            ["household.id"],
            name=op.f("fk_monitoring_case_open_household_id_household"),
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["user_account.id"],
            name=op.f("fk_monitoring_case_updated_by_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_case")),
        sa.UniqueConstraint("open_household_id", name=op.f("uq_monitoring_case_open_household_id")),
    )
    with op.batch_alter_table("monitoring_case", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_monitoring_case_category"), ["category"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_monitoring_case_household_id"), ["household_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_monitoring_case_status"), ["status"], unique=False)

    op.create_table(
        "monitoring_step",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("actor_role", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("status_from", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("status_to", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("taken_at", app.core.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["user_account.id"], name=op.f("fk_monitoring_step_actor_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["monitoring_case.id"],
            name=op.f("fk_monitoring_step_case_id_monitoring_case"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_step")),
        sa.UniqueConstraint("case_id", "seq", name=op.f("uq_monitoring_step_case_id")),
    )
    with op.batch_alter_table("monitoring_step", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_monitoring_step_case_id"), ["case_id"], unique=False)

    with op.batch_alter_table("household", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "origin",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="registered",
            )
        )
        batch_op.alter_column("attribute", existing_type=sa.VARCHAR(length=32), nullable=True)
        batch_op.alter_column("status", existing_type=sa.VARCHAR(length=32), nullable=True)
        batch_op.alter_column("main_cause", existing_type=sa.VARCHAR(length=32), nullable=True)
        batch_op.alter_column("identified_year", existing_type=sa.INTEGER(), nullable=True)
        batch_op.create_index(batch_op.f("ix_household_origin"), ["origin"], unique=False)

    with op.batch_alter_table("household_change", schema=None) as batch_op:
        batch_op.add_column(sa.Column("override_reason", sa.Text(), nullable=True))

    with op.batch_alter_table("income_snapshot", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("transfer_education_aid", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column(
                "transfer_medical_reimbursement",
                sa.BigInteger(),
                nullable=False,
                server_default="0",
            )
        )
        batch_op.add_column(
            sa.Column(
                "transfer_housing_subsidy", sa.BigInteger(), nullable=False, server_default="0"
            )
        )
        batch_op.add_column(
            sa.Column(
                "transfer_one_off_relief", sa.BigInteger(), nullable=False, server_default="0"
            )
        )
        batch_op.add_column(
            sa.Column("medical_out_of_pocket", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("education_expenses", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("other_rigid_expenses", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("rigid_expenses", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    # Ordinary households have no place in the register of 0007: refuse rather than lose them.
    ordinary = (
        op.get_bind()
        .execute(sa.text("SELECT count(*) FROM household WHERE origin <> 'registered'"))
        .scalar_one()
    )
    if ordinary:
        raise RuntimeError(f"{ordinary} ordinary household(s) exist: 0007 cannot hold them")
    with op.batch_alter_table("income_snapshot", schema=None) as batch_op:
        batch_op.drop_column("rigid_expenses")
        batch_op.drop_column("other_rigid_expenses")
        batch_op.drop_column("education_expenses")
        batch_op.drop_column("medical_out_of_pocket")
        batch_op.drop_column("transfer_one_off_relief")
        batch_op.drop_column("transfer_housing_subsidy")
        batch_op.drop_column("transfer_medical_reimbursement")
        batch_op.drop_column("transfer_education_aid")

    with op.batch_alter_table("household_change", schema=None) as batch_op:
        batch_op.drop_column("override_reason")

    with op.batch_alter_table("household", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_household_origin"))
        batch_op.alter_column("identified_year", existing_type=sa.INTEGER(), nullable=False)
        batch_op.alter_column("main_cause", existing_type=sa.VARCHAR(length=32), nullable=False)
        batch_op.alter_column("status", existing_type=sa.VARCHAR(length=32), nullable=False)
        batch_op.alter_column("attribute", existing_type=sa.VARCHAR(length=32), nullable=False)
        batch_op.drop_column("origin")

    with op.batch_alter_table("monitoring_step", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitoring_step_case_id"))

    op.drop_table("monitoring_step")
    with op.batch_alter_table("monitoring_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitoring_case_status"))
        batch_op.drop_index(batch_op.f("ix_monitoring_case_household_id"))
        batch_op.drop_index(batch_op.f("ix_monitoring_case_category"))

    op.drop_table("monitoring_case")
    with op.batch_alter_table("monitoring_alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitoring_alert_village_code"))
        batch_op.drop_index(batch_op.f("ix_monitoring_alert_status"))
        batch_op.drop_index(batch_op.f("ix_monitoring_alert_member_id"))
        batch_op.drop_index(batch_op.f("ix_monitoring_alert_household_id"))

    op.drop_table("monitoring_alert")
    op.drop_table("monitoring_income_exclusion")
