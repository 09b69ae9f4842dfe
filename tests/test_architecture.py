"""docs/architecture.md §1: imports point down only, the pure packages stay pure, the rooms
of ``node`` import only the rooms below them, and no module is part of an import circle.

The rules are read from the source with ``ast``; every checker is tested on planted
violations so that it can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = {"chain", "consensus", "storage", "acl", "node", "benchmarks"}
ALLOWED: dict[str, set[str]] = {
    "chain": {"chain"},
    "consensus": {"chain", "consensus"},
    "storage": {"chain", "storage"},
    "acl": {"chain", "acl"},
    "node": {"chain", "consensus", "storage", "acl", "node", "benchmarks"},
    "benchmarks": PROJECT,
}
#: The rooms of ``node`` (its sub-packages) and the rooms each may import; ``node.app`` and
#: ``node/__init__.py`` are the composition root (see ``node/__init__.py``).
ROOT_ROOM = "app"
NODE_ROOMS: dict[str, set[str]] = {
    "runtime": set(),
    "transport": {"runtime"},
    "pipeline": {"runtime", "transport"},
    "consensus_driver": {"runtime", "transport", "pipeline"},
    "api": {"runtime", "pipeline"},
    ROOT_ROOM: {"runtime", "transport", "pipeline", "consensus_driver", "api"},
    "client": {"runtime"},
    "cluster": {"runtime", "transport", "client"},
    "cli": {ROOT_ROOM, "runtime", "transport", "client", "cluster"},
    "sim": {"consensus_driver"},
}
PURE = {"chain", "consensus", "acl"}
IMPURE_MODULES = {
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "lmdb",
    "time",
    "uvloop",
    "aiohttp",
    "aiomqtt",
    "subprocess",
    "threading",
}
WALL_CLOCK_ATTRS = {"now", "utcnow", "today"}
RANDOM_OK = {"Random"}


def violations(package: str, source: str) -> list[str]:
    """Every rule that ``source`` (a module of ``package``) breaks, as readable lines."""
    found: list[str] = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if package in PURE and node.module == "random":
                bad = [a.name for a in node.names if a.name not in RANDOM_OK]
                found += [f"line {getattr(node, 'lineno', 0)}: global random {b}" for b in bad]
        for name in names:
            top = name.split(".")[0]
            if top in PROJECT and top not in ALLOWED[package]:
                found.append(f"line {getattr(node, 'lineno', 0)}: {package} imports {top}")
            if package in PURE and top in IMPURE_MODULES:
                found.append(f"line {getattr(node, 'lineno', 0)}: pure {package} imports {top}")
        if package in PURE and isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "print":
                found.append(f"line {getattr(node, 'lineno', 0)}: print in pure {package}")
            if isinstance(func, ast.Attribute):
                owner = ast.unparse(func.value)
                if owner == "random" and func.attr not in RANDOM_OK:
                    found.append(f"line {getattr(node, 'lineno', 0)}: global random.{func.attr}")
                if owner.split(".")[-1] in {"datetime", "date"} and func.attr in WALL_CLOCK_ATTRS:
                    found.append(
                        f"line {getattr(node, 'lineno', 0)}: wall clock {owner}.{func.attr}"
                    )
    return found


def module_name(path: Path) -> str:
    """``node/cli/__init__.py`` -> ``node.cli``; ``node/app.py`` -> ``node.app``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(name: str, source: str, *, is_package: bool, known: set[str]) -> set[str]:
    """The project modules that module ``name`` imports anywhere in its source: at the top,
    inside functions and under ``TYPE_CHECKING`` alike (a late import hides a circle, it
    does not remove it). ``from a import b`` names ``a.b`` when that is a module."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, *([node.module] if node.module else [])])
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for _, path in project_modules()}
    known = set(paths)
    return {
        name: imported_modules(
            name, path.read_text(), is_package=path.name == "__init__.py", known=known
        )
        for name, path in paths.items()
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other, directly or around a loop (the
    strongly connected components of more than one module, or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def room(module: str) -> str | None:
    """The room of ``node`` a module lives in (``node.api.routes`` -> ``api``)."""
    parts = module.split(".")
    if parts[0] != "node":
        return None
    if len(parts) == 1 or parts[1] not in NODE_ROOMS or parts[1] == ROOT_ROOM:
        return ROOT_ROOM
    return parts[1]


def room_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import from one room of ``node`` into a room it may not import."""
    found = []
    for module, targets in sorted(graph.items()):
        here = room(module)
        for target in sorted(targets):
            there = room(target)
            if here is None or there is None or there == here:
                continue
            if there not in NODE_ROOMS[here]:
                found.append(f"{module} ({here}) imports {target} ({there})")
    return found


