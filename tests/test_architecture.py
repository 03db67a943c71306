"""The import graph of ``protocol/``, ``node/`` and ``admin/``: no circles, nothing imported from a layer above,
no room reaching into a sibling, and no module importing another module's underscore names.

The layers, bottom to top (docs/architecture.md draws them):

    protocol                                   the wire format, pure
    node core                                  config, db, clock, errors, audit, accounts, auth, api, concurrency,
                                               command_env, outbound
    node.cases                                 the case domain
    node.exchange (models)                     the exchange's shared tables
    trust < delivery < inbox                   the exchange's rooms
    keys | handovers                           side by side: neither imports the other
    chain                                      stands on handovers
    node.exchange.wiring | worklist            every room's appliers, registered | the home page's queues
    app, command line, admin, web              create_app, node.cli, node.serve, node.migrate, demo, admin/

TYPE_CHECKING imports count too: a circle in the types is a circle a reader has to untangle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("protocol", "node", "admin")

#: (group, rank, module prefixes). A module belongs to the group of its longest matching prefix; it may import
#: its own group and any group of a lower rank; two groups of the same rank may not import each other.
LAYERS: list[tuple[str, int, tuple[str, ...]]] = [
    ("protocol", 0, ("protocol",)),
    ("node core", 1, ("node.clock", "node.config", "node.db", "node.errors", "node.audit", "node.accounts",
                      "node.auth", "node.api", "node.concurrency", "node.command_env", "node.outbound",
                      "node.staff", "node.audit_search", "node.backup.journal",
                      "node.observability.instruments", "node.at_rest", "node.private_files")),
    ("cases", 2, ("node.cases",)),
    ("exchange tables", 3, ("node.exchange", "node.exchange.models")),
    ("trust", 4, ("node.exchange.trust",)),
    ("delivery", 5, ("node.exchange.delivery",)),
    ("inbox", 6, ("node.exchange.inbox",)),
    ("keys", 7, ("node.exchange.keys",)),
    ("handovers", 7, ("node.exchange.handovers",)),
    ("chain", 8, ("node.exchange.chain",)),
    ("wiring", 9, ("node.exchange.wiring",)),
    ("resync", 9, ("node.exchange.resync",)),
    ("worklist", 9, ("node.exchange.worklist", "node.exchange.dashboard_figures")),
    ("notifications", 9, ("node.notifications",)),
    ("app and admin", 10, ("node.cli", "node.serve", "node.serve_worker", "node.wsgi", "node.migrate",
                           "node.migrations", "node.demo_network", "node.demo_nodes", "node.demo_story", "node.web",
                           "node.backup", "node.observability", "admin")),
]


def layer_of(module: str) -> tuple[str, int]:
    if module == "node":  # the package itself: create_app, which assembles everything
        return "app and admin", 10
    best: tuple[str, int, int] | None = None
    for group, rank, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[2]):
                best = (group, rank, len(prefix))
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_architecture.py")
    return best[0], best[1]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES)


def edges(graph: grimp.ImportGraph) -> Iterator[tuple[str, str]]:
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            yield module, imported


def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    adjacency = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(adjacency):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(adjacency[node])):
                child = adjacency[node][j]
                if child not in index:
                    work.append((node, j + 1))
                    work.append((child, 0))
                    recurse = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if recurse:
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def test_every_module_has_a_layer(graph: grimp.ImportGraph) -> None:
    for module in graph.modules:
        layer_of(module)


def test_no_import_circles(graph: grimp.ImportGraph) -> None:
    found = circles(graph)
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_import_goes_up_or_sideways(graph: grimp.ImportGraph) -> None:
    wrong = []
    for module, imported in edges(graph):
        (group, rank), (target, target_rank) = layer_of(module), layer_of(imported)
        if group != target and target_rank >= rank:
            wrong.append(f"{module} ({group}) imports {imported} ({target})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_layer_check_sees_a_wrong_import() -> None:
    """The two checks above hold something: a made-up graph with an upward import and a circle fails them."""
    fake = grimp.ImportGraph()
    for name in ("node.exchange.trust.partners", "node.exchange.handovers.send", "node.cases.services"):
        fake.add_module(name)
    fake.add_import(importer="node.exchange.trust.partners", imported="node.exchange.handovers.send")
    fake.add_import(importer="node.exchange.handovers.send", imported="node.exchange.trust.partners")
    assert circles(fake) == [["node.exchange.handovers.send", "node.exchange.trust.partners"]]
    upward = [(m, i) for m, i in edges(fake) if layer_of(m)[0] != layer_of(i)[0]
              and layer_of(i)[1] >= layer_of(m)[1]]
    assert upward == [("node.exchange.trust.partners", "node.exchange.handovers.send")]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def private_imports(path: Path) -> Iterator[str]:
    """``from x import _name`` and ``module._name`` where ``x``/``module`` is one of the project's modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _module_name(path)
    project_aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:  # relative: resolve against this module's package
                base = own.split(".")[: -node.level] if path.name != "__init__.py" else own.split(".")
                source = ".".join([*base, source] if source else base)
            if source.split(".")[0] not in (*PACKAGES, "tests", "bench"):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    yield f"{path.relative_to(ROOT)}:{node.lineno}: from {source} import {alias.name}"
                project_aliases.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in (*PACKAGES, "tests", "bench"):
                    project_aliases.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                and isinstance(node.value, ast.Name) and node.value.id in project_aliases:
            yield f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}"


def test_no_module_imports_underscore_names() -> None:
    found = [hit for package in (*PACKAGES, "tests", "bench") for path in sorted((ROOT / package).rglob("*.py"))
             for hit in private_imports(path)]
    assert not found, "underscore names used from another module:\n" + "\n".join(found)
