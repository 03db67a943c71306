"""What a ``ccm-node`` command is given: the node's configuration and its database, opened when first needed,
and the parser class every command is declared with.

Below both the command line (``node/cli.py``, which builds the parser) and the administration commands
(``admin/``, which register theirs with it), so that neither imports the other to share it.
"""

from __future__ import annotations

import argparse
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from .at_rest.startup import open_node_data_keys
from .backup.journal import bind as bind_erasure_journal
from .clock import system_clock
from .config import NodeConfig, load_config
from .db import make_engine, make_sessionmaker


class Env:
    """What a command needs: the config, and a session factory on the node's database (opened lazily)."""

    def __init__(self, data_dir: str | None) -> None:
        self._data_dir = data_dir
        self._config: NodeConfig | None = None
        self._engine: sa.Engine | None = None
        self.clock = system_clock()

    @property
    def config(self) -> NodeConfig:
        if self._config is None:
            self._config = load_config(self._data_dir)
        return self._config

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            engine = make_engine(self.config.database_url)
            bind_erasure_journal(engine, self.config.data_dir)  # erasures journalled (node/backup)
            try:
                open_node_data_keys(self.config, engine, self.clock.now())  # encrypted columns (node/at_rest)
            except BaseException:
                engine.dispose()
                raise
            self._engine = engine
        return self._engine

    def use_data_dir(self, data_dir: str) -> None:
        """Point at a data directory made after start (``ccm-node init``); nothing was opened yet."""
        self._data_dir = data_dir

    def session(self) -> orm.Session:
        return make_sessionmaker(self.engine)()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


class CommandParser(argparse.ArgumentParser):
    """An argument parser that takes options only spelled out in full (``--rol`` is not ``--role``).

    Subcommands made from it (``add_subparsers``) are of this class too, so the rule holds at every level.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
