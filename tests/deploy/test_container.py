"""deploy/Containerfile and deploy/compose.yaml.

Building the image downloads the base image and packages, which this machine cannot: the build runs only with
``CCM_CONTAINER_TESTS=1`` and a usable docker. Always, the files are checked statically: every file the
Containerfile copies exists and passes its .dockerignore, what pyproject.toml needs to build is copied, the
command names files the image has, and compose.yaml describes the node, its worker and PostgreSQL.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
IGNORE = ROOT / "deploy" / "Containerfile.dockerignore"
COMPOSE = ROOT / "deploy" / "compose.yaml"
FONT_PACKAGES = ["libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz-subset0", "fonts-dejavu-core",
                 "fonts-noto-core"]


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in CONTAINERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        pending += " " + line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Containerfile ends in a continuation line"
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        assert stages, "the first instruction must be FROM"
        stages[-1].append(instruction)
    return stages


def _copies(stage: list[tuple[str, str]]) -> list[tuple[list[str], str, str | None]]:
    """(sources, destination, --from stage or None) of each COPY."""
    out = []
    for word, rest in stage:
        if word != "COPY":
            continue
        parts = shlex.split(rest)
        flags = [p for p in parts if p.startswith("--")]
        paths = [p for p in parts if not p.startswith("--")]
        origin = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        out.append((paths[:-1], paths[-1], origin))
    return out


def _ignored(path: str) -> bool:
    """Whether the .dockerignore keeps ``path`` (a file or directory relative to the context) out."""
    ignored = False
    for raw in IGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        if pattern == "**" or fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            ignored = not negate
    return ignored


def test_base_image_and_user() -> None:
    stages = _stages()
    assert [s[0][1].split()[0] for s in stages] == ["python:3.11-slim-bookworm"] * len(stages)
    final = stages[-1]
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the node must not run as root"
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert "CCM_DATA_DIR=/data" in env
    assert ("VOLUME", "/data") in final


def test_font_packages_are_installed_and_match_ci() -> None:
    run = " ".join(rest for word, rest in _stages()[-1] if word == "RUN")
    for package in FONT_PACKAGES:
        assert re.search(rf"(?<![\w.-]){re.escape(package)}(?![\w.-])", run), package
    assert re.search(r"(?<![\w.-])postgresql-client(?![\w.-])", run), "ccm-node backup needs pg_dump"
    # the same list the CI installs for the PDF tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert all(package in ci for package in FONT_PACKAGES)


def test_every_copied_file_exists_and_is_in_the_build_context() -> None:
    stages = _stages()
    names = [s[0][1].split()[-1] for s in stages if " AS " in s[0][1].upper()]
    for stage in stages:
        for sources, _dest, origin in _copies(stage):
            if origin is not None:
                assert origin in names, f"COPY --from={origin}: no such stage"
                continue
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                assert not _ignored(source), f"COPY {source}: excluded by {IGNORE.name}"


def test_what_the_package_build_needs_is_copied() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {"pyproject.toml", project["project"]["readme"], "hatch_build.py",
              *project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]}
    copied = {source.rstrip("/") for sources, _d, origin in _copies(_stages()[0]) if origin is None
              for source in sources}
    assert needed <= copied, needed - copied
    run = " ".join(rest for word, rest in _stages()[0] if word == "RUN")
    assert re.search(r"pip install /src\b", run)


def test_command_and_healthcheck() -> None:
    final = _stages()[-1]
    cmd = [rest for word, rest in final if word == "CMD"]
    assert len(cmd) == 1
    import json

    command = json.loads(cmd[0])
    assert command[0] == "gunicorn" and command[-1] == "node.wsgi:app"
    config = command[command.index("-c") + 1]
    # the config the command names is copied into the image from deploy/gunicorn.conf.py
    assert any(dest == config and sources == ["deploy/gunicorn.conf.py"] for sources, dest, _o in _copies(final))
    assert (ROOT / "node" / "wsgi.py").is_file()
    health = [rest for word, rest in final if word == "HEALTHCHECK"]
    assert len(health) == 1 and "http://127.0.0.1:8000/healthz" in health[0]
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert "CCM_BIND=0.0.0.0:8000" in env and ("EXPOSE", "8000") in final


def _compose() -> dict:  # type: ignore[type-arg]
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_runs_node_worker_and_postgres() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"db", "node", "deliver"}
    db = services["db"]
    assert db["image"] == "postgres:15"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    assert db["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    node, deliver = services["node"], services["deliver"]
    assert node["image"] == deliver["image"]
    assert (COMPOSE.parent / node["build"]["context"] / node["build"]["dockerfile"]).resolve() == CONTAINERFILE
    for service in (node, deliver):
        assert "data:/data" in service["volumes"]
        assert service["environment"]["CCM_DATA_DIR"] == "/data"
        assert service["environment"]["CCM_DATABASE_URL"].startswith("postgresql://ccm:")
        assert service["environment"]["CCM_DATABASE_URL"].endswith("@db:5432/ccm")
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
    assert all(port.startswith("127.0.0.1:") for port in node["ports"]), "publish on the host's loopback only"
    assert "ports" not in deliver and "ports" not in db
    assert deliver["healthcheck"] == {"disable": True}
    assert set(compose["volumes"]) == {"data", "db"}


def test_compose_worker_command_is_a_real_command() -> None:
    from node.cli import build_parser

    command = _compose()["services"]["deliver"]["command"]
    assert command[0] == "ccm-node"
    args = build_parser().parse_args(command[1:])
    assert args.command == "deliver"


def test_compose_database_url_is_one_the_node_accepts() -> None:
    from node.db import normalise_url

    url = _compose()["services"]["node"]["environment"]["CCM_DATABASE_URL"]
    assert normalise_url(url).startswith("postgresql+psycopg://")


def _docker_usable() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "docker is not installed"
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30)
    return None if info.returncode == 0 else "docker is installed but its daemon does not answer"


@pytest.mark.slow
def test_image_builds_and_runs_the_cli() -> None:
    if os.environ.get("CCM_CONTAINER_TESTS") != "1":
        pytest.skip("set CCM_CONTAINER_TESTS=1 to build the image (downloads the base image and packages)")
    reason = _docker_usable()
    if reason:
        pytest.skip(reason)
    tag = "ccm-node:test"
    build = subprocess.run(["docker", "build", "-f", str(CONTAINERFILE), "-t", tag, str(ROOT)],
                           capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    run = subprocess.run(["docker", "run", "--rm", tag, "ccm-node", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and "deliver" in run.stdout, run.stderr
    user = subprocess.run(["docker", "run", "--rm", tag, "id", "-u"], capture_output=True, text=True, timeout=120)
    assert user.stdout.strip() == "10001"
