"""Schema migrations (Alembic): upgrade, downgrade, current revision, and the model metadata they track."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def target_metadata() -> sa.MetaData:
    """The metadata of every model the migrations must match (imports each model module)."""
    from . import accounts, audit  # noqa: F401
    from .at_rest import models as at_rest_models  # noqa: F401
    from .cases import models  # noqa: F401
    from .db import Base
    from .exchange import models as exchange_models  # noqa: F401
    from .exchange.chain import models as chain_models  # noqa: F401
    from .exchange.handovers import models as handover_models  # noqa: F401
    from .exchange.trust import models as trust_models  # noqa: F401
    from .notifications import models as notification_models  # noqa: F401
    from .web import models as web_models  # noqa: F401

    return Base.metadata


def alembic_config(engine: sa.Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate to ``revision`` in one transaction; on SQLite then fold the write-ahead log into the database file
    and truncate it, so that no page image from before an encrypting migration (0012, 0014) stays in the WAL."""
    from node.exchange.chain.erasure import checkpoint

    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    checkpoint(engine)


def downgrade(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: sa.Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
