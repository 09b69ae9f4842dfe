"""``verify`` checks every tx index run against its blocks (``IndexChecker``,
``storage.lmdb_store._run_agrees``) and its file against its digest and its ids' filter:
an intact store verifies, and each way of damaging a run's file in place (entries
swapped, an id or a location changed, a filter bit flipped) is reported, at a height
inside the run; a run file that is missing, cut short or not the run its record names
stops the store from opening, with the file named."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from storage import lmdb_store, runfiles, txruns
from storage.blockstore import NotAGrantchainStore
from storage.lmdb_store import LmdbBlockStore
from storage.verify import verify_store
from tests.factories import ChainBuilder

E = txruns.ENTRY_BYTES
ID = txruns.ID_BYTES
H = runfiles.HEADER_BYTES


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(lmdb_store, "INDEX_FLUSH_TXS", 20)
    b = ChainBuilder()
    path = tmp_path / "store"
    with LmdbBlockStore.open(path) as s:
        for _ in range(10):
            s.append(b.block(7))
            if s._round is not None:
                s._round.result(timeout=60)
        assert len(s._runs) >= 2
    return path


def _first_run(path: Path) -> tuple[Path, int, int, int]:
    """(file, id count, first height, last height) of the run covering block 1."""
    with LmdbBlockStore.open(path, readonly=True) as s:
        run, info = min(s._runs.items(), key=lambda item: item[1].first_height)
        name = path / lmdb_store.INDEX_DIR / runfiles.file_name(run)
        return name, info.id_count, info.first_height, info.last_height


def _swap_locations(raw: bytearray, n: int) -> None:
    first, second = raw[H : H + E], raw[H + E : H + 2 * E]
    raw[H + ID : H + E], raw[H + E + ID : H + 2 * E] = second[ID:], first[ID:]


def _swap_entries(raw: bytearray, n: int) -> None:
    """The first two entries swapped whole: every id at its location, out of order."""
    first, second = raw[H : H + E], raw[H + E : H + 2 * E]
    raw[H : H + E], raw[H + E : H + 2 * E] = second, first


def _bump_last_id(raw: bytearray, n: int) -> None:
    """The run's greatest id made greater still: still sorted, no longer a block's."""
    at = H + (n - 1) * E + ID - 1
    raw[at] ^= 1
    if raw[at] & 1 == 0:  # went down: carry into the byte before
        raw[at] |= 1
        raw[at - 1] = (raw[at - 1] + 1) % 256


def _change_result(raw: bytearray, n: int) -> None:
    raw[H + E - 1] ^= 1  # the result code, the location's last field


def _flip_filter_bit(raw: bytearray, n: int) -> None:
    raw[H + n * E + 5] ^= 0x10


def test_an_intact_store_verifies(store_dir: Path) -> None:
    with LmdbBlockStore.open(store_dir, readonly=True) as s:
        report = verify_store(s)
    assert report.ok, report.problem


@pytest.mark.parametrize(
    "change",
    [_swap_locations, _swap_entries, _bump_last_id, _change_result, _flip_filter_bit],
)
def test_a_damaged_run_is_found_within_its_heights(
    store_dir: Path, tmp_path: Path, change: Callable[[bytearray, int], None]
) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(store_dir, damaged)
    path, n, first, last = _first_run(damaged)
    raw = bytearray(path.read_bytes())
    change(raw, n)
    path.write_bytes(bytes(raw))
    with LmdbBlockStore.open(damaged, readonly=True) as s:
        report = verify_store(s)
    assert not report.ok
    assert report.bad_height is not None and first <= report.bad_height <= last, report
    assert report.problem and "tx" in report.problem


@pytest.mark.parametrize("how", ["missing", "cut-short", "another-run", "rehashed"])
def test_a_run_file_that_is_not_its_records_run_is_refused_at_open(
    store_dir: Path, tmp_path: Path, how: str
) -> None:
    """Missing, shorter than its header says, another run's file under its name, or
    changed and given a digest of its own: the record's digest does not match."""
    damaged = tmp_path / "damaged"
    shutil.copytree(store_dir, damaged)
    path, n, _, _ = _first_run(damaged)
    if how == "missing":
        path.unlink()
    elif how == "cut-short":
        path.write_bytes(path.read_bytes()[:-100])
    elif how == "another-run":
        others = sorted(p for p in path.parent.iterdir() if p != path)
        shutil.copyfile(others[0], path)
    else:
        import hashlib

        raw = bytearray(path.read_bytes())
        _change_result(raw, n)
        raw[-32:] = hashlib.sha256(raw[:-32]).digest()
        path.write_bytes(bytes(raw))
    for readonly in (True, False):
        with pytest.raises(NotAGrantchainStore, match=path.name):
            LmdbBlockStore.open(damaged, readonly=readonly)
