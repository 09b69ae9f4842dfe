"""DESIGN.md §1: imports point down only, and the pure packages stay pure.

The rules are read from the source with ``ast``; the checker itself is tested on planted
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
PURE = {"chain", "consensus", "acl"}
IMPURE_MODULES = {
    "asyncio", "socket", "ssl", "selectors", "lmdb", "time", "uvloop",
    "aiohttp", "aiomqtt", "subprocess", "threading",
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
                found += [f"line {node.lineno}: global random {b}" for b in bad]
        for name in names:
            top = name.split(".")[0]
            if top in PROJECT and top not in ALLOWED[package]:
                found.append(f"line {node.lineno}: {package} imports {top}")
            if package in PURE and top in IMPURE_MODULES:
                found.append(f"line {node.lineno}: pure {package} imports {top}")
        if package in PURE and isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "print":
                found.append(f"line {node.lineno}: print in pure {package}")
            if isinstance(func, ast.Attribute):
                owner = ast.unparse(func.value)
                if owner == "random" and func.attr not in RANDOM_OK:
                    found.append(f"line {node.lineno}: global random.{func.attr}")
                if owner.split(".")[-1] in {"datetime", "date"} and func.attr in WALL_CLOCK_ATTRS:
                    found.append(f"line {node.lineno}: wall clock {owner}.{func.attr}")
    return found


def project_modules() -> list[tuple[str, Path]]:
    return [
        (pkg, path)
        for pkg in sorted(PROJECT)
        for path in sorted((ROOT / pkg).rglob("*.py"))
    ]


def test_every_module_follows_the_layer_and_purity_rules() -> None:
    problems = [
        f"{path.relative_to(ROOT)}: {v}"
        for pkg, path in project_modules()
        for v in violations(pkg, path.read_text())
    ]
    assert problems == []


def test_every_package_docstring_says_what_it_may_import() -> None:
    for init in sorted(ROOT.glob("*/__init__.py")) + sorted(ROOT.glob("*/*/__init__.py")):
        if init.parts[-2 if init.parent.parent == ROOT else -3] not in PROJECT:
            continue
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
    assert violations("consensus", "import random\nr = random.Random(4)\nimport chain.codec\n") == []
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
