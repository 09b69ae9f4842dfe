"""faults.md #2: SIGKILL a real process appending blocks at random moments; after every
reopen, each block whose ``append`` returned is present and the store verifies."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from storage import lmdb_store, runfiles
from storage.lmdb_store import LmdbBlockStore
from storage.verify import verify_store
from tests.conftest import ROOT
from tests.factories import assert_found

KILLS = 24
SMALL_FILTERS = (12, 13, 14)
"""Filter sizes (log2 bits) of the run levels where runs are merged in these tests."""


@pytest.mark.parametrize(
    "index_flush",
    ["", "40", "30,2"],
    ids=["default", "small-index-batches", "runs-merged"],
)
def test_sigkill_while_appending_never_loses_an_acknowledged_block(
    tmp_path: Path, index_flush: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With small tx index runs, kills land while a run's file is written or before a
    block records it, and with merges of 2 runs (level 0 into 1, level 1 into 2), while a
    merged run's file is written, before its record, or before the runs merged away are
    unlinked: the checks below open the store read-only, so the next writer starts from
    there. Small filters stand in for the real ones there (a level-2 run's is 32 MiB),
    in the writer and in this process alike."""
    rng = random.Random(20261125)
    acked: dict[int, str] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CRASH_INDEX_FLUSH": index_flush}
    if index_flush.count(",") == 1:
        monkeypatch.setattr(lmdb_store, "RUN_FILTER_BITS_LOG2", SMALL_FILTERS)
        env["CRASH_FILTER_BITS"] = ",".join(map(str, SMALL_FILTERS))
    for kill in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.storage.crash_writer", str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert proc.stdout is not None
        ready = proc.stdout.readline().split()
        assert ready[0] == "ready", ready
        assert int(ready[1]) >= max(acked, default=0)
        # Kill after a random number of acknowledged appends, sometimes right away.
        for _ in range(rng.randrange(0, 6)):
            line = proc.stdout.readline().split()
            assert line and line[0] == "appended", line
            acked[int(line[1])] = line[2]
        proc.send_signal(signal.SIGKILL)
        for text in proc.stdout:  # acknowledgements already written before the kill count too
            parts = text.split()
            # A line the kill cut short (seen once: "appended" alone) names no hash to
            # check; the blocks before it still count.
            if len(parts) == 3 and parts[0] == "appended":
                acked[int(parts[1])] = parts[2]
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, f"kill {kill}: exit {proc.returncode}"
        with LmdbBlockStore.open(tmp_path, readonly=bool(index_flush)) as store:
            assert store.height >= max(acked, default=0), f"kill {kill}: lost acknowledged blocks"
            for height, head_hash in acked.items():
                header = store.header(height)
                assert header is not None and header.hash.hex() == head_hash
            report = verify_store(store)
            assert report.ok, f"kill {kill}: {report.problem} at {report.bad_height}"
            if store.height:  # the state write is atomic with its block
                assert store.state().get(b"height") == store.height.to_bytes(8, "big")
            assert_found(store, store.iter_blocks(), f"kill {kill}")  # every tx where it is
    assert len(acked) > KILLS
    if index_flush.count(",") == 1:  # merges happened, and were cut short at times
        with LmdbBlockStore.open(tmp_path, readonly=True) as store:
            # Merged runs were merged again too (a level-2 run is never merged away; the
            # level-1 runs may all be in one by now).
            levels = {info.level for info in store._runs.values()}
            assert 2 in levels, levels


def test_sigkill_between_block_commits_and_the_run_they_carry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tx index's ids since its last recorded run are on disk only in their blocks
    (the blocks are the index's log), and a run's file is recorded by a later block. A
    real process killed with a run's file written and not recorded: a read-only open
    finds every tx from the blocks, a writable open deletes the file no record names,
    and nothing acknowledged is lost."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CRASH_INDEX_FLUSH": "40",
        "CRASH_PAUSE_MID_RUN": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.crash_writer", str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split()[0] == "ready"
        acked: dict[int, str] = {}
        for _ in range(200):  # a run starts within a few blocks of 1-37 txs
            parts = proc.stdout.readline().split()
            assert len(parts) == 3 and parts[0] in ("appended", "midrun"), parts
            acked[int(parts[1])] = parts[2]
            if parts[0] == "midrun":
                break
        else:
            raise AssertionError("no append left a run written and not recorded")
        with LmdbBlockStore.open(tmp_path, readonly=True) as store:  # while it waits
            assert _run_files(store) - _recorded(store), "no run file is unrecorded"
    finally:
        proc.kill()
        proc.wait()
    for readonly in (True, False):
        with LmdbBlockStore.open(tmp_path, readonly=readonly) as store:
            assert store.height >= max(acked)
            for height, head_hash in acked.items():
                header = store.header(height)
                assert header is not None and header.hash.hex() == head_hash
            assert_found(store, store.iter_blocks(), readonly)
            report = verify_store(store)
            assert report.ok, report.problem
            if not readonly:  # the unrecorded run's file is gone, its ids in memory
                assert _run_files(store) == _recorded(store)


def _run_files(store: LmdbBlockStore) -> set[str]:
    """The files in the store's index directory."""
    return {f.name for f in (store.path / lmdb_store.INDEX_DIR).iterdir()}


def _recorded(store: LmdbBlockStore) -> set[str]:
    return {runfiles.file_name(run) for run in store._runs}
