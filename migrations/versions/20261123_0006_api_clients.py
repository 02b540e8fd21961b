"""API clients (third-party apps) and the finer read scopes.

A client reads one region through a service account of its own (user_account with the role
api_client, its region in user_region) and holds the token family of its current secret.

Logins made before this revision were granted `households:read` for every read; routes now ask
for `records:read`, `progress:read`, `photos:read` or `sync:read`. Those logins get the four
added, so their next refresh carries them (an access token issued before the upgrade lacks them
until then: at most FIELDSYNC_ACCESS_TOKEN_MINUTES).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SPLIT_READ_SCOPES = ("records:read", "progress:read", "photos:read", "sync:read")
# As app.core.base.region_code_type: bytewise on PostgreSQL too (see migration 0005).
REGION_CODE = sa.String(length=21).with_variant(sa.String(length=21, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "api_client",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("region_code", REGION_CODE, nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("secret_hash", sa.String(length=255), nullable=False),
        sa.Column("token_family_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["user_account.id"], name=op.f("fk_api_client_created_by_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["region.code"], name=op.f("fk_api_client_region_code_region")
        ),
        sa.ForeignKeyConstraint(
            ["token_family_id"],
            ["token_family.id"],
            name=op.f("fk_api_client_token_family_id_token_family"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_api_client_user_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_client")),
        sa.UniqueConstraint("user_id", name=op.f("uq_api_client_user_id")),
    )
    with op.batch_alter_table("api_client", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_client_region_code"), ["region_code"], unique=False
        )

    added = " " + " ".join(SPLIT_READ_SCOPES)
    op.execute(
        sa.text(
            "UPDATE token_family SET scope = scope || :added "
            "WHERE (' ' || scope || ' ') LIKE '% households:read %' "
            "AND (' ' || scope || ' ') NOT LIKE '% records:read %'"
        ).bindparams(added=added)
    )


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, scope FROM token_family")).all()
    for family_id, scope in rows:
        kept = " ".join(s for s in scope.split() if s not in SPLIT_READ_SCOPES)
        if kept != scope:
            bind.execute(
                sa.text("UPDATE token_family SET scope = :scope WHERE id = :id"),
                {"scope": kept, "id": family_id},
            )

    with op.batch_alter_table("api_client", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_client_region_code"))

    op.drop_table("api_client")
    # The clients' service accounts: the role is unknown below this revision.
    accounts = "SELECT id FROM user_account WHERE role = 'api_client'"
    op.execute(
        "DELETE FROM refresh_token WHERE family_id IN "
        f"(SELECT id FROM token_family WHERE user_id IN ({accounts}))"
    )
    op.execute(f"DELETE FROM token_family WHERE user_id IN ({accounts})")
    op.execute(f"DELETE FROM user_region WHERE user_id IN ({accounts})")
    op.execute("DELETE FROM user_account WHERE role = 'api_client'")
