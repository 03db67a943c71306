"""The staff's TOTP secrets encrypted at rest like the special-category columns (``users.totp_secret``): a copy
of the database alone no longer gives away the second factor of every member of staff who set one up. The column
becomes TEXT on PostgreSQL (a ciphertext is longer than the 32-character secret); each secret already stored is
encrypted with the node's data key, bound to the engine as for 0012 (``ccm-node db upgrade``).

Revision ID: 0014_totp_at_rest
Revises: 0013_resync
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

from node.at_rest.batches import ColumnSpec, decrypt, encrypt_plain, rewrite_all
from node.at_rest.cipher import VERSION
from node.at_rest.types import data_keys_of

revision = "0014_totp_at_rest"
down_revision = "0013_resync"
branch_labels = None
depends_on = None

SPECS = (ColumnSpec("users", "totp_secret", "text", ("id",)),)
HEAD = VERSION + ":"


def _keys():  # type: ignore[no-untyped-def]
    keys = data_keys_of(op.get_bind().dialect)
    if keys is None:
        raise RuntimeError("migration 0014 needs the node's data key to encrypt the TOTP secrets already stored: "
                           "run it with 'ccm-node db upgrade'")
    return keys


def _has_secrets(bind: sa.Connection) -> bool:
    users = sa.table("users", sa.column("totp_secret"))
    return bind.execute(sa.select(sa.literal(1)).select_from(users).where(users.c.totp_secret.is_not(None))
                        .limit(1)).first() is not None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.alter_column("users", "totp_secret", type_=sa.Text(), existing_type=sa.String(64))
    if _has_secrets(bind):
        key = _keys().current
        rewrite_all(bind, SPECS, head=HEAD, transform=lambda spec: encrypt_plain(spec, key))


def downgrade() -> None:
    bind = op.get_bind()
    if _has_secrets(bind):
        keys = _keys()
        rewrite_all(bind, SPECS, head=HEAD, starting=True, transform=lambda spec: decrypt(spec, keys.get))
    if bind.dialect.name == "postgresql":
        op.alter_column("users", "totp_secret", type_=sa.String(64), existing_type=sa.Text())
