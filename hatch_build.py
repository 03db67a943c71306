"""Compile the web interface's translation catalogues (.po → .mo) when the package is built or installed.

The ``.po`` files are committed; the ``.mo`` files are build output (git-ignored). The compiler lives in
node/web/catalogues.py and is loaded by file path: the build environment has babel but not the node's other
dependencies.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):  # type: ignore[misc]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        path = Path(self.root) / "node" / "web" / "catalogues.py"
        spec = importlib.util.spec_from_file_location("ccm_catalogues", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for mo_path in module.compile_catalogues(Path(self.root) / "node" / "web" / "translations"):
            build_data.setdefault("artifacts", []).append(str(mo_path.relative_to(self.root)))
