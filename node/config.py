"""Node configuration: one data directory per node.

A node's data directory holds ``node.toml`` (its settings), ``secret_key`` (random, for sessions and CSRF),
its key files once the protocol is wired in (``keys/``), and by default its SQLite database ``node.db``.
``CCM_DATABASE_URL`` in the environment overrides the database (e.g. PostgreSQL).

The configuration is a frozen dataclass: it is read once when the app is created and never mutated.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .private_files import write_private

CONFIG_FILE = "node.toml"
SECRET_FILE = "secret_key"  # noqa: S105 - a file name
DATABASE_FILE = "node.db"
#: A node id: ISO 3166 country code, a dot, the organisation's short name (as in SPEC.md).
NODE_ID_RE = re.compile(r"^[a-z]{2}\.[a-z0-9][a-z0-9-]{1,62}$")

#: The network's default stage list (CLDD's 8-step model). The first three are named by the model's own
#: material; the other five follow domain.md. A node may replace them in node.toml ([[stages]]).
DEFAULT_STAGES: tuple[tuple[str, str], ...] = (
    ("documents", "Personal documents in the country of origin"),
    ("housing", "Housing in the country of origin"),
    ("education", "Education or further training"),
    ("employment", "Employment or own business"),
    ("journey", "Practical preparations and the journey"),
    ("arrival", "Arrival and reception"),
    ("reintegration", "Reintegration support"),
    ("follow_up", "Follow-up and closing"),
)


class ConfigError(Exception):
    """The data directory or its config file is missing or invalid; the message says which and why."""


@dataclass(frozen=True)
class Stage:
    key: str
    title: str


@dataclass(frozen=True)
class SmtpConfig:
    """Where notification e-mails go out (``[smtp]`` in node.toml; no section: no e-mail is sent)."""

    host: str
    from_address: str
    port: int = 587
    username: str | None = None
    #: a file holding the SMTP password (kept out of node.toml), relative to the data directory or absolute
    password_file: Path | None = None
    starttls: bool = True
    timeout_seconds: int = 10

    def password(self) -> str | None:
        """The password, read from its file at each use (so it can be rotated without a restart)."""
        if self.password_file is None:
            return None
        return self.password_file.read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node needs to start. Build it with :func:`load_config` or :func:`NodeConfig.for_tests`."""

    data_dir: Path
    node_id: str
    name: str
    base_url: str
    database_url: str
    secret_key: str
    reference_prefix: str
    stages: tuple[Stage, ...] = field(default_factory=lambda: tuple(Stage(k, t) for k, t in DEFAULT_STAGES))
    max_request_bytes: int = 1_048_576
    token_days: int = 90
    timezone: str = "UTC"
    #: an erasure a holder has not confirmed within this many hours is flagged to the admin
    erasure_confirm_hours: int = 72
    #: how long a web request waits for a busy database (SQLite locked, a PostgreSQL lock or connection)
    #: before it answers 503 with Retry-After; well inside gunicorn's 60 s worker timeout
    database_busy_seconds: int = 5
    #: outbound requests (partner cards, deliveries, revocations) may go to loopback addresses: the demo and
    #: tests only; never set by ``ccm-node init`` ([network] allow_loopback)
    allow_loopback: bool = False
    #: other networks outbound requests may go to although they are private (e.g. a VPN between partners),
    #: as CIDR strings ([network] allow_networks)
    allow_networks: tuple[str, ...] = ()
    #: a signed-in browser session unused for this many minutes is ended ([web] idle_minutes)
    web_idle_minutes: int = 30
    #: the SMTP server for notification e-mails ([smtp]); None: notifications stay in the web interface
    smtp: SmtpConfig | None = None
    #: client addresses that may read /metrics, as CIDR strings ([metrics] allow); every other one gets a 404
    metrics_allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")

    @property
    def stage_keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.stages)


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / DATABASE_FILE).resolve()}"


def resolve_data_dir(explicit: str | os.PathLike[str] | None) -> Path:
    value = explicit or os.environ.get("CCM_DATA_DIR")
    if not value:
        raise ConfigError("no data directory: pass --data-dir DIR or set CCM_DATA_DIR")
    return Path(value)


