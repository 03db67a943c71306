"""The node's own health for its administrator (the web's node page): the database, the schema's migration,
the data directory's disk use and the installed version. The delivery worker's health is
``node.exchange.delivery.queue_overview.worker_health``; the keys' is ``node.exchange.keys.status.own_keys``.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from node.migrate import current_revision, head_revision

log = logging.getLogger(__name__)

DISTRIBUTION = "ccm-exchange"


@dataclass(frozen=True)
class DatabaseHealth:
    reachable: bool
    dialect: str
    revision: str | None  # the migration the database is at
    expected: str | None  # the newest migration this version of the code has

    @property
    def current(self) -> bool:
        return self.reachable and self.revision is not None and self.revision == self.expected


@dataclass(frozen=True)
class DiskUse:
    used: int  # bytes of the files under the data directory
    free: int  # bytes free on its filesystem (for this user)
    total: int


def database_health(engine: sa.Engine) -> DatabaseHealth:
    """A trivial query, and the migration head in the database against the one the code expects."""
    expected = head_revision(engine)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1")).scalar_one()
        revision = current_revision(engine)
    except sa.exc.SQLAlchemyError as exc:
        log.warning("database health check failed: %s", type(exc).__name__)
        return DatabaseHealth(False, engine.dialect.name, None, expected)
    return DatabaseHealth(True, engine.dialect.name, revision, expected)


def disk_use(data_dir: Path) -> DiskUse:
    """The bytes the data directory's files take (links not followed) and the space left on its filesystem."""
    used = 0
    for root, _dirs, files in os.walk(data_dir, onerror=lambda _exc: None):
        for name in files:
            try:
                used += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    usage = shutil.disk_usage(data_dir)
    return DiskUse(used, usage.free, usage.total)


def installed_version() -> str | None:
    """The installed ``ccm-exchange`` version (None when run from a checkout that is not installed)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
