"""The suite stands alone: it reads nothing beside the checkout, and no file points there.

``tests/conftest.py`` installs an audit hook that records reads of a sibling of the
checkout (where a ``shared`` folder once held the vectors). These tests check its decision
on planted paths, show that the installed hook really fires and fails a test or a session
(on a fake checkout under ``tmp_path``: nothing is created beside the real one), and grep
the repository for paths that lead out of it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import (
    GUARD,
    RECORDERS,
    ROOT,
    VECTORS,
    OutsideReads,
    default_allowed,
    outside_checkout,
)

THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()
# Spelled in parts so that this guard is not itself a file that names the folder.
_BESIDE = "sha" + "red"
POINTERS = (f"../{_BESIDE}", f"{_BESIDE}/vectors", f"{_BESIDE}/notes")


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    """A fake checkout ``tmp_path/repo`` with a sibling folder holding ``x``."""
    (tmp_path / "repo" / "tests").mkdir(parents=True)
    (tmp_path / "repo" / "chain").mkdir()
    (tmp_path / "repo" / "chain" / "x.py").write_text("inside\n")
    (tmp_path / _BESIDE).mkdir()
    (tmp_path / _BESIDE / "x").write_text("beside\n")
    return tmp_path / "repo"


def test_a_sibling_of_the_checkout_is_outside(fake: Path) -> None:
    shared = fake.parent / _BESIDE
    assert outside_checkout(shared / "x", fake)
    assert outside_checkout(str(shared / "x"), fake)
    assert outside_checkout(os.fsencode(shared / "x"), fake)
    assert outside_checkout(shared, fake)
    assert outside_checkout(shared / "no-such-file", fake)
    assert outside_checkout(fake.parent / "repo-other" / "x", fake)  # a prefix is not inside


def test_paths_inside_the_checkout_are_not_outside(fake: Path) -> None:
    assert not outside_checkout(fake, fake)
    assert not outside_checkout(fake / "chain" / "x.py", fake)
    assert not outside_checkout(fake / "tests" / ".." / "chain" / "x.py", fake)
    assert not outside_checkout(fake / "tests" / "vectors" / "missing.json", fake)
    assert not outside_checkout("chain/x.py", fake, cwd=str(fake))
    assert not outside_checkout("../chain/x.py", fake, cwd=str(fake / "tests"))


def test_paths_elsewhere_are_not_outside(fake: Path) -> None:
    assert not outside_checkout(fake.parent, fake)  # the parent itself is no sibling
    assert not outside_checkout(fake.parent.parent / "elsewhere" / "x", fake)
    for path in ("/tmp/x", "/usr/lib/python3/x.py", "/proc/self/status", sys.prefix):
        assert not outside_checkout(path, "/srv/work/repo"), path


def test_non_paths_are_not_outside(fake: Path) -> None:
    assert not outside_checkout(3, fake)
    assert not outside_checkout(None, fake)
    assert not outside_checkout(object(), fake)
    assert not outside_checkout("bad\0path", fake)


def test_relative_paths_resolve_against_the_working_directory(fake: Path) -> None:
    assert outside_checkout(f"../{_BESIDE}/x", fake, cwd=str(fake))
    assert outside_checkout(f"../../{_BESIDE}/x", fake, cwd=str(fake / "tests"))
    assert outside_checkout(f"tests/../../{_BESIDE}/x", fake, cwd=str(fake))
    assert not outside_checkout(
        f"../{_BESIDE}/x", fake, cwd=str(fake / "tests")
    )  # = a folder inside the checkout


def test_symbolic_links_are_followed(fake: Path) -> None:
    (fake / "inner").symlink_to(fake / "chain")
    (fake / "escape").symlink_to(fake.parent / _BESIDE)
    assert not outside_checkout(fake / "inner" / "x.py", fake)
    assert outside_checkout(fake / "escape" / "x", fake)
    linked = fake.parent / "linked-repo"
    linked.symlink_to(fake)  # a checkout reached through a link is the same checkout
    assert not outside_checkout(linked / "chain" / "x.py", fake)
    assert outside_checkout(fake.parent / _BESIDE / "x", linked)


def test_the_recorder_exempts_allowed_and_new_siblings(fake: Path) -> None:
    (fake.parent / "venv").mkdir()
    recorder = OutsideReads(fake, [str(fake.parent / "venv"), str(fake.parent)])
    assert recorder.allowed == [str((fake.parent / "venv").resolve())]  # not the parent
    assert recorder.offends(fake.parent / _BESIDE / "x")
    assert not recorder.offends(fake.parent / "venv" / "lib" / "x.py")
    assert not recorder.offends(fake / "chain" / "x.py")
    (fake.parent / "created-later").mkdir()
    assert not recorder.offends(fake.parent / "created-later" / "x")


def test_system_directories_are_exempt_for_a_checkout_at_the_top() -> None:
    recorder = OutsideReads("/app-that-does-not-exist", default_allowed())
    recorder.siblings = frozenset({_BESIDE, "usr", "tmp", "proc", "etc"})
    assert recorder.offends(f"/{_BESIDE}/vectors/x.json")
    for path in ("/usr/lib/x.py", "/tmp/x", "/proc/self/status", "/etc/hostname"):
        assert not recorder.offends(path), path


def test_the_installed_hook_records_reads_beside_a_fake_checkout(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = fake.parent / _BESIDE
    recorder = OutsideReads(fake)
    RECORDERS.append(recorder)
    try:
        assert (fake / "chain" / "x.py").read_text() == "inside\n"
        os.listdir(fake / "chain")
        assert recorder.take() == []
        assert (shared / "x").read_text() == "beside\n"
        os.listdir(shared)
        list(os.scandir(shared))
        glob.glob("*", root_dir=shared)
        monkeypatch.chdir(fake)
        with open(f"../{_BESIDE}/x", "rb") as f:
            f.read()
        fd = os.open(f"../{_BESIDE}/x", os.O_RDONLY)
        os.close(fd)
    finally:
        RECORDERS.remove(recorder)
    hits = recorder.take()
    events = [hit.split(" ", 1)[0] for hit in hits]
    assert events[:3] == ["open", "os.listdir", "os.scandir"], events
    assert "glob.glob/2" in events, events
    assert events[-2:] == ["open", "open"], events  # built-in open, then os.open
    assert all(str(shared.resolve()) in hit for hit in hits), hits
    assert f"'../{_BESIDE}/x'" in hits[-1]


def test_the_guard_watches_this_checkout() -> None:
    assert GUARD in RECORDERS
    assert GUARD.root == os.path.realpath(ROOT)
    for sibling in sorted(
        GUARD.siblings
    ):  # e.g. the old vectors folder, if it still lies beside it
        path = os.path.join(GUARD.parent, sibling, "x")
        assert GUARD.offends(path) != any(path.startswith(a + os.sep) for a in GUARD.allowed)


def test_the_guard_fails_a_test_and_the_session_that_read_beside_the_checkout(
    tmp_path: Path,
) -> None:
    """A copy of this conftest in a fake checkout, run by pytest: the negative control."""
    repo = tmp_path / "repo"
    (repo / "tests" / "vectors").mkdir(parents=True)
    (repo / "tests" / "vectors" / "README.md").write_text("fake\n")
    (repo / "pytest.ini").write_text("[pytest]\n")
    shutil.copy(ROOT / "tests" / "conftest.py", repo / "tests" / "conftest.py")
    (tmp_path / _BESIDE).mkdir()
    (tmp_path / _BESIDE / "in_test.txt").write_text("x\n")
    (tmp_path / _BESIDE / "at_collection.txt").write_text("x\n")
    (repo / "tests" / "test_reads.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path

            HERE = Path(__file__).resolve().parent
            (HERE.parent.parent / "BESIDE" / "at_collection.txt").read_text()

            def test_clean():
                assert (HERE / "vectors" / "README.md").read_text() == "fake\\n"

            def test_reads_beside():
                (HERE.parent.parent / "BESIDE" / "in_test.txt").read_text()
            """
        ).replace("BESIDE", _BESIDE)
    )

    def pytest_run(*args: str) -> tuple[int, str]:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, "tests"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        )
        return run.returncode, run.stdout + run.stderr

    in_test = str((tmp_path / _BESIDE / "in_test.txt").resolve())
    at_collection = str((tmp_path / _BESIDE / "at_collection.txt").resolve())
    code, out = pytest_run()
    assert code == 1, out
    assert "2 passed, 1 error" in out, out
    assert "ERROR at teardown of test_reads_beside" in out, out
    assert in_test in out, out
    assert "outside any test" in out, out
    assert at_collection in out, out
    code, out = pytest_run("-k", "test_clean")  # every test passes: the session still fails
    assert code == 1, out
    assert "1 passed" in out, out
    assert in_test not in out, out
    assert at_collection in out, out