def load_config(data_dir: str | os.PathLike[str] | None = None) -> NodeConfig:
    """Read ``node.toml`` and ``secret_key`` from the data directory.

    Args:
        data_dir: the directory; ``None`` reads ``CCM_DATA_DIR``.
    Returns:
        The frozen configuration.
    Raises:
        ConfigError: the directory, file or a setting is missing or invalid.
    """
    path = resolve_data_dir(data_dir)
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(f"{config_path} not found: run 'ccm-node init' first")
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
    secret_path = path / SECRET_FILE
    if not secret_path.is_file():
        raise ConfigError(f"{secret_path} not found: run 'ccm-node init' first")
    return _from_mapping(path, raw, secret_path.read_text(encoding="utf-8").strip())


def _from_mapping(path: Path, raw: dict[str, Any], secret: str) -> NodeConfig:
    node = raw.get("node")
    if not isinstance(node, dict):
        raise ConfigError("node.toml: missing [node] table")
    for key in ("id", "name", "url"):
        if not isinstance(node.get(key), str) or not node[key]:
            raise ConfigError(f"node.toml: [node] {key} must be a non-empty string")
    stages_raw = raw.get("stages")
    stages: tuple[Stage, ...]
    if stages_raw is None:
        stages = tuple(Stage(k, t) for k, t in DEFAULT_STAGES)
    else:
        if not isinstance(stages_raw, list) or not stages_raw:
            raise ConfigError("node.toml: [[stages]] must be a non-empty list of {key, title}")
        items = []
        for i, s in enumerate(stages_raw):
            if not (isinstance(s, dict) and isinstance(s.get("key"), str) and isinstance(s.get("title"), str)):
                raise ConfigError(f"node.toml: stages[{i}] needs string 'key' and 'title'")
            items.append(Stage(s["key"], s["title"]))
        if len({s.key for s in items}) != len(items):
            raise ConfigError("node.toml: stage keys must be unique")
        stages = tuple(items)
    settings = raw.get("settings", {})
    if not isinstance(settings, dict):
        raise ConfigError("node.toml: [settings] must be a table")
    network = raw.get("network", {})
    if not isinstance(network, dict):
        raise ConfigError("node.toml: [network] must be a table")
    web = raw.get("web", {})
    if not isinstance(web, dict):
        raise ConfigError("node.toml: [web] must be a table")
    database_url = os.environ.get("CCM_DATABASE_URL") or raw.get("database", {}).get("url") \
        or default_database_url(path)
    try:
        return NodeConfig(
            data_dir=path,
            node_id=node["id"],
            name=node["name"],
            base_url=node["url"].rstrip("/"),
            database_url=database_url,
            secret_key=secret,
            reference_prefix=str(node.get("reference_prefix") or default_prefix(node["id"])),
            stages=stages,
            max_request_bytes=int(settings.get("max_request_bytes", 1_048_576)),
            token_days=int(settings.get("token_days", 90)),
            timezone=str(settings.get("timezone", "UTC")),
            erasure_confirm_hours=_positive(settings.get("erasure_confirm_hours", 72), "erasure_confirm_hours"),
            database_busy_seconds=_positive(settings.get("database_busy_seconds", 5), "database_busy_seconds"),
            allow_loopback=_flag(network.get("allow_loopback", False), "allow_loopback"),
            allow_networks=_networks(network.get("allow_networks", [])),
            web_idle_minutes=_positive(web.get("idle_minutes", 30), "idle_minutes"),
            smtp=_smtp(path, raw.get("smtp")),
            metrics_allow=_metrics_allow(raw.get("metrics", {})),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"node.toml: invalid setting: {exc}") from None


def _smtp(data_dir: Path, smtp: object) -> SmtpConfig | None:
    if smtp is None:
        return None
    if not isinstance(smtp, dict):
        raise ConfigError("node.toml: [smtp] must be a table")
    for key in ("host", "from"):
        if not isinstance(smtp.get(key), str) or not smtp[key]:
            raise ConfigError(f"node.toml: [smtp] {key} must be a non-empty string")
    port = smtp.get("port", 587)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError("node.toml: [smtp] port must be a port number")
    username, password_file = smtp.get("username"), smtp.get("password_file")
    if not isinstance(username, str | None) or not isinstance(password_file, str | None):
        raise ConfigError("node.toml: [smtp] username and password_file must be strings")
    starttls = smtp.get("starttls", True)
    if not isinstance(starttls, bool):
        raise ConfigError("node.toml: [smtp] starttls must be true or false")
    return SmtpConfig(host=smtp["host"], from_address=smtp["from"], port=port, username=username or None,
                      password_file=data_dir / password_file if password_file else None, starttls=starttls)