def project_modules() -> list[tuple[str, Path]]:
    return [(pkg, path) for pkg in sorted(PROJECT) for path in sorted((ROOT / pkg).rglob("*.py"))]


def test_every_module_follows_the_layer_and_purity_rules() -> None:
    problems = [
        f"{path.relative_to(ROOT)}: {v}"
        for pkg, path in project_modules()
        for v in violations(pkg, path.read_text())
    ]
    assert problems == []


def test_no_module_is_part_of_an_import_circle() -> None:
    graph = import_graph()
    assert len(graph) > 100  # the whole project was read
    assert circles(graph) == []


def test_circle_finder_catches_planted_circles() -> None:
    assert circles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"a"}}) == [["a"]]
    assert circles({"a": {"b"}, "b": set(), "c": {"b"}}) == []


def test_import_reader_counts_late_and_type_checking_imports() -> None:
    known = {"node", "node.app", "node.api", "node.api.routes", "chain", "chain.codec"}
    late = "def f():\n    from node.app import Node\n"
    assert imported_modules("node.api.routes", late, is_package=False, known=known) == {"node.app"}
    hidden = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import node.app\n"
    assert imported_modules("node.api.routes", hidden, is_package=False, known=known) == {
        "node.app"
    }
    names = "from chain import codec\nfrom node.api import routes\n"
    assert imported_modules("node.app", names, is_package=False, known=known) == {
        "chain.codec",
        "node.api.routes",
    }
    relative = "from .routes import make_app\nfrom .. import app\n"
    assert imported_modules("node.api", relative, is_package=True, known=known) == {
        "node.api.routes",
        "node.app",
    }


def test_every_node_room_imports_only_the_rooms_below_it() -> None:
    assert room_violations(import_graph()) == []


def test_room_checker_catches_planted_violations() -> None:
    assert room_violations({"node.api.routes": {"node.app"}})  # the app <-> rpc circle
    assert room_violations({"node.runtime.config": {"node.transport.tls"}})
    assert room_violations({"node.app": {"node.cli.tx"}})
    assert room_violations({"node.sim.replica": {"node.cluster.local"}})
    assert room_violations({"node.cli.node": {"node.app", "node.runtime.config"}}) == []
    assert room_violations({"node.api.routes": {"chain.codec", "node.api.openapi"}}) == []


def test_every_node_room_is_declared() -> None:
    on_disk = {p.parent.name for p in (ROOT / "node").glob("*/__init__.py")}
    assert on_disk == set(NODE_ROOMS) - {ROOT_ROOM}


def test_every_package_docstring_says_what_it_may_import() -> None:
    inits = [init for pkg in sorted(PROJECT) for init in sorted((ROOT / pkg).rglob("__init__.py"))]
    assert len(inits) >= len(PROJECT)
    for init in inits:
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(ROOT)} has no docstring"
        assert "import" in doc, f"{init.relative_to(ROOT)} does not say what it may import"


def test_checker_catches_planted_violations() -> None:
    assert violations("chain", "import storage.lmdb_store\n")
    assert violations("storage", "from acl import state\n")
    assert violations("consensus", "import time\nx = time.time()\n")
    assert violations("acl", "import random\nx = random.random()\n")
    assert violations("acl", "from random import randint\n")
    assert violations("chain", "print('hi')\n")
    assert violations("chain", "import datetime\nx = datetime.datetime.now()\n")
    assert violations("consensus", "from datetime import datetime\nx = datetime.now()\n")
    assert violations("acl", "import asyncio\n")
    assert violations("chain", "import lmdb\n")
    assert violations("consensus", "import socket\n")


def test_checker_accepts_allowed_code() -> None:
    assert (
        violations("consensus", "import random\nr = random.Random(4)\nimport chain.codec\n") == []
    )
    assert violations("node", "import storage, acl, consensus, chain\nimport asyncio\n") == []
    assert violations("storage", "import lmdb\nimport threading\nfrom chain import block\n") == []


def test_installed_names_resolve_to_this_project() -> None:
    import acl
    import chain
    import consensus
    import node
    import storage

    for mod in (chain, consensus, storage, acl, node):
        assert mod.__file__ is not None
        assert Path(mod.__file__).resolve().parent.parent == ROOT, mod.__file__
