"""Shared test fixtures and paths, and the guard that keeps the suite inside the checkout.

The suite must pass in a fresh clone with nothing beside it, so every file a test reads
lives in this repository (the reference vectors in ``tests/vectors/``). An audit hook,
installed when this module is imported, records every file open and directory listing
whose path resolves to a *sibling* of the checkout (under ``ROOT.parent`` but not under
``ROOT``); a test during which that happened fails at teardown, naming the path, and
reads outside any test (during collection, or in a session fixture) fail the session.
Paths elsewhere (``/tmp``, the virtualenv, ``/usr``, ``/proc``) are not checked, nor are
those directories when they happen to be siblings (a checkout at ``/app``), nor siblings
that did not exist when the session started. Subprocesses are not covered: the hook sees
only this process.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import site
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"

# Audit events that name a path about to be read. ``glob.glob`` is left out because its
# ``glob.glob/2`` twin carries the ``root_dir`` that a relative pattern is relative to.
WATCHED_EVENTS = frozenset({"open", "os.listdir", "os.scandir", "glob.glob/2"})

# Where the interpreter, the temporary files and the system live. They are never counted
# as beside the checkout (they are when the checkout is ``/app`` or ``~/grantchain``),
# except one that contains the checkout: that would allow every sibling.
_SYSTEM_DIRS = (
    "/bin", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/nix", "/opt", "/proc", "/run",
    "/sbin", "/snap", "/sys", "/tmp", "/usr", "/var",
)  # fmt: skip


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)


def outside_checkout(path: object, root: Path | str, cwd: str | None = None) -> bool:
    """Whether ``path`` resolves to a sibling of the checkout ``root``, or into one.

    True when the resolved path (relative paths against ``cwd``, default the current
    directory; ``..`` and symbolic links resolved) lies strictly under ``root``'s parent
    but not under ``root`` itself. Anything that is not a path (a file descriptor,
    ``None``) is False, and so is every path outside ``root``'s parent.
    """
    if isinstance(path, int) or path is None:
        return False
    try:
        text = os.fsdecode(os.fspath(path))  # type: ignore[call-overload]
        base = cwd if cwd is not None else os.getcwd()
        real = os.path.realpath(os.path.join(base, text))
        root_real = os.path.realpath(os.fspath(root))
    except (TypeError, ValueError, OSError):
        return False
    parent = os.path.dirname(root_real)
    return real != parent and _under(real, parent) and not _under(real, root_real)


def default_allowed() -> list[str]:
    """The interpreter's, the temporary files' and the system's directories."""
    dirs = [sys.prefix, sys.base_prefix, sys.exec_prefix, tempfile.gettempdir(), *_SYSTEM_DIRS]
    dirs += [*site.getsitepackages(), site.getusersitepackages()]
    home = os.path.expanduser("~")
    dirs += [os.path.join(home, d) for d in (".cache", ".local", ".config")]
    dirs += [os.environ[v] for v in ("XDG_CACHE_HOME", "NUMBA_CACHE_DIR") if os.environ.get(v)]
    temproot = os.environ.get("PYTEST_DEBUG_TEMPROOT") or tempfile.gettempdir()
    with contextlib.suppress(Exception):
        dirs.append(os.path.join(temproot, f"pytest-of-{getpass.getuser()}"))
    return dirs


class OutsideReads:
    """Audit-hook recorder of reads beside the checkout ``root``, one line per event.

    A read counts when ``outside_checkout`` says so, the sibling it reaches already
    existed when the recorder was made (a directory a test creates beside the checkout,
    such as a temporary one when the checkout is ``/tmp/repo``, is not a dependency),
    and it is not under one of ``allowed`` (see ``default_allowed``).
    """

    def __init__(self, root: Path | str, allowed: Iterable[str] = ()) -> None:
        self.root = os.path.realpath(os.fspath(root))
        self.parent = os.path.dirname(self.root)
        try:
            self.siblings = frozenset(os.listdir(self.parent)) - {os.path.basename(self.root)}
        except OSError:
            self.siblings = frozenset()
        self.allowed: list[str] = []
        for path in allowed:
            self.allow(path)
        self.hits: list[str] = []
        self._local = threading.local()

    def allow(self, path: str | os.PathLike[str]) -> None:
        real = os.path.realpath(os.fspath(path))
        if not _under(self.root, real):  # one containing the checkout would allow all
            self.allowed.append(real)

    def offends(self, path: object) -> bool:
        if not outside_checkout(path, self.root):
            return False
        real = os.path.realpath(os.fsdecode(os.fspath(path)))  # type: ignore[call-overload]
        sibling = os.path.relpath(real, self.parent).split(os.sep)[0]
        return sibling in self.siblings and not any(_under(real, a) for a in self.allowed)

    def __call__(self, event: str, args: tuple[object, ...]) -> None:
        if event not in WATCHED_EVENTS or not args or getattr(self._local, "busy", False):
            return
        self._local.busy = True
        try:
            path = args[0]
            if event == "glob.glob/2" and len(args) > 3:
                if args[3] is not None:  # relative to a directory descriptor: unknowable
                    return
                root_dir = args[2]
                if isinstance(root_dir, str | bytes | os.PathLike) and isinstance(
                    path, str | bytes
                ):
                    path = os.path.join(os.fsdecode(os.fspath(root_dir)), os.fsdecode(path))
            if path is None and event in {"os.listdir", "os.scandir"}:
                path = "."
            if self.offends(path):
                real = os.path.realpath(os.fsdecode(os.fspath(path)))  # type: ignore[call-overload]
                self.hits.append(f"{event} {real} (given as {path!r})")
        except Exception:  # an audit hook must never break the operation it watches
            pass
        finally:
            self._local.busy = False

    def take(self) -> list[str]:
        """The hits recorded so far, clearing them."""
        hits, self.hits = self.hits, []
        return hits


# Every recorder in this list sees each watched event; a test may add its own.
RECORDERS: list[OutsideReads] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event in WATCHED_EVENTS:
        for recorder in tuple(RECORDERS):
            recorder(event, args)


GUARD = OutsideReads(ROOT, default_allowed())
RECORDERS.append(GUARD)
sys.addaudithook(_audit)  # audit hooks cannot be removed: installed once, at import

_UNATTRIBUTED: list[str] = []  # reads beside the checkout that happened outside any test


def pytest_sessionstart(session: pytest.Session) -> None:
    if session.config.option.basetemp:
        GUARD.allow(session.config.option.basetemp)
    if not (VECTORS / "README.md").is_file():
        raise pytest.UsageError(
            f"test vectors not found at {VECTORS}: they are part of the repository "
            "(is the checkout complete?)"
        )


@pytest.fixture(autouse=True)
def _no_reads_beside_the_checkout() -> Iterator[None]:
    _UNATTRIBUTED.extend(GUARD.take())
    yield
    hits = GUARD.take()
    if hits:
        pytest.fail(
            f"the test read outside the checkout {ROOT} (beside it):\n  " + "\n  ".join(hits),
            pytrace=False,
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    hits = _UNATTRIBUTED + GUARD.take()
    _UNATTRIBUTED.clear()
    if not hits:
        return
    message = (
        f"read outside the checkout {ROOT} (beside it) outside any test, "
        "e.g. during collection:\n  " + "\n  ".join(hits)
    )
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message, red=True)
    else:
        print(message, file=sys.stderr)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    if not VECTORS.is_dir():
        pytest.fail(f"test vectors not found at {VECTORS}: they are part of the repository")
    return VECTORS


def grantchain(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the ``grantchain`` CLI of this checkout as a user would, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=timeout_s,
    )