def _metrics_allow(metrics: object) -> tuple[str, ...]:
    import ipaddress

    if not isinstance(metrics, dict):
        raise ConfigError("node.toml: [metrics] must be a table")
    value = metrics.get("allow", ["127.0.0.1/32", "::1/128"])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError('node.toml: [metrics] allow must be a list of networks, e.g. ["127.0.0.1/32"]')
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"node.toml: [metrics] allow: {item!r} is not a network (e.g. 127.0.0.1/32)") from None
    return tuple(value)


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"node.toml: [settings] {name} must be a positive whole number")
    return value


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"node.toml: [network] {name} must be true or false")
    return value


def _networks(value: object) -> tuple[str, ...]:
    import ipaddress

    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError('node.toml: [network] allow_networks must be a list of networks, e.g. ["10.8.0.0/16"]')
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"node.toml: [network] allow_networks: {item!r} is not a network "
                              "(e.g. 10.8.0.0/16)") from None
    return tuple(value)


def default_prefix(node_id: str) -> str:
    """``se.gi-goteborg`` → ``GI``: the first letters of the organisation part, upper-cased."""
    org = node_id.split(".", 1)[-1]
    return (org.split("-")[0] or "CCM")[:6].upper()


def write_config(data_dir: Path, node_id: str, name: str, url: str, database_url: str | None = None) -> None:
    """Create ``node.toml`` and a fresh ``secret_key`` (mode 0600) in a new data directory.

    Raises:
        ConfigError: the directory already holds a node.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    if (data_dir / CONFIG_FILE).exists():
        raise ConfigError(f"{data_dir / CONFIG_FILE} already exists: this directory holds a node already")
    q = json.dumps  # a JSON string is a valid TOML basic string
    lines = [
        "# CCM Exchange node configuration (read at start; restart the node after a change).",
        "[node]",
        f"id = {q(node_id)}",
        f"name = {q(name, ensure_ascii=False)}",
        f"url = {q(url)}",
        "# Case references look like PREFIX-YEAR-NNNN, e.g. GI-2026-0042.",
        f"reference_prefix = {q(default_prefix(node_id))}",
        "",
        "[settings]",
        "max_request_bytes = 1048576",
        "token_days = 90",
        'timezone = "UTC"',
        "# Hours a partner has to confirm an erasure (consent withdrawn, handover revoked) before the",
        "# request is flagged to the admin ('ccm-node erasures --overdue').",
        "erasure_confirm_hours = 72",
        "",
        "[web]",
        "# A signed-in browser session unused for this many minutes is ended.",
        "idle_minutes = 30",
        "",
    ]
    if database_url:
        lines += ["[database]", f"url = {q(database_url)}", ""]
    lines.append("# The stages of the return process, as the network agrees on them (CLDD's 8-step model).")
    for key, title in DEFAULT_STAGES:
        lines += ["[[stages]]", f"key = {q(key)}", f"title = {q(title)}", ""]
    (data_dir / CONFIG_FILE).write_text("\n".join(lines), encoding="utf-8")
    write_private(data_dir / SECRET_FILE, secrets.token_hex(32).encode("ascii"), exclusive=True)


def allow_loopback(data_dir: Path) -> None:
    """Let a node connect to partners on loopback addresses (``[network] allow_loopback = true``): for a
    network of nodes on one machine, the demo's and the tests'. Never for a production node, and never
    written by ``ccm-node init``.

    Raises:
        ConfigError: the directory holds no node, or its ``node.toml`` has a ``[network]`` table already.
    """
    path = data_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{path} not found: run 'ccm-node init' first")
    text = path.read_text(encoding="utf-8")
    if "[network]" in text:
        raise ConfigError(f"{path} has a [network] table already: set allow_loopback there")
    path.write_text(text.rstrip("\n") + "\n\n# Partners on this machine (a demo or test network): never on a "
                    "production node.\n[network]\nallow_loopback = true\n", encoding="utf-8")


def config_for_tests(data_dir: Path, database_url: str | None = None, **overrides: Any) -> NodeConfig:
    """A configuration for tests, without touching files other than the data directory."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "node_id": "se.gi-goteborg",
        "name": "Göteborgs-Initiativet",
        "base_url": "http://127.0.0.1:5000",
        "database_url": database_url or default_database_url(data_dir),
        "secret_key": "test-secret-" + "0" * 52,
        "reference_prefix": "GI",
        "allow_loopback": True,  # tests run their nodes on 127.0.0.1
    }
    values.update(overrides)
    return NodeConfig(**values)
