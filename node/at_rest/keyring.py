"""The data key's health, for ``/readyz`` (``node/observability/health.py`` looks for ``data_key_status``)."""

from __future__ import annotations

from node.config import NodeConfig

from .keys import DataKeyError, key_file_path, read_key_file


def data_key_status(config: NodeConfig) -> str:
    """``"ok"`` when the node's data key file is there and readable, else the reason in words (no secret)."""
    path, _from_env = key_file_path(config.data_dir)
    try:
        read_key_file(path)
    except DataKeyError:
        return "data key missing or unreadable"
    return "ok"
