"""Configuration from a node's data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import DEFAULT_STAGES, ConfigError, default_prefix, load_config, write_config


def test_written_config_loads_with_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCM_DATABASE_URL", raising=False)
    write_config(tmp_path, "se.gi-goteborg", "Göteborgs-Initiativet", "http://127.0.0.1:8701/")
    config = load_config(tmp_path)
    assert config.node_id == "se.gi-goteborg" and config.base_url == "http://127.0.0.1:8701"
    assert config.reference_prefix == "GI"
    assert config.stage_keys == tuple(k for k, _ in DEFAULT_STAGES) and len(config.stages) == 8
    assert config.database_url.endswith("/node.db")


def test_env_database_url_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, "iq.cldd-baghdad", "CLDD Baghdad", "http://x")
    monkeypatch.setenv("CCM_DATABASE_URL", "postgresql://u@h/db")
    assert load_config(tmp_path).database_url == "postgresql://u@h/db"


def test_custom_stages(tmp_path: Path) -> None:
    write_config(tmp_path, "gh.accra-partner", "Accra", "http://x")
    path = tmp_path / "node.toml"
    text = path.read_text(encoding="utf-8").split("[[stages]]")[0]
    path.write_text(text + '[[stages]]\nkey = "docs"\ntitle = "Documents"\n', encoding="utf-8")
    assert load_config(tmp_path).stage_keys == ("docs",)


@pytest.mark.parametrize(("content", "fragment"), [
    ("not = [toml", "not valid TOML"),
    ("[node]\nid = 'x'\n", "name must be"),
    ("[node]\nid='a.b1'\nname='n'\nurl='u'\n[[stages]]\nkey='a'\ntitle='A'\n[[stages]]\nkey='a'\ntitle='B'\n",
     "unique"),
])
def test_bad_config_is_one_clear_error(tmp_path: Path, content: str, fragment: str) -> None:
    write_config(tmp_path, "se.gi-goteborg", "GI", "http://x")
    (tmp_path / "node.toml").write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=fragment):
        load_config(tmp_path)


def test_prefix() -> None:
    assert default_prefix("ba.cldd-sarajevo") == "CLDD"
    assert default_prefix("se.gi-goteborg") == "GI"