def test_the_vectors_are_in_the_repository_and_not_pointers() -> None:
    files = [p for p in VECTORS.rglob("*") if p.is_file()]
    assert len(files) > 200
    for name in ("README.md", "ed25519/README.md", "ed25519/openssl_verdicts.json"):
        assert (VECTORS / name).is_file(), name
    for name in ("ed25519/wycheproof/LICENSE", "ed25519/speccheck/LICENSE"):
        assert "Apache License" in (VECTORS / name).read_text()[:200], name
    pointers = []
    for path in files:
        with path.open("rb") as f:
            head = f.read(64)
        if head.startswith((b"version https://git-lfs", b"/annex/", b"../.git/annex")):
            pointers.append(str(path.relative_to(ROOT)))
    assert pointers == []


def _repository_files() -> list[str]:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    listing = subprocess.run(
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    if listing.returncode != 0:
        pytest.skip("not a git checkout")
    return sorted({os.fsdecode(n) for n in listing.stdout.split(b"\0") if n})


def test_no_file_points_beside_the_checkout() -> None:
    problems: list[str] = []
    for rel in _repository_files():
        if rel == THIS or rel.startswith("tests/vectors/"):
            continue
        path = ROOT / rel
        if path.is_symlink():
            target = os.readlink(path)
            if outside_checkout(os.path.join(path.parent, target), ROOT):
                problems.append(f"{rel}: a link to {target}")
            continue
        if not path.is_file():  # deleted in the working tree
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary
            continue
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if any(p in line for p in POINTERS):
                problems.append(f"{rel}:{number}: {line.strip()[:120]}")
    assert problems == [], "files that point beside the checkout:\n" + "\n".join(problems)
