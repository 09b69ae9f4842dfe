"""A tx index run file (``storage/runfiles.py``): written whole or not at all, every id
found at its location through the fences (ids that share their first 8 bytes across
fenced blocks too), absent ids not found, and damage refused at open or by its digest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from storage import runfiles, txruns
from storage.runfiles import RunFile, RunFileError

E, ID = txruns.ENTRY_BYTES, txruns.ID_BYTES
BITS_LOG2 = 10


def _rows(ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = ids.shape[0]
    locs = rng.integers(0, 256, (n, txruns.LOC_BYTES), dtype=np.uint8)
    return txruns.entries(ids.tobytes(), locs.tobytes())


def _write(directory: Path, rows: np.ndarray, run: int = 7) -> RunFile:
    bits = bytes(range((1 << BITS_LOG2) // 8))  # any bits: a filter is opaque here
    return runfiles.write(directory, run, 1, 3, 9, rows, bits, BITS_LOG2)


@pytest.mark.parametrize("n", [0, 1, 2, 63, 64, 65, 128, 129, 1000])
def test_every_id_is_found_and_no_other(tmp_path: Path, n: int) -> None:
    rng = np.random.default_rng(n)
    rows = _rows(rng.integers(0, 256, (n, ID), dtype=np.uint8), rng)
    rf = _write(tmp_path, rows)
    assert (rf.run, rf.level, rf.first_height, rf.last_height, rf.id_count) == (7, 1, 3, 9, n)
    assert rf.rows().tobytes() == rows.tobytes()
    assert rf.digest_ok()
    again = RunFile.open(tmp_path / runfiles.file_name(7))
    for row in rows:
        assert again.find(row[:ID].tobytes()) == row[ID:].tobytes()
    for other in rng.integers(0, 256, (50, ID), dtype=np.uint8):
        assert again.find(other.tobytes()) is None
    assert [p.name for p in tmp_path.iterdir()] == [runfiles.file_name(7)]  # no .tmp left


def test_ids_sharing_their_first_8_bytes_across_fenced_blocks_are_found(tmp_path: Path) -> None:
    """Ids ground to share a prefix (the fences hold only 8 bytes): 200 of them span
    four fenced blocks, among random ones; each is found, and one more of the same
    prefix, absent, is not."""
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 256, (300, ID), dtype=np.uint8)
    ids[50:250, :8] = ids[50, :8]
    rows = _rows(ids, rng)
    rf = _write(tmp_path, rows)
    for row in rows:
        assert rf.find(row[:ID].tobytes()) == row[ID:].tobytes()
    absent = bytes(ids[50, :8]) + b"\xff" * 23 + b"\x00"
    assert absent not in {r[:ID].tobytes() for r in rows}
    assert rf.find(absent) is None


def test_damage_is_refused_at_open_or_found_by_the_digest(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = _rows(rng.integers(0, 256, (100, ID), dtype=np.uint8), rng)
    path = _write(tmp_path, rows).path
    raw = path.read_bytes()
    for bad, why in [
        (raw[:-1], "bytes, its header says"),
        (b"X" + raw[1:], "not a tx index run file"),
        (b"", "empty"),
    ]:
        path.write_bytes(bad)
        with pytest.raises(RunFileError, match=why):
            RunFile.open(path)
    flipped = bytearray(raw)
    flipped[runfiles.HEADER_BYTES + 3 * E + 5] ^= 1
    path.write_bytes(bytes(flipped))
    assert not RunFile.open(path).digest_ok()
    flipped[-32:] = hashlib.sha256(flipped[:-32]).digest()  # rehashed: whole again
    path.write_bytes(bytes(flipped))
    assert RunFile.open(path).digest_ok()  # (its LMDB record's digest is what differs)
    path.unlink()
    with pytest.raises(RunFileError, match="missing"):
        RunFile.open(path)


def test_a_copy_is_the_same_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    (tmp_path / "a").mkdir()
    rf = _write(tmp_path / "a", _rows(rng.integers(0, 256, (70, ID), dtype=np.uint8), rng))
    runfiles.copy_to(rf, tmp_path / "b")
    assert (tmp_path / "b" / rf.path.name).read_bytes() == rf.path.read_bytes()
