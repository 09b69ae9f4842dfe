"""The tx index's runs as files: one immutable file per run, beside ``data.mdb``.

A run (``storage/lmdb_store.py``) is a sorted batch of tx ids, written once. Kept inside
LMDB (schemas 2-5) a run was written twice over: as pages of the B-tree that every block's
synced transaction shares, then, once merged, as plain inserts of the merged run, and the
runs merged away were deleted key by key; each deleted page cost ~2 pages written, LMDB's
free list grew, and a 1M-tx decade with a merge wrote ~400 bytes per tx more than one
without (``benchmarks/RESULTS.md``, Storage). A file is written once, sequentially, by a
thread of its own, and fsynced once, before the block transaction that records it; a run
merged away is unlinked. This is what LSM trees do with their sorted tables.

File ``run-<run as 8 hex digits>`` (``file_name``):

  header   64 bytes: magic ``MAGIC``, run (u32 BE), level (u8), first height, last height,
           id count (u64 BE each), filter size (log2 of its bits, u8), zeros
  entries  id count x (tx id 32 bytes + packed location 22 bytes), ids strictly increasing
  filter   the run's Bloom filter bits (``storage/txfilter.py``), 2**size / 8 bytes
  fences   the first 8 bytes (u64 BE) of every ``FENCE_ENTRIES``-th id: read at open, so
           a lookup finds its block of entries in memory and reads that block alone
  digest   SHA-256 of everything before it (32 bytes), also kept in the run's LMDB record

Written to ``<name>.tmp``, fsynced, renamed, the directory fsynced: a file either is whole
under its name or is not there. Opening reads the header, the filter and the fences and
maps the rest; ``digest_ok`` rereads the whole file (``grantchain verify``).

Pure file IO, numpy and hashlib (what may import this: ``storage``).
"""

from __future__ import annotations

import array
import bisect
import hashlib
import mmap
import os
import struct
from pathlib import Path

import numpy as np

from storage import txruns

MAGIC = b"GCTXRUN\x01"
HEADER_BYTES = 64
_HEADER = struct.Struct(">8sIBQQQB")
FENCE_ENTRIES = 64
"""Entries per fenced block: 3,456 bytes, within one 4 KiB page of the file."""
DIGEST_BYTES = 32
E = txruns.ENTRY_BYTES
ID = txruns.ID_BYTES


class RunFileError(ValueError):
    """A run file that is missing, short, or not what its record says."""


def file_name(run: int) -> str:
    return f"run-{run:08x}"


def _fences_of(rows: np.ndarray) -> bytes:
    picked = np.ascontiguousarray(rows[::FENCE_ENTRIES, :8])
    return picked.tobytes()  # the 8 bytes as stored: u64 big-endian


def write(
    directory: Path,
    run: int,
    level: int,
    first_height: int,
    last_height: int,
    rows: np.ndarray,
    filter_bits: bytes,
    filter_bits_log2: int,
) -> RunFile:
    """Write run ``run`` (its sorted ``(n, 54)`` entry ``rows``) durably and open it."""
    if len(filter_bits) * 8 != 1 << filter_bits_log2:
        raise ValueError(f"a run filter of 2**{filter_bits_log2} bits")
    n = rows.shape[0]
    header = _HEADER.pack(MAGIC, run, level, first_height, last_height, n, filter_bits_log2)
    header += bytes(HEADER_BYTES - len(header))
    body = np.ascontiguousarray(rows, dtype=np.uint8).reshape(-1).data
    fences = _fences_of(rows)
    digest = hashlib.sha256()
    for part in (header, body, filter_bits, fences):
        digest.update(part)
    final = directory / file_name(run)
    tmp = final.with_name(final.name + ".tmp")
    with open(tmp, "wb") as f:
        for part in (header, body, filter_bits, fences, digest.digest()):
            f.write(part)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    sync_directory(directory)
    return RunFile.open(final)


