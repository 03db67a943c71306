"""Protection at rest: the ``data_keys`` table (key ids in use), the encrypted columns that were VARCHAR become
TEXT on PostgreSQL (a ciphertext is longer than its text; SQLite does not enforce lengths), and every value
already in those columns is encrypted with the node's data key.

The key comes bound to the engine (``ccm-node db upgrade`` and ``ccm-node init`` bind it; see
``node/at_rest/startup.py``). A database with rows to encrypt and no key bound is refused with one clear error,
never half-migrated: the whole upgrade is one transaction. The column list below is frozen as of this revision.

Revision ID: 0012_protection_at_rest
Revises: 0011_notifications
Create Date: 2026-12-10
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

from node.at_rest.batches import ColumnSpec, decrypt, encrypt_plain, rewrite_all
from node.at_rest.cipher import VERSION
from node.at_rest.types import data_keys_of

revision = "0012_protection_at_rest"
down_revision = "0011_notifications"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

#: (table, column, kind, primary key, VARCHAR length before this revision or None)
COLUMNS = (
    ("cases", "contact_notes", "text", ("id",), 1000),
    ("case_stages", "notes", "text", ("id",), None),
    ("intake_sections", "text", "text", ("case_id", "section"), None),
    ("intake_sections", "data", "json", ("case_id", "section"), None),
    ("case_plans", "milestones", "json", ("case_id",), None),
    ("household_members", "given_names", "text", ("id",), 200),
    ("household_members", "family_name", "text", ("id",), 200),
    ("child_safeguards", "guardian_name", "text", ("case_id",), 200),
    ("child_safeguards", "guardian_relation", "text", ("case_id",), 100),
    ("child_safeguards", "guardian_contact", "text", ("case_id",), 500),
    ("child_safeguards", "child_views", "text", ("case_id",), None),
    ("child_safeguards", "best_interests_outcome", "text", ("case_id",), None),
    ("consents", "withdrawal_reason", "text", ("id",), 1000),
    ("interventions", "provider", "text", ("id",), 200),
    ("interventions", "notes", "text", ("id",), None),
    ("progress_notes", "text", "text", ("id",), None),
    ("handovers", "body", "json", ("id",), None),
    ("handovers", "reason", "text", ("id",), None),
    ("handovers", "answer", "json", ("id",), None),
    ("handovers", "close_outcome", "json", ("id",), None),
    ("progress_updates", "note", "text", ("id",), None),
    ("progress_updates", "stage_changes", "json", ("id",), None),
    ("progress_updates", "interventions", "json", ("id",), None),
    ("progress_updates", "meetings", "json", ("id",), None),
    ("progress_updates", "indicators", "json", ("id",), None),
    ("partner_stages", "note", "text", ("case_id", "partner_node", "stage_key"), None),
    ("inbound_messages", "inner", "bytes", ("id",), None),
)
SPECS = tuple(ColumnSpec(table, column, kind, pk) for table, column, kind, pk, _ in COLUMNS)
HEAD = VERSION + ":"


def _keys():  # type: ignore[no-untyped-def]
    keys = data_keys_of(op.get_bind().dialect)
    if keys is None:
        raise RuntimeError("migration 0012 needs the node's data key to encrypt the rows already stored: run it "
                           "with 'ccm-node db upgrade' (which creates or loads DATA_DIR/keys/data.key)")
    return keys


def _has_rows(bind: sa.Connection) -> bool:
    return any(bind.execute(sa.select(sa.literal(1)).select_from(sa.table(table)).limit(1)).first() is not None
               for table in sorted({spec.table for spec in SPECS}))


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("kid", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("retired_at", TZ, nullable=True),
        sa.Column("rows_reencrypted", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_data_keys")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table, column, _kind, _pk, length in COLUMNS:
            if length is not None:
                op.alter_column(table, column, type_=sa.Text(), existing_type=sa.String(length))
    keys = data_keys_of(bind.dialect)
    if keys is None and not _has_rows(bind):
        return  # a new database: the node registers its key when it first starts
    key = _keys().current
    rewrite_all(bind, SPECS, head=HEAD, transform=lambda spec: encrypt_plain(spec, key))
    bind.execute(sa.table("data_keys", sa.column("kid"), sa.column("created_at", TZ), sa.column("retired_at", TZ),
                          sa.column("rows_reencrypted")).insert()
                 .values(kid=key.kid, created_at=dt.datetime.now(dt.UTC), retired_at=None, rows_reencrypted=0))


def downgrade() -> None:
    bind = op.get_bind()
    if _has_rows(bind):
        keys = _keys()
        rewrite_all(bind, SPECS, head=HEAD, starting=True, transform=lambda spec: decrypt(spec, keys.get))
    if bind.dialect.name == "postgresql":
        for table, column, _kind, _pk, length in COLUMNS:
            if length is not None:
                op.alter_column(table, column, type_=sa.String(length), existing_type=sa.Text())
    op.drop_table("data_keys")
