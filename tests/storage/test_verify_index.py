"""``verify`` checks every tx index run against its blocks (``IndexChecker``,
``storage.lmdb_store._run_agrees``): an intact store verifies, and each way of damaging
a run's stored pages (entries swapped, an id or a location changed, a page dropped, the
same entries paged differently) is reported, at a height inside the run."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import lmdb
import pytest

from storage import lmdb_store, txruns
from storage.lmdb_store import LmdbBlockStore
from storage.verify import verify_store
from tests.factories import ChainBuilder

Pages = list[tuple[bytes, bytes]]
E = txruns.ENTRY_BYTES


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(lmdb_store, "INDEX_FLUSH_TXS", 20)
    monkeypatch.setattr(lmdb_store, "INDEX_FLUSH_CHUNKS", 2)
    monkeypatch.setattr(txruns, "PAGE_ENTRIES", 4)
    b = ChainBuilder()
    path = tmp_path / "store"
    with LmdbBlockStore.open(path) as s:
        for _ in range(10):
            s.append(b.block(7))
        assert len(s._runs) >= 2
    return path


def _first_run(path: Path) -> tuple[int, int, int]:
    """(run, first height, last height) of the run covering block 1."""
    with LmdbBlockStore.open(path, readonly=True) as s:
        run, info = min(s._runs.items(), key=lambda item: item[1].first_height)
        return run, info.first_height, info.last_height


def _rewrite_run(path: Path, run: int, change: Callable[[Pages], Pages]) -> None:
    """Replace run ``run``'s pages by ``change(pages)``, straight through LMDB."""
    env = lmdb.open(str(path), max_dbs=len(lmdb_store.DB_NAMES) + 1)
    try:
        db = env.open_db(b"txindex")
        prefix = run.to_bytes(txruns.RUN_BYTES, "big")
        with env.begin(write=True, db=db) as txn:
            pages = [(k, v) for k, v in txn.cursor() if k[: txruns.RUN_BYTES] == prefix]
            for k, _ in pages:
                txn.delete(k)
            for k, v in change(pages):
                txn.put(k, v)
    finally:
        env.close()


def _swap_locations(pages: Pages) -> Pages:
    k, v = pages[0]
    first, second = v[:E], v[E : 2 * E]
    a = first[: txruns.ID_BYTES] + second[txruns.ID_BYTES :]
    b = second[: txruns.ID_BYTES] + first[txruns.ID_BYTES :]
    return [(k, a + b + v[2 * E :]), *pages[1:]]


def _bump_last_id(pages: Pages) -> Pages:
    """The run's greatest id made greater still: still sorted, no longer a block's."""
    k, v = pages[-1]
    last = v[-E:]
    bumped = last[: txruns.ID_BYTES - 1] + bytes([last[txruns.ID_BYTES - 1] ^ 1])
    if bumped < last[: txruns.ID_BYTES]:
        bumped = last[: txruns.ID_BYTES - 2] + bytes([(last[txruns.ID_BYTES - 2] + 1) % 256, 0])
    v = v[:-E] + bumped + last[txruns.ID_BYTES :]
    return [*pages[:-1], (k[: txruns.RUN_BYTES] + v[: txruns.ID_BYTES], v)]


def _change_result(pages: Pages) -> Pages:
    k, v = pages[0]
    entry = bytearray(v[:E])
    entry[-1] ^= 1  # the result code, the location's last field
    return [(k, bytes(entry) + v[E:]), *pages[1:]]


def _drop_last_page(pages: Pages) -> Pages:
    return pages[:-1]


def _repage(pages: Pages) -> Pages:
    """The same entries, three a page instead of four."""
    raw = b"".join(v for _, v in pages)
    run = pages[0][0][: txruns.RUN_BYTES]
    step = 3 * E
    return [
        (run + raw[i : i + txruns.ID_BYTES], raw[i : i + step]) for i in range(0, len(raw), step)
    ]


def test_an_intact_store_verifies(store_dir: Path) -> None:
    with LmdbBlockStore.open(store_dir, readonly=True) as s:
        report = verify_store(s)
    assert report.ok, report.problem


@pytest.mark.parametrize(
    "change", [_swap_locations, _bump_last_id, _change_result, _drop_last_page, _repage]
)
def test_a_damaged_run_is_found_within_its_heights(
    store_dir: Path, tmp_path: Path, change: Callable[[Pages], Pages]
) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(store_dir, damaged)
    run, first, last = _first_run(damaged)
    _rewrite_run(damaged, run, change)
    with LmdbBlockStore.open(damaged, readonly=True) as s:
        report = verify_store(s)
    assert not report.ok
    assert report.bad_height is not None and first <= report.bad_height <= last, report
    assert report.problem and "tx" in report.problem