def copy_to(rf: RunFile, directory: Path) -> None:
    """Write run file ``rf`` (open, whether or not still linked) into ``directory`` under
    its own name, durably (a snapshot's copy of the tx index)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / file_name(rf.run)
    tmp = final.with_name(final.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(rf.raw())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    sync_directory(directory)


def sync_directory(directory: Path) -> None:
    """fsync ``directory`` itself, so that a rename or unlink in it is durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RunFile:
    """One run file, open: its header fields, its filter and fences in memory, its
    entries mapped (read by the page when looked up). Never written after ``write``."""

    __slots__ = (
        "_fences",
        "_mm",
        "digest",
        "filter_bits",
        "filter_bits_log2",
        "first_height",
        "id_count",
        "last_height",
        "level",
        "path",
        "run",
    )

    def __init__(self, path: Path, mm: mmap.mmap) -> None:
        self.path = path
        self._mm = mm
        size = len(mm)
        if size < HEADER_BYTES + DIGEST_BYTES:
            raise RunFileError(f"{path}: {size} bytes, shorter than a run file's header")
        magic, run, level, first, last, n, bits_log2 = _HEADER.unpack_from(mm, 0)
        if magic != MAGIC:
            raise RunFileError(f"{path}: not a tx index run file")
        if not 3 <= bits_log2 <= 40:
            raise RunFileError(f"{path}: a filter of 2**{bits_log2} bits")
        fences = -(-n // FENCE_ENTRIES)
        want = HEADER_BYTES + n * E + (1 << bits_log2) // 8 + 8 * fences + DIGEST_BYTES
        if size != want:
            raise RunFileError(f"{path}: {size} bytes, its header says {want}")
        self.run, self.level, self.id_count = run, level, n
        self.first_height, self.last_height = first, last
        self.filter_bits_log2 = bits_log2
        at = HEADER_BYTES + n * E
        self.filter_bits = mm[at : at + (1 << bits_log2) // 8]
        at += (1 << bits_log2) // 8
        # Native unsigned 64-bit words, searched with ``bisect`` (a numpy search costs ~10x
        # more per call than it saves on ~16 steps: the filters' false positives make
        # ~50,000 lookups per 1M txs appended).
        self._fences = array.array("Q")
        self._fences.frombytes(
            np.frombuffer(mm[at : at + 8 * fences], dtype=">u8").astype(np.uint64).tobytes()
        )
        self.digest = mm[size - DIGEST_BYTES :]

    @classmethod
    def open(cls, path: Path) -> RunFile:
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size == 0:
                    raise RunFileError(f"{path}: empty")
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise RunFileError(f"{path}: missing") from None
        except OSError as exc:
            raise RunFileError(f"{path}: cannot be read: {exc}") from None
        return cls(path, mm)

    def rows(self) -> np.ndarray:
        """The ``(n, 54)`` entries, a read-only view of the mapped file."""
        return np.frombuffer(
            self._mm, dtype=np.uint8, count=self.id_count * E, offset=HEADER_BYTES
        ).reshape(-1, E)

    def find(self, tx_id: bytes) -> bytes | None:
        """The packed location of ``tx_id`` in this run, or None. The fences name the block
        of ``FENCE_ENTRIES`` entries that holds it; ids that share their first 8 bytes (a
        collision someone ground for) may span blocks, and every such block is searched."""
        fences = self._fences
        prefix = int.from_bytes(tx_id[:8], "big")
        hi = bisect.bisect_right(fences, prefix)
        lo = bisect.bisect_left(fences, prefix, 0, hi)
        mm, n = self._mm, self.id_count
        for block in range(max(lo - 1, 0), hi):
            # A binary search of the block's entries, 32 bytes read from the map a step
            # (not the whole 3.5 KB block copied first).
            left, right = block * FENCE_ENTRIES, min((block + 1) * FENCE_ENTRIES, n)
            while left < right:
                mid = (left + right) // 2
                at = HEADER_BYTES + mid * E
                if mm[at : at + ID] < tx_id:
                    left = mid + 1
                else:
                    right = mid
            at = HEADER_BYTES + left * E
            if left < n and mm[at : at + ID] == tx_id:
                return mm[at + ID : at + E]
        return None

    def raw(self) -> memoryview:
        """The whole file's bytes (mapped, not copied)."""
        return memoryview(self._mm)

    def digest_ok(self) -> bool:
        """The whole file hashes to its digest (reads every byte)."""
        body = memoryview(self._mm)[: len(self._mm) - DIGEST_BYTES]
        return hashlib.sha256(body).digest() == self.digest
