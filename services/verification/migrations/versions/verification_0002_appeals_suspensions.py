"""verification: several credentials per record (19f7154: an upheld appeal of a revocation gives
the record a new one), status lists with a purpose and suspensions (0b63ee5), staff reads.

Tolerant of a store made by ``create_all`` after release e18da97: what is there already is kept.

Revision ID: verification_0002
Revises: verification_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ler.migrations import create_index_once, create_table_once, dialect, unique_constraints

revision = "verification_0002"
down_revision: str | None = "verification_0001"
branch_labels: str | None = None
depends_on: str | None = None

CREDENTIALS = "verification_credentials"


def _credentials_without_unique() -> sa.Table:
    """The credentials table as it stands after this revision (SQLite rebuilds it from this)."""
    return sa.Table(
        CREDENTIALS,
        sa.MetaData(),
        sa.Column("credential_id", sa.String(length=36), nullable=False),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=True),
        sa.Column("credential_type", sa.String(length=40), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("list_id", sa.String(length=20), nullable=False),
        sa.Column("status_index", sa.Integer(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("credential_id"),
        sa.Index("verification_credentials_revoked", "list_id", "revoked"),
    )


def _drop_record_id_unique() -> None:
    found = [u for u in unique_constraints(CREDENTIALS) if u["column_names"] == ["record_id"]]
    if not found:
        return
    if dialect() == "postgresql":
        op.drop_constraint(found[0]["name"], CREDENTIALS, type_="unique")
        return
    # SQLite cannot drop a constraint (and this one has no name): the table is rebuilt, rows
    # copied, from its definition after this revision.
    with op.batch_alter_table(
        CREDENTIALS, copy_from=_credentials_without_unique(), recreate="always"
    ):
        pass


def upgrade() -> None:
    _drop_record_id_unique()
    create_index_once("ix_verification_credentials_record_id", CREDENTIALS, ["record_id"])
    create_table_once(
        "verification_reads",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("what", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        indexes=[("verification_reads_record", ["record_id", "id"])],
    )
    create_table_once(
        "verification_status_list_purposes",
        sa.Column("list_id", sa.String(length=20), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("list_id"),
    )
    create_table_once(
        "verification_suspensions",
        sa.Column("credential_id", sa.String(length=36), nullable=False),
        sa.Column("list_id", sa.String(length=20), nullable=False),
        sa.Column("status_index", sa.Integer(), nullable=False),
        sa.Column("suspended", sa.Boolean(), nullable=False),
        sa.Column("reason_code", sa.String(length=40), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("changed_by", sa.String(length=80), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("credential_id"),
    )


def downgrade() -> None:
    op.drop_table("verification_suspensions")
    op.drop_table("verification_status_list_purposes")
    op.drop_index("verification_reads_record", table_name="verification_reads")
    op.drop_table("verification_reads")
    op.drop_index("ix_verification_credentials_record_id", table_name=CREDENTIALS)
    with op.batch_alter_table(CREDENTIALS) as batch:
        batch.create_unique_constraint("verification_credentials_record_id_key", ["record_id"])
