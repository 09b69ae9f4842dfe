"""The LMDB ``BlockStore``: one environment per node, one write transaction per block.

Rules (docs/architecture.md §5, ``docs/faults.md`` #7 and #11): ``sync`` and ``metasync``
on and never ``writemap`` (with it a full disk is SIGBUS); every write transaction runs
inside one synchronous function on one dedicated writer thread; the map grows before it
is full (under an exclusive lock, since no transaction may be open during a resize); a
schema version is stored and checked at open; stale reader slots are cleared at open.

Named databases:
  meta      b"schema", b"anchor", b"height", b"log_size", b"indexed_height", b"txruns",
            b"txrun/" + run (4 bytes BE) -> the heights it covers, its id count and level
            (``RunInfo``), then its file's digest
  headers   height (8 bytes BE)            -> header bytes
  bodies    height                         -> [log_start, results]
  hashes    header hash                    -> height
  txs       log index of a value's first tx -> whole consecutive txs of one block, up
            (8 bytes BE)                     to a page a value (schema 5): n (u32 BE), the
                                            end of each tx in the value (n u32 BE), then
                                            the txs end to end; none for a block with no txs
  nodes     log end of a block (8 bytes)   -> its log start, then the perfect-subtree
                                            hashes (level >= 1) it completed
  state     ACL state keys                 -> values
  certs     height                         -> [[node_id, header signature], ...]
  clog      consensus log index (8 bytes)  -> entry bytes (opaque; the node encodes them)
  leaves    log index                      -> the leaf hash (tx id) of a pruned tx
  meta also holds b"pruned_height": blocks up to it keep their txs' ids, not their bytes.
  meta also holds b"genesis" (the chain this directory belongs to), b"consensus/hard" and
  b"consensus/snapshot" (opaque bytes for the consensus core).
Beside ``data.mdb``, ``index/run-<run>``: the tx index's runs, a file each
(``storage/runfiles.py``: sorted (tx id, packed TxLocation) entries, filter, fences).
Log nodes are stored a block at a time (schema 3; one key per node before), keyed by the
end of the block's log range, so they go in with LMDB's fast append, one put per block,
and a node is found with one ``set_range`` on its subtree's end and a computed offset.
A block's txs are packed too (schema 5; one key per tx before): whole txs to a value of at
most one page (``TXS_CHUNK_BYTES``), keyed by the log index of its first tx: ~63 puts a
block of 1,000 txs where 1,000 keys were a ``putmulti`` of 1,000 items (the writer
thread's largest share of an append after the commit, 0.7 of its 1.8 s per 1M txs), and
~63 items built on the caller's thread instead of 1,000 (key, tx) tuples. One value a
whole block (~250 KB) was tried first: faster still at 1M txs, but see
``TXS_CHUNK_BYTES`` for what it did at 10M. A tx is read with one ``set_range`` (and a
``prev``) on its log index, then its end and the one before it in that value. Reads on
the proof and receipt paths use a zero-copy read transaction (``buffers=True``: the
value is not copied, only the tx).
Only nodes of level ``NODES_MIN_LEVEL`` (5) and up are stored (schema 4): a lower one is
the root of at most 16 leaves, hashed again from the txs when a proof needs it (~30 us
more per proof). All levels took 32 KB a block, stored in LMDB overflow pages that
its free list could not reuse: 116 of the 636 bytes written per tx.

The tx index is the one table keyed by random hashes. Kept as one B-tree keyed by id
(schema 1), each batch of ids dirtied pages all over it: at 1M txs a block's share of
the index wrote ~1 MB (four times the txs themselves), growing with the chain, and a
duplicate check was a random B-tree lookup per id. Schema 2 writes it as **runs**, after
LSM trees: every ``INDEX_FLUSH_TXS`` ids are sorted into the next run, written once,
sequentially, whatever the size of the index; a Bloom filter per run
(``storage/txfilter.py``, stored in the run's file and loaded at open) says which runs
may hold an id, so a lookup reads one run, almost never two. A lookup tests every run's
filter at once (one AND of bit-sliced rows); memory is 2 bytes per indexed tx, and a
false positive costs an extra read per ~400 runs, so runs are **merged**: ``MERGE_RUNS``
level-0 runs into one level-1 run of ~1M ids with a 16x larger filter, and ``MERGE_RUNS``
level-1 runs into one level-2 run of ~16.8M ids (``_start_merge``, ``_merge_step``), so
the runs a new id may falsely hit stay few as the chain grows: at 100M txs, 5 level-2
runs and at most 15 of each lower level (~0.05 needless run reads per new id) rather
than ~95 level-1 runs (~0.23); at 1B, 59 level-2 runs (~0.18) rather than ~950 (~2.3).
Level-2 runs are not merged further: a level-3 run's filter would be 512 MiB.
Readers find an id in the merged run or its source, never neither: the merged run's
filter goes in before the sources' go out, and their files are unlinked only after.

Schema 6 keeps each run in **a file of its own** (``storage/runfiles.py``), not in LMDB.
As pages of a ``txindex`` table (schemas 2-5) a merged run was written a second time as
B-tree inserts inside the blocks' synced transactions and the runs merged away were
deleted key by key (each deleted page cost ~2 pages written, through LMDB's free list):
from the first merge on, every 1M txs wrote ~400 bytes per tx more (567 -> ~990), and the
10M decade appended at 0.78x the first. A file is written once, sequentially, on a thread
of its own (a level-0 run on the index thread, a merged one on the merge thread), fsynced
and renamed, and only then recorded by a block's transaction (``meta/txrun/``, with the
file's digest); a run merged away is unlinked. Bytes written per tx: 498 in the first 1M,
~590 from then on, flat. Considered: RocksDB (``rocksdict``) is an LSM with the same idea
and background compaction, but a second storage engine, with its own WAL and fsync
policy, next to the LMDB transaction that commits a block (the run files need no log: the
blocks are theirs); a separate LMDB environment still rewrites pages through its free
list.

Ids since the last recorded run live in memory (``_pending``, then ``_round_ids`` while
their run's file is written) and are rebuilt from the blocks themselves at open
(``meta/indexed_height``): nothing acknowledged depends on the index, the blocks are
durable on every append. A run's file written before a crash or a close and recorded by
no block is deleted at the next writable open, its ids rebuilt from the blocks; a failed
write fails the append that would record it, and every one after, until a reopen.
Duplicate txs are refused by the append's own lookup: the runs on disk are looked up by
``submit_append`` on the caller's thread (the run filters' candidates in one GIL-free
kernel, then the candidate runs' files), under the disk generation it read first
(``_disk_gen``); the writer takes that answer if no run became visible or was merged
since, else looks again itself; the ids in memory (``_pending``, ``_round_ids``, behind
``IdKeys``) it checks itself, exactly and current.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import lmdb
import msgpack
import numpy as np

from chain import codec, merkle
from chain.block import Block, BlockError, BlockHeader
from chain.hashing import leaf_hash, leaf_hashes
from chain.kernels import backend
from chain.merkle import Frontier
from storage import runfiles, txruns
from storage.appendcheck import check_and_extend_levels
from storage.blockstore import (
    DuplicateTxError,
    NotAGrantchainStore,
    OtherSchemaStore,
    StateWrite,
    StoreError,
    TxLocation,
    TxPrunedError,
)
from storage.memids import MemIds
from storage.rwlock import RWLock
from storage.txfilter import TxFilter

SCHEMA_VERSION = 6
"""2: the tx index is keyed by run number and id, with a filter per run (was: by id).
3: the log nodes a block completed are one value per block (was: one key per node).
4: a run's entries are packed into pages (``storage/txruns.py``), and each run has a
record of the heights it covers (``meta/txrun/``).
5: a block's txs are packed whole into values of up to a page, keyed by the log index of
each value's first tx (was: one key per tx).
6: the tx index's runs are files of their own (``storage/runfiles.py``), recorded in
``meta/txrun/`` with their digest (was: pages of a ``txindex`` table, and each run's
filter in ``meta/txfilter/``).
A store of an older schema does not open (``NotAGrantchainStore`` names both versions):
it is re-synced from a snapshot or from peers, as after each earlier bump."""
SCHEMA_TAG = b"grantchain-store/%d" % SCHEMA_VERSION
MAP_SIZE_INITIAL_BYTES = 64 * 1024 * 1024
INDEX_DIR = "index"
"""The directory of the tx index's run files, beside ``data.mdb``."""
INDEX_FLUSH_TXS = 65_536
"""Ids in memory that make the next level-0 run, sorted and written to its file on the
index thread while the blocks go on (its ids stay findable in memory until recorded)."""
MERGE_RUNS = 16
"""Runs of one level merged into one run of the next (level 1: 1,048,576 ids; level 2:
16,777,216), so a lookup tests and a new id may falsely hit ~16x fewer runs per level:
at 100M txs, at most ~35 runs rather than ~1,500 (or ~110 with one merge level)."""
READONLY_OPEN_TRIES = 5
"""Times a read-only open reads the run records again when a file they name is gone (a
live writer's merge unlinked it between the records' read and the file's open)."""
MAP_HEADROOM_FRACTION = 0.5
STATE_WRITE_BYTES_GUESS = 256
"""Key, value and page overhead of a typical ACL state write, for the map-room check."""
"""Grow when less than this fraction of the map would be free after the next write."""
DB_NAMES = (
    "meta",
    "headers",
    "bodies",
    "hashes",
    "txs",
    "nodes",
    "state",
    "certs",
    "clog",
    "leaves",
)
_LOC = struct.Struct(">QIQH")
_LOC_DTYPE = np.dtype([("height", ">u8"), ("pos", ">u4"), ("log_index", ">u8"), ("result", ">u2")])
"""``_LOC`` for a whole block at once (the same 22 bytes per tx, no padding)."""
assert _LOC_DTYPE.itemsize == _LOC.size
APPEND_PHASES = ("check", "index", "write", "commit")
"""Where the writer thread spends an append (``LmdbBlockStore.append_phases_s``)."""


def _locations_raw(height: int, log_start: int, results: Sequence[int] | np.ndarray) -> bytes:
    """The packed ``TxLocation`` of every tx of a block, in block order, end to end
    (``results`` as a numpy array of the codes, where the caller has one: a tuple of
    1,000 ints converts in ~30 us, the whole block's locations then in ~11)."""
    n = len(results)
    rows = np.empty(n, dtype=_LOC_DTYPE)
    rows["height"] = height
    rows["pos"] = np.arange(n, dtype=np.uint32)
    rows["log_index"] = np.arange(log_start, log_start + n, dtype=np.uint64)
    rows["result"] = np.asarray(results, dtype=np.uint16) if n else 0
    return rows.tobytes()


@functools.lru_cache(maxsize=64)
def _splitter(size: int, count: int) -> struct.Struct:
    return struct.Struct(f"{size}s" * count)


def _split_locs(raw: bytes) -> Sequence[bytes]:
    """A block's packed ``TxLocation`` values, one per tx."""
    return _split(raw, _LOC.size)


def _split(raw: bytes, size: int) -> Sequence[bytes]:
    """``raw`` cut into ``size``-byte pieces: one ``struct`` unpack for a block's worth
    (several times faster than slicing in a comprehension)."""
    count = len(raw) // size
    if count > 4096:  # a format string per count would be large: slice past this
        return [raw[i : i + size] for i in range(0, len(raw), size)]
    return _splitter(size, count).unpack(raw) if count else ()


_TXS_COUNT = struct.Struct(">I")


TXS_CHUNK_BYTES = 4080
"""A ``txs`` value holds whole txs up to this many bytes (its count and ends included):
one LMDB overflow page (4,096 less its 16-byte header), so every value is one page and
LMDB allocates it from its free list like any other page. A value of a whole block
(~250 KB, 62 pages) needs 62 *contiguous* free pages: LMDB then read its whole free list
looking for them at every block, and wrote it back at every commit; with the pages the
tx index's merges free one at a time, bytes written per tx rose from 610 to 2,429 over
10M txs. A tx larger than a page is a value of its own (several pages, rare)."""


def _txs_items(txs: Sequence[bytes], log_start: int, arrays: Any = None) -> list[tuple[bytes, Any]]:
    """``_txs_items_py``'s items, the values packed by one kernel call that frees the GIL
    where the backend has it (``Backend.pack_txs``: ~0.6 ms of Python a block of 1,000
    txs on the caller's thread, where the append waits for the GIL), from the txs end to
    end and their lengths as ``arrays`` (``Block.body_arrays``) has them, if given."""
    pack = backend.active().pack_txs
    room = TXS_CHUNK_BYTES - 4
    if pack is None:
        packed = None
    elif arrays is not None:
        packed = pack(txs, room, arrays.txs, arrays.lengths)
    else:
        packed = pack(txs, room)
    if packed is None:
        return _txs_items_py(txs, log_start)
    raw, firsts, sizes = packed
    return _sliced_items(raw, firsts, sizes, log_start)


def _txs_items_py(txs: Sequence[bytes], log_start: int) -> list[tuple[bytes, Any]]:
    """The ``txs`` items of a block's txs (at least one): whole txs packed in order into
    values of at most ``TXS_CHUNK_BYTES``, each keyed by the log index of its first tx and
    laid out as n (u32 BE), the end of each tx counted from the value's start (n u32
    BE), then the txs end to end. Built as one buffer (one join), the values slices of
    it: a few Python steps a value, not a value built a tx at a time."""
    n = len(txs)
    lens = np.fromiter(map(len, txs), dtype=np.int64, count=n)
    ends = (lens + 4).cumsum()
    room = TXS_CHUNK_BYTES - 4  # less the value's count
    bounds = [0]
    while bounds[-1] < n:  # greedy: as many txs as fit, at least one
        first = bounds[-1]
        base = int(ends[first - 1]) if first else 0
        bounds.append(max(first + 1, int(np.searchsorted(ends, base + room, side="right"))))
    starts = np.asarray(bounds[:-1], dtype=np.int64)
    counts = np.asarray([b - a for a, b in itertools.pairwise(bounds)], dtype=np.int64)
    cum = lens.cumsum()
    before = np.where(starts > 0, cum[starts - 1], 0)  # tx bytes before each value's first
    value_ends = 4 + 4 * np.repeat(counts, counts) + cum - np.repeat(before, counts)
    if int(value_ends.max()) >= 1 << 32:
        raise StoreError("a tx of 4 GiB or more: more than a txs value holds")
    ends_raw = value_ends.astype(">u4").tobytes()
    pieces: list[bytes] = []
    sizes: list[int] = []
    for first, last in itertools.pairwise(bounds):
        head = _TXS_COUNT.pack(last - first) + ends_raw[4 * first : 4 * last]
        pieces.append(head)
        pieces.extend(txs[first:last])
        sizes.append(len(head) + int(cum[last - 1] - (cum[first - 1] if first else 0)))
    return _sliced_items(b"".join(pieces), bounds[:-1], sizes, log_start)


def _sliced_items(
    raw: bytes, firsts: Sequence[int], sizes: Sequence[int], log_start: int
) -> list[tuple[bytes, Any]]:
    """The ``txs`` items of values laid end to end in ``raw``: each keyed by the log index
    of its first tx, its value a slice of ``raw`` (not copied)."""
    joined = memoryview(raw)
    items: list[tuple[bytes, Any]] = []
    at = 0
    for first, size in zip(firsts, sizes, strict=True):
        items.append((_u64(log_start + first), joined[at : at + size]))
        at += size
    return items


def _packed_txs(
    cur: Any, log_start: int, n: int, unpack: Callable[[Sequence[Any], int], Any]
) -> tuple[bytes, Any] | None:
    """``txpack.unpack`` of the ``n`` (>= 1) txs from log index ``log_start`` on, read with
    ``cur`` (a ``txs`` cursor of a zero-copy read transaction), or None where a value is
    missing, out of place or damaged (``_block_txs`` then says which)."""
    values: list[Any] = []
    got = 0
    found = cur.set_key(_u64(log_start))
    while found and got < n:
        if cur.key() != _u64(log_start + got):
            return None
        value = cur.value()
        count = _TXS_COUNT.unpack_from(value)[0] if len(value) >= 4 else 0
        if not count:
            return None
        values.append(value)
        got += count
        found = cur.next()
    if got != n:
        return None
    packed: tuple[bytes, Any] | None = unpack(values, n)
    return packed


class _DamagedTxs(ValueError):
    """A ``txs`` value that does not hold what its block says (the caller names the
    block in the ``StoreError`` it raises)."""


def _txs_count(value: Any) -> int:
    """The tx count of a ``txs`` value, once its frame is checked: room for its ends, and
    the last tx's end is the value's end (a value cut short or grown says so here)."""
    size = len(value)
    n = _TXS_COUNT.unpack_from(value)[0] if size >= 4 else 0
    if not n or size < 4 + 4 * n or _TXS_COUNT.unpack_from(value, 4 * n)[0] != size:
        raise _DamagedTxs(f"its txs value is damaged ({size} bytes, says {n} txs)")
    return int(n)


@functools.lru_cache(maxsize=64)
def _ends(count: int) -> struct.Struct:
    return struct.Struct(f">{count}I")


def _txs_in(value: Any, lo: int, hi: int) -> list[bytes]:
    """Txs ``[lo, hi)`` of a ``txs`` value (bytes or a zero-copy buffer), copied out
    alone (``lo < hi``), each checked to lie in the value after the one before."""
    n = _txs_count(value)
    if hi > n:
        raise _DamagedTxs(f"its txs value holds {n} txs, no tx {hi - 1}")
    head = 4 + 4 * n
    if lo:
        bounds = _ends(hi - lo + 1).unpack_from(value, 4 * lo)
    else:
        bounds = (head, *_ends(hi).unpack_from(value, 4))
    if bounds[0] < head or any(a > b for a, b in itertools.pairwise(bounds)):
        raise _DamagedTxs("its txs value is damaged (tx ends out of order)")
    return [bytes(value[a:b]) for a, b in itertools.pairwise(bounds)]


def _txs_of(value: Any, most: int) -> list[bytes]:
    """Every tx of a ``txs`` value (at most ``most``: the txs its block has left), each
    checked to lie in the value, in order."""
    if (n := _txs_count(value)) > most:
        raise _DamagedTxs(f"its txs value holds {n} txs, more than the {most} left")
    ends = np.frombuffer(value, dtype=">u4", count=n, offset=4).astype(np.int64)
    if ends[0] < 4 + 4 * n or (n > 1 and bool((ends[1:] < ends[:-1]).any())):
        raise _DamagedTxs("its txs value is damaged (tx ends out of order)")
    bounds = ends.tolist()
    return [bytes(value[a:b]) for a, b in zip([4 + 4 * n, *bounds[:-1]], bounds, strict=True)]


def _run_entries(ids: bytes, locations: bytes) -> np.ndarray:
    """``txruns.entries``, in one call that frees the GIL where the kernel backend has it
    (``Backend.sorted_run``), so the next block's assembly goes on while a run is sorted."""
    sort = backend.active().sorted_run
    return sort(ids, locations, _LOC.size) if sort is not None else txruns.entries(ids, locations)


def _merged_entries(parts: Sequence[np.ndarray]) -> np.ndarray:
    """``txruns.merge``, without the GIL where the backend can (``Backend.sorted_rows``)."""
    sort = backend.active().sorted_rows
    return sort(np.concatenate(parts)) if sort is not None and parts else txruns.merge(parts)


def _id_keys() -> Any:
    """The backend's in-memory ids' check for a new block (``Backend.id_keys``), or None
    (the dicts are probed)."""
    make = backend.active().id_keys
    return make() if make is not None else None


def _run_filter(ids: bytes, bits_log2: int) -> bytes:
    """``TxFilter.bits_of_joined``, without the GIL where the backend can."""
    bits = backend.active().run_filter_bits
    return bits(ids, bits_log2) if bits is not None else TxFilter.bits_of_joined(ids, bits_log2)


def _rows_filter(rows: np.ndarray, bits_log2: int) -> bytes:
    """The filter of a run's sorted entry ``rows`` (of their ids)."""
    return _run_filter(np.ascontiguousarray(rows[:, : txruns.ID_BYTES]).tobytes(), bits_log2)


class _Prepared(NamedTuple):
    """What an append writes that follows from the block and its log start alone:
    built by ``submit_append`` on the caller's thread (``_prepare``) while the writer
    commits the block before, so that the writer's own turn is shorter."""

    log_start: int
    joined: bytes
    """The tx ids end to end."""
    raw_locs: bytes
    txs_items: list[tuple[bytes, Any]]
    """The block's ``txs`` items (``_txs_items``); none for a block with no txs."""
    body: bytes
    estimate: int
    """Bytes the map must have room for (twice the txs, their index and overheads)."""
    on_disk: tuple[int, list[tuple[bytes, bytes]]] | None = None
    """(``_disk_gen`` when looked up, what ``_stored`` found of the ids in the runs on
    disk then), looked up by ``submit_append`` in a read transaction of its own; the
    writer uses it if no run has become visible or been merged since (the generation is
    the same), or looks again itself. None: not looked up."""


def _prepare(block: Block, ids: Sequence[bytes], log_start: int) -> _Prepared:
    h, n = block.header, len(block.txs)
    arrays = block.body_arrays()  # the txs joined and the results as an array, if made
    raw_locs = _locations_raw(
        h.height, log_start, block.results if arrays is None else arrays.codes
    )
    items = _txs_items(block.txs, log_start, arrays) if n else []
    return _Prepared(
        log_start,
        b"".join(ids),
        raw_locs,
        items,
        # Canonical by construction (an int and a list of small ints): no need to normalize.
        msgpack.packb([log_start, list(block.results)], use_bin_type=True),
        2 * (sum(len(v) for _, v in items) + 200 * n + 4096),
    )


class RunInfo(NamedTuple):
    """What ``meta/txrun/<run>`` says of a run of the tx index."""

    first_height: int
    last_height: int
    """The run holds the ids of every block in [first_height, last_height], no other."""
    id_count: int
    level: int
    """0: written from the blocks; ``L`` >= 1: merged from ``MERGE_RUNS`` runs of level
    ``L - 1`` (at most ``len(RUN_FILTER_BITS_LOG2) - 1``)."""

    def to_bytes(self) -> bytes:
        return _RUN_INFO.pack(*self)

    @classmethod
    def from_bytes(cls, raw: bytes) -> RunInfo:
        return cls(*_RUN_INFO.unpack(raw))


_RUN_INFO = struct.Struct(">QQQB")


def _run_record(rf: runfiles.RunFile) -> bytes:
    """``meta/txrun/<run>``: the run's ``RunInfo``, then its file's digest."""
    return _info_of(rf).to_bytes() + bytes(rf.digest)


def _info_of(rf: runfiles.RunFile) -> RunInfo:
    return RunInfo(rf.first_height, rf.last_height, rf.id_count, rf.level)


RUN_FILTER_BITS_LOG2: tuple[int, ...] = (21, 24, 28)
"""The filter size of a run of each level: 32 bits per id at 65,536 ids (a false positive
~0.02% a run, not the ~0.24% of 16 bits: with up to 15 level-0 runs, a new block's
duplicate check made ~30 needless run reads a block, ~0.15 s of the caller's GIL per 1M
txs appended; 16 MiB of filter table for those runs), 16 bits per id at 1,048,576 (the
level-1 runs) and at 16,777,216 (level 2, the top level, whose runs the table gains as
the chain grows: it stays at 2 bytes per indexed tx, 256 MiB per 8 level-2 runs, held
only once a level-2 run exists: an untouched table is zeroed pages never mapped in)."""
RUN_FILTER_WORD_BITS: tuple[int, ...] = (64, 8, 8)
"""Runs per word of each level's filter table (``TxFilter``)."""


def _index_agrees(
    height: int,
    tx_ids: Sequence[bytes],
    in_memory: list[bytes | None],
    stored: list[tuple[bytes, bytes]],
    wanted_stored: int,
) -> bool:
    """True if every id of block ``height`` is indexed at its own position: ``in_memory``
    has the locations found in memory (None: look on disk), ``stored`` the (id, location)
    pairs found on disk, in key order, for the ``wanted_stored`` others. False means
    "look closer" (the caller names the first wrong id), never a wrong True."""
    if len(stored) != wanted_stored:
        return False
    n = len(tx_ids)
    mem = [(p, raw) for p, raw in enumerate(in_memory) if raw is not None]
    raw_all = b"".join([raw for _, raw in mem] + [v for _, v in stored])
    if len(raw_all) != _LOC.size * (len(mem) + len(stored)):
        return False
    rows = np.frombuffer(raw_all, dtype=_LOC_DTYPE)
    if not (rows["height"] == height).all():
        return False
    positions = rows["pos"].tolist()
    if len(positions) != n or len(set(positions)) != n:  # each position exactly once
        return False
    if positions[: len(mem)] != [p for p, _ in mem]:
        return False
    at = positions[len(mem) :]
    if any(p >= n for p in at):
        return False
    return [tx_ids[p] for p in at] == [k for k, _ in stored]


def _nodes_value(
    log_start: int, log_end: int, levels: Sequence[tuple[int, int, Sequence[bytes]]]
) -> bytes:
    """A block's ``nodes`` value: ``log_start`` (8 bytes), then the log nodes the block
    completed, level by level from level 1, each level's in index order. At level L they
    are the nodes ``[log_start >> L, log_end >> L)`` (those whose subtree ends in the
    block), which ``_node_in`` relies on: checked here, before anything is written."""
    parts = [_u64(log_start)]
    for level, start, hashes in levels:
        if level < NODES_MIN_LEVEL:
            continue
        if start != log_start >> level or len(hashes) != (log_end >> level) - start:
            raise StoreError(f"log nodes of level {level} do not cover the block's leaves")
        parts.extend(hashes)
    return b"".join(parts)


def _node_in(value: bytes, key: bytes, level: int, index: int) -> bytes | None:
    """Node ``(level, index)`` from the ``nodes`` value of the block whose log range
    ``[start, end)`` holds the node's last leaf (``key`` = end), or None."""
    start, end = int.from_bytes(value[:8], "big"), int.from_bytes(key, "big")
    if level < NODES_MIN_LEVEL or not start < (index + 1) << level <= end:
        return None
    offset = sum((end >> lv) - (start >> lv) for lv in range(NODES_MIN_LEVEL, level))
    offset += index - (start >> level)
    at = 8 + 32 * offset
    node = bytes(value[at : at + 32])  # a copy: ``value`` may be a zero-copy buffer
    return node if len(node) == 32 else None


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


NODES_MIN_LEVEL = 5
"""Log nodes below this level are not stored: hashed from their (at most 16) leaves."""
_LEAF_GROUP = 1 << (NODES_MIN_LEVEL - 1)
"""Leaves read at once for a proof's nodes below ``NODES_MIN_LEVEL`` (aligned groups)."""
_RUN_KEY = b"txrun/"
_TX_ID_BYTES = 32


class LmdbStateView:
    def __init__(self, store: LmdbBlockStore) -> None:
        self._store = store

    def get(self, key: bytes) -> bytes | None:
        with self._store._read() as txn:
            value: bytes | None = txn.get(key, db=self._store._dbs["state"])
            return value

    def range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        # Materialized per call: a generator may not hold an LMDB read transaction open.
        with self._store._read() as txn:
            cur = txn.cursor(db=self._store._dbs["state"])
            out = []
            if cur.set_range(start):
                for key, value in cur:
                    if end is not None and key >= end:
                        break
                    out.append((key, value))
        return iter(out)


class LmdbSnapshot:
    """A consistent read view of the state and the tx index, in one read transaction:
    far cheaper than a transaction per lookup when a block's execution or an admission
    batch makes thousands. Close it (``with``) before the same thread appends: a grow of
    the map waits for open views."""

    def __init__(self, store: LmdbBlockStore) -> None:
        self._store = store
        self._index_gen = store._index_gen  # before the transaction begins
        self._ctx = store._read()
        self._txn = self._ctx.__enter__()
        self._state = store._dbs["state"]

    def __enter__(self) -> LmdbSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._txn is not None:
            self._txn = None
            self._ctx.__exit__(None, None, None)

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._txn.get(key, db=self._state)
        return value

    def range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Lazy: items are read as they are consumed, while the snapshot is open."""
        cur = self._txn.cursor(db=self._state)
        if not cur.set_range(start):
            return
        for key, value in cur:
            if end is not None and key >= end:
                return
            yield key, value

    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        store = self._store
        raw = store._index_get(self._txn, tx_id)
        if raw is None and store._index_gen != self._index_gen:
            # The index moved ids since this view began (a run or a merge completed): a
            # tx committed before it may now be where this older view cannot see it.
            return store.tx_location(tx_id)
        return None if raw is None else TxLocation(*_LOC.unpack(raw))


class LmdbBlockStore:
    def __init__(
        self, path: Path, env: lmdb.Environment, dbs: dict[str, Any], *, readonly: bool = False
    ) -> None:
        self.path = path
        self._readonly = readonly
        self._env = env
        self._dbs = dbs
        self._lock = RWLock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmdb-writer")
        self._head: BlockHeader | None = None
        self._height = 0
        self._anchor: bytes | None = None
        with self._read() as txn:
            meta = dbs["meta"]
            self._height = int.from_bytes(txn.get(b"height", b"\0" * 8, db=meta), "big")
            log_size = int.from_bytes(txn.get(b"log_size", b"\0" * 8, db=meta), "big")
            self._anchor = txn.get(b"anchor", db=meta)
            if self._height:
                raw = txn.get(_u64(self._height), db=dbs["headers"])
                if raw is None:
                    raise NotAGrantchainStore(f"{path}: head header {self._height} is missing")
                self._head = _header(raw, self._height)
        self._frontier = Frontier.load(self._get_node, log_size)
        self._pending = MemIds(_split_locs)
        self._filters = [
            TxFilter(bits, word)
            for bits, word in zip(RUN_FILTER_BITS_LOG2, RUN_FILTER_WORD_BITS, strict=True)
        ]
        """One filter table per run level (their filters differ in size)."""
        self._files: dict[int, runfiles.RunFile] = {}
        """Every complete run's file, open (``storage/runfiles.py``); replaced, never
        changed in place, so a reader iterating it meets one version."""
        self._index_dir = path / INDEX_DIR
        if not readonly:
            self._index_dir.mkdir(exist_ok=True)
        raw_indexed = self._load_runs(readonly)
        self._indexed_height = int.from_bytes(raw_indexed, "big") if raw_indexed else 0
        pending = MemIds(_split_locs)
        try:
            for h, ids, results in self.iter_block_ids(self._indexed_height + 1):
                raw_locs = _locations_raw(h.height, h.log_size - h.tx_count, results)
                pending.add(b"".join(ids), raw_locs)
        except StoreError:
            if not readonly:
                raise
            # A damaged block past the last run: a read-only open (``grantchain verify``)
            # goes on with the ids before it, and the verifier names the damage and its
            # height when it reaches that block.
        self._pending = pending
        """Ids in no complete run and not in the run being written, with their packed
        locations; its ``parts`` are what the next run is sorted from."""
        self._id_keys = None if readonly else _id_keys()
        """The first 8 bytes of every id in ``_pending`` and ``_round_ids`` (a superset:
        the round's stay until the round is whole), so that a new block's ids are checked
        against memory in a kernel that frees the GIL; a probe of the dicts only when
        it says "maybe" (a duplicate, or 8 bytes in common)."""
        if self._id_keys is not None:
            self._id_keys.reset(b"".join([i for i, _ in pending.parts]))
        self._round: Future[runfiles.RunFile] | None = None
        """The run being written to its file on the index thread (``_write``)."""
        self._round_height = self._indexed_height
        """The height the run being written covers."""
        self._round_ids = MemIds(_split_locs)
        """Every id of the run being written, found here until the run is whole (then
        dropped at once)."""
        self._index_gen = 0
        """Bumped before ids move between memory and runs, or runs are swapped for a
        merged one: a lookup that found nothing under a view older than that looks
        again (``_index_get``)."""
        self._disk_gen = 0
        """``_index_gen`` once the writer has made every change of that generation
        visible (it follows at the end of each append): a disk lookup made under one
        value answers as one made later under the same value (``_stored_now``)."""
        self._merger = (
            None
            if readonly
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmdb-index-merge")
        )
        self._round_writer = (
            None
            if readonly
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmdb-index-run")
        )
        self._merge_future: Future[tuple[list[int], runfiles.RunFile]] | None = None
        """The merge being read, sorted and written to its file on the merge thread."""
        self.merge_problem: str | None = None
        """Why the last merge was dropped (a damaged run), for the operator."""
        if not readonly:
            self._start_merge()
        self.append_phases_s: dict[str, float] = dict.fromkeys(APPEND_PHASES, 0.0)
        """Writer-thread seconds per phase of ``append``, summed since open: checking
        the block, the tx index, the other writes, and the commit (with its fsync)."""

    def _load_runs(self, readonly: bool) -> bytes | None:
        """Open every run the store records, with its filter; returns the stored
        ``indexed_height``. A writable open deletes the run files no record names (a run
        or merge written before a crash or close could record it, or merged away and not
        yet unlinked): they are written again from the blocks or the runs. A read-only
        open beside a live writer can see a record whose file a merge has just unlinked:
        it reads the records again, a few times, before it calls the store damaged."""
        meta = self._dbs["meta"]
        for attempt in range(READONLY_OPEN_TRIES if readonly else 1):
            with self._read() as txn:
                raw_indexed = txn.get(b"indexed_height", db=meta)
                # The number the next run gets (runs ever begun, merged ones included).
                self._next_run = int.from_bytes(txn.get(b"txruns", b"\0" * 4, db=meta), "big")
                cur = txn.cursor(db=meta)
                records = []
                if cur.set_range(_RUN_KEY):
                    for key, value in cur:
                        if not key.startswith(_RUN_KEY):
                            break
                        records.append((int.from_bytes(key[len(_RUN_KEY) :], "big"), value))
            try:
                files = {run: self._open_run(run, value) for run, value in records}
                break
            except runfiles.RunFileError as exc:
                if attempt + 1 >= (READONLY_OPEN_TRIES if readonly else 1):
                    raise NotAGrantchainStore(f"tx index run file {exc}") from None
        for run, rf in sorted(files.items()):
            self._filters[rf.level].add_runs([rf.filter_bits], [run])
        self._files = files
        if not readonly and self._index_dir.is_dir():
            names = {runfiles.file_name(run) for run in files}
            stale = [f for f in self._index_dir.iterdir() if f.name not in names]
            for f in stale:
                f.unlink()
            if stale:
                runfiles.sync_directory(self._index_dir)
        return raw_indexed

    def _open_run(self, run: int, record: bytes) -> runfiles.RunFile:
        """Run ``run``'s file, checked against its LMDB record (``_run_record``)."""
        path = self._index_dir / runfiles.file_name(run)
        try:
            info = RunInfo.from_bytes(record[: _RUN_INFO.size])
        except struct.error:
            raise NotAGrantchainStore(
                f"{self.path}: tx index run {run}'s record is damaged"
            ) from None
        digest = record[_RUN_INFO.size :]
        rf = runfiles.RunFile.open(path)
        got = _info_of(rf)
        if rf.run != run or got != info or rf.digest != digest or info.level >= len(self._filters):
            raise NotAGrantchainStore(
                f"{path}: tx index run {run} is not the run its record names "
                f"(file: run {rf.run}, {got}; record: {info})"
            )
        if rf.filter_bits_log2 != RUN_FILTER_BITS_LOG2[info.level]:
            raise NotAGrantchainStore(f"{path}: a filter of 2**{rf.filter_bits_log2} bits")
        return rf

    # -- opening ---------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, create: bool = True, readonly: bool = False
    ) -> LmdbBlockStore:
        p = Path(path)
        data = p / "data.mdb"
        if not data.exists():
            if not create or readonly:
                raise NotAGrantchainStore(f"{p}: no grantchain data directory here (no data.mdb)")
            p.mkdir(parents=True, exist_ok=True)
        try:
            env = lmdb.open(
                str(p),
                map_size=max(MAP_SIZE_INITIAL_BYTES, data.stat().st_size if data.exists() else 0),
                max_dbs=len(DB_NAMES) + 1,
                sync=True,
                metasync=True,
                writemap=False,
                readonly=readonly,
                max_readers=256,
                readahead=False,
            )
        except lmdb.Error as exc:
            raise NotAGrantchainStore(f"{p}: cannot open the LMDB environment: {exc}") from None
        try:
            env.reader_check()
            _check_not_truncated(env, data)
            dbs = cls._open_dbs(env, p, readonly=readonly)
            return cls(p, env, dbs, readonly=readonly)
        except BaseException:
            env.close()
            raise

    @staticmethod
    def _open_dbs(env: lmdb.Environment, p: Path, *, readonly: bool) -> dict[str, Any]:
        try:
            with env.begin(write=False) as txn:
                names = {k for k, _ in txn.cursor()}
            fresh = not names
            if fresh and readonly:
                raise NotAGrantchainStore(f"{p}: empty LMDB environment, not a grantchain store")
            if not fresh and b"meta" not in names:
                raise NotAGrantchainStore(f"{p}: an LMDB environment, but not a grantchain store")
            # A store from before pruning, opened read-only, has no "leaves": it is
            # read as empty (nothing was pruned).
            optional = {"leaves"} if readonly and b"leaves" not in names else set()
            dbs: dict[str, Any] = {
                n: env.open_db(n.encode(), create=not readonly)
                for n in DB_NAMES
                if n not in optional
            }
            if optional:
                dbs["leaves"] = None
            with env.begin(write=not readonly) as txn:
                tag = txn.get(b"schema", db=dbs["meta"])
                if tag is None and fresh and not readonly:
                    txn.put(b"schema", SCHEMA_TAG, db=dbs["meta"])
                elif tag != SCHEMA_TAG:
                    raise OtherSchemaStore(
                        f"{p}: schema {tag!r}, this version reads {SCHEMA_TAG!r}"
                    )
            return dbs
        except lmdb.Error as exc:
            raise NotAGrantchainStore(f"{p}: damaged or foreign LMDB environment: {exc}") from None

    # -- reading ---------------------------------------------------------------------
    def _read(self, *, buffers: bool = False) -> Any:
        """A read transaction; with ``buffers``, values are zero-copy buffers, valid only
        inside it (the caller copies out what it keeps)."""
        return _ReadTxn(self, buffers)

    @property
    def height(self) -> int:
        return self._height

    @property
    def log_size(self) -> int:
        return self._frontier.size

    def anchor(self) -> bytes | None:
        return self._anchor

    def frontier(self) -> Frontier:
        """A copy of the log's right edge, to build the next block on."""
        return self._frontier.copy()

    def head(self) -> BlockHeader | None:
        return self._head

    def header(self, height: int) -> BlockHeader | None:
        if not 1 <= height <= self._height:
            return None
        with self._read() as txn:
            raw = txn.get(_u64(height), db=self._dbs["headers"])
        return None if raw is None else _header(raw, height)

    def block(self, height: int) -> Block | None:
        if not 1 <= height <= self._height:
            return None
        if height <= self.pruned_height:
            raise TxPrunedError(f"the txs of block {height} were pruned")
        with self._read() as txn:
            raw_header = txn.get(_u64(height), db=self._dbs["headers"])
            raw_body = txn.get(_u64(height), db=self._dbs["bodies"])
            if raw_header is None or raw_body is None:
                raise StoreError(f"{self.path}: block {height} is missing")
            header = _header(raw_header, height)
            log_start, results = _body(raw_body, height)
            txs = self._block_txs(txn, height, log_start, header.tx_count)
        return Block(header, txs, tuple(results))

    def _block_txs(self, txn: Any, height: int, log_start: int, n: int) -> tuple[bytes, ...]:
        """The ``n`` txs of block ``height`` (log start ``log_start``), or the
        ``StoreError`` that names what is wrong with them."""
        if not n:
            return ()
        cur = txn.cursor(db=self._dbs["txs"])
        out: list[bytes] = []
        found = cur.set_key(_u64(log_start))
        while found and len(out) < n:
            if cur.key() != _u64(log_start + len(out)):  # a value missing between
                break
            try:
                out += _txs_of(cur.value(), n - len(out))
            except _DamagedTxs as exc:
                raise StoreError(f"block {height}: {exc}") from None
            found = cur.next()
        if len(out) != n:
            raise StoreError(
                f"block {height}: its txs (log {log_start + len(out)}-{log_start + n - 1}) "
                "are missing"
            )
        return tuple(out)

    @property
    def pruned_height(self) -> int:
        """Blocks up to this height keep their txs' ids (leaf hashes), not their bytes."""
        with self._read() as txn:
            raw = txn.get(b"pruned_height", db=self._dbs["meta"])
        return int.from_bytes(raw, "big") if raw else 0

    def iter_pruned(self, start: int = 1) -> Iterator[tuple[BlockHeader, list[bytes], list[int]]]:
        """(header, tx ids, results) of every pruned block from ``start`` on."""
        end = self.pruned_height
        if start > end:
            return
        with self._read() as txn:
            hcur = txn.cursor(db=self._dbs["headers"])
            bcur = txn.cursor(db=self._dbs["bodies"])
            lcur = txn.cursor(db=self._dbs["leaves"])
            if not (hcur.set_key(_u64(start)) and bcur.set_key(_u64(start))):
                raise StoreError(f"block {start} is missing")
            for (hkey, raw_header), (bkey, raw_body) in zip(hcur, bcur, strict=False):
                height = int.from_bytes(hkey, "big")
                if height > end:
                    return
                if hkey != bkey:
                    raise StoreError(f"block {height}: header and body tables disagree")
                header = _header(raw_header, height)
                log_start, results = _body(raw_body, height)
                n = header.tx_count
                got = []
                if n:
                    if not lcur.set_key(_u64(log_start)):
                        raise StoreError(f"block {height}: the id of pruned tx 0 is missing")
                    got = list(itertools.islice(lcur, n))
                if len(got) != n or (n and got[-1][0] != _u64(log_start + n - 1)):
                    raise StoreError(f"block {height}: ids of pruned txs are missing")
                yield header, [v for _, v in got], results

    def iter_block_ids(
        self, start: int = 1
    ) -> Iterator[tuple[BlockHeader, list[bytes], list[int]]]:
        """(header, tx ids, results) of every block from ``start`` on, pruned or not."""
        pruned = self.pruned_height
        if start <= pruned:
            yield from self.iter_pruned(start)
        for block in self.iter_blocks(max(start, pruned + 1)):
            yield block.header, block.tx_ids(), list(block.results)

    # -- pruning ---------------------------------------------------------------------
    def prune(self, before_height: int, blocks_per_txn: int = 64) -> int:
        """Replace the txs of every block below ``before_height`` by their ids (leaf
        hashes, 32 bytes; the txs are ~250): headers, results, certificates, log nodes,
        the tx index and the state stay, so every root, proof and duplicate check still
        answers and ``verify`` still checks every root; what is gone is the txs' bytes
        (``tx`` answers ``TxPrunedError``). Done ``blocks_per_txn`` blocks per
        transaction, each recording how far it got: a crash leaves a store pruned up to
        some height, never half a block. Returns the new pruned height."""
        if not 1 <= before_height <= self._height + 1:
            raise StoreError(
                f"prune before height {before_height}: the chain has {self._height} blocks"
            )
        target = before_height - 1
        while self.pruned_height < target:
            self._writer.submit(self._prune_on_writer, target, blocks_per_txn).result()
        return self.pruned_height

    def _prune_on_writer(self, target: int, blocks: int) -> None:
        dbs = self._dbs
        with self._lock.shared(), self._env.begin(write=True) as txn:
            raw = txn.get(b"pruned_height", db=dbs["meta"])
            done = int.from_bytes(raw, "big") if raw else 0
            last = min(target, done + blocks)
            leaves: list[tuple[bytes, bytes]] = []
            for height in range(done + 1, last + 1):
                header = _header(txn.get(_u64(height), db=dbs["headers"]) or b"", height)
                n = header.tx_count
                start = header.log_size - n
                if not n:
                    continue
                try:
                    txs = self._block_txs(txn, height, start, n)
                except StoreError as exc:
                    raise StoreError(f"{exc}, cannot prune") from None
                keys = _split(np.arange(start, start + n, dtype=">u8").tobytes(), 8)
                leaves.extend(zip(keys, leaf_hashes(txs), strict=True))
                tcur = txn.cursor(db=dbs["txs"])  # its values: keyed start .. start + n - 1
                found = tcur.set_key(_u64(start))
                while found and int.from_bytes(tcur.key(), "big") < start + n:
                    found = tcur.delete()
            _append_sorted(txn, dbs["leaves"], leaves, "pruned tx ids")
            txn.put(b"pruned_height", _u64(last), db=dbs["meta"])

    def iter_blocks(self, start: int = 1) -> Iterator[Block]:
        """Every block from ``start`` on, read with one cursor per table (for ``verify``)."""
        with self._read() as txn:
            yield from self._iter_blocks_in(txn, start)

    def iter_packed(self, start: int = 1) -> Iterator[tuple[BlockHeader, bytes, Any, list[int]]]:
        """``iter_blocks`` as (header, the txs end to end, each tx's length (an int64
        array), results): what ``verify`` hashes, read without a ``bytes`` object per tx
        (``txpack.unpack``: that was half of a verify). A block whose values the kernel
        finds damaged is read as ``iter_blocks`` reads it, which names the damage."""
        unpack = backend.active().unpack_txs
        with self._read(buffers=True) as txn:
            tcur = txn.cursor(db=self._dbs["txs"])
            for height, header, log_start, results in self._headers_in(txn, start):
                n = header.tx_count
                packed = (
                    _packed_txs(tcur, log_start, n, unpack) if unpack is not None and n else None
                )
                if packed is None:
                    txs = self._block_txs(txn, height, log_start, n)
                    lengths = np.fromiter(map(len, txs), dtype=np.int64, count=len(txs))
                    packed = (b"".join(txs), lengths)
                yield header, packed[0], packed[1], results

    def _iter_blocks_in(self, txn: Any, start: int) -> Iterator[Block]:
        """``iter_blocks`` in the read transaction ``txn``."""
        for height, header, log_start, results in self._headers_in(txn, start):
            txs = self._block_txs(txn, height, log_start, header.tx_count)
            yield Block(header, txs, tuple(results))

    def _headers_in(
        self, txn: Any, start: int
    ) -> Iterator[tuple[int, BlockHeader, int, list[int]]]:
        """(height, header, log start, results) of every block from ``start`` on, in the
        read transaction ``txn`` (zero-copy or not), one cursor per table."""
        hcur = txn.cursor(db=self._dbs["headers"])
        bcur = txn.cursor(db=self._dbs["bodies"])
        if not (hcur.set_key(_u64(start)) and bcur.set_key(_u64(start))):
            return
        for (hkey, raw_header), (bkey, raw_body) in zip(hcur, bcur, strict=False):
            height = int.from_bytes(hkey, "big")
            if hkey != bkey:
                raise StoreError(f"block {height}: header and body tables disagree")
            header = _header(bytes(raw_header), height)
            log_start, results = _body(bytes(raw_body), height)
            yield height, header, log_start, results

    def index_problem(self, height: int, tx_ids: Sequence[bytes]) -> str | None:
        """Why the tx index disagrees with block ``height`` holding ``tx_ids``, or None."""
        with self._read() as txn:
            pending, in_round = self._pending, self._round_ids
            found: list[bytes | None]
            if pending or in_round:
                found = [pending.get(tx_id) or in_round.get(tx_id) for tx_id in tx_ids]
                stored = [tx_id for tx_id, raw in zip(tx_ids, found, strict=True) if raw is None]
            else:
                found, stored = [None] * len(tx_ids), list(tx_ids)
            pairs = self._stored(txn, stored) if stored else []
            if _index_agrees(height, tx_ids, found, pairs, len(stored)):
                return None
            got = dict(pairs)
            found = [raw or got.get(tx_id) for tx_id, raw in zip(tx_ids, found, strict=True)]
            for pos, (tx_id, raw) in enumerate(zip(tx_ids, found, strict=True)):
                if raw is None:
                    return f"tx {pos} ({tx_id.hex()}) is missing from the tx index"
                got_height, got_pos, _, _ = _LOC.unpack(raw)
                if (got_height, got_pos) != (height, pos):
                    return f"tx {pos} ({tx_id.hex()}) is indexed at block {got_height} position {got_pos}"
        return None

    def index_checker(self) -> IndexChecker:
        """Checks the tx index against the blocks as ``verify`` reads them, in order."""
        return IndexChecker(self)

    def height_of(self, header_hash: bytes) -> int | None:
        with self._read() as txn:
            raw = txn.get(header_hash, db=self._dbs["hashes"])
        return None if raw is None else int.from_bytes(raw, "big")

    def _index_get(self, txn: Any, tx_id: bytes) -> bytes | None:
        """Where ``tx_id`` is, as of ``txn`` and the index's memory now. A run or merge
        that completes after ``txn`` began can move an id to pages ``txn`` does not see:
        callers that find nothing look again if ``_index_gen`` moved meanwhile."""
        raw: bytes | None = self._pending.get(tx_id) or self._round_ids.get(tx_id)
        if raw is None and len(tx_id) == _TX_ID_BYTES:
            return self._stored_one(txn, tx_id)
        return raw

    def _stored_one(self, txn: Any, tx_id: bytes) -> bytes | None:
        """``_stored(txn, [tx_id])``'s location, without its batch machinery (a single
        lookup: an API read, a receipt)."""
        for f in self._filters:
            for run in f.candidates_of(tx_id) if f.runs else ():
                rf = self._files.get(run)  # None: merged away since (see _index_gen)
                loc = rf.find(tx_id) if rf is not None else None
                if loc is not None:
                    return loc
        return None

    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        while True:
            gen = self._index_gen
            with self._read() as txn:
                raw = self._index_get(txn, tx_id)
            if raw is not None or gen == self._index_gen:
                return None if raw is None else TxLocation(*_LOC.unpack(raw))

    def tx(self, tx_id: bytes) -> tuple[bytes, TxLocation] | None:
        while True:
            gen = self._index_gen
            with self._read(buffers=True) as txn:  # the block's value is not copied
                raw = self._index_get(txn, tx_id)
                if raw is None:
                    if gen == self._index_gen:
                        return None
                    continue  # the index moved ids meanwhile: look again (see _index_gen)
                return self._tx_at(txn, tx_id, raw)

    def _tx_at(self, txn: Any, tx_id: bytes, raw: bytes) -> tuple[bytes, TxLocation]:
        loc = TxLocation(*_LOC.unpack(raw))
        leaves = self._dbs["leaves"]
        if leaves is not None and txn.get(_u64(loc.log_index), db=leaves):
            raise TxPrunedError(f"tx {tx_id.hex()} (block {loc.height}) was pruned")
        try:
            return self._txs_between(txn, loc.log_index, loc.log_index + 1)[0], loc
        except StoreError as exc:
            raise StoreError(f"tx {tx_id.hex()} is indexed (block {loc.height}): {exc}") from None

    def _get_node(self, level: int, index: int) -> bytes:
        with self._read(buffers=True) as txn:
            return self._node(txn, level, index)

    def _leaf_hashes(self, txn: Any, start: int, end: int) -> list[bytes]:
        """The log's leaf hashes ``[start, end)``: kept as they are for pruned txs (the
        first ones of the log), hashed from the txs for the others."""
        out: list[bytes] = []
        leaves = self._dbs["leaves"]
        if leaves is not None:
            cur = txn.cursor(db=leaves)
            if cur.set_key(_u64(start)):
                got = list(itertools.islice(cur, end - start))
                # Sorted unique keys: the last key right means none between is missing.
                if got[-1][0] != _u64(start + len(got) - 1):
                    raise StoreError(f"{self.path}: ids of pruned txs from {start} are missing")
                out = [bytes(v) for _, v in got]
        at = start + len(out)
        if at < end:
            raws = self._txs_between(txn, at, end)
            out += [leaf_hash(raws[0])] if len(raws) == 1 else leaf_hashes(raws)
        return out

    def _txs_between(self, txn: Any, at: int, end: int) -> list[bytes]:
        """The txs of log indices ``[at, end)`` (not pruned), from the ``txs`` values that
        hold them: the one keyed at or before ``at``, then the next ones."""
        cur = txn.cursor(db=self._dbs["txs"])
        key = _u64(at)
        found = cur.set_range(key)
        if not found or cur.key() != key:
            found = cur.prev() if found else cur.last()
        out: list[bytes] = []
        while found and at + len(out) < end:
            first = int.from_bytes(cur.key(), "big")
            value = cur.value()
            i = at + len(out)
            try:
                n = _txs_count(value)
                if not first <= i < first + n:
                    break
                out += _txs_in(value, i - first, min(n, end - first))
            except _DamagedTxs as exc:
                raise StoreError(f"{self.path}: the txs at log index {first}: {exc}") from None
            found = cur.next()
        if len(out) != end - at:
            raise StoreError(f"{self.path}: log leaves {at + len(out)}-{end - 1} are missing")
        return out

    def _node(self, txn: Any, level: int, index: int) -> bytes:
        end = (index + 1) << level
        if level < NODES_MIN_LEVEL:  # not stored: the root of its 2**level leaves
            hashes = self._leaf_hashes(txn, index << level, end)
            return hashes[0] if level == 0 else merkle.root(hashes)
        cur = txn.cursor(db=self._dbs["nodes"])
        value = cur.value() if cur.set_range(_u64(end)) else None
        node = None if value is None else _node_in(value, cur.key(), level, index)
        if node is None:
            raise StoreError(f"{self.path}: log node ({level}, {index}) is missing")
        return node

    def log_root(self, size: int | None = None) -> bytes:
        if size is None or size == self.log_size:
            return self._frontier.root()
        _check_size(size, self.log_size)
        return merkle.root_at(self._get_node, size)

    def inclusion_proof(self, log_index: int, tree_size: int) -> list[bytes]:
        return self.inclusion_proofs([log_index], tree_size)[0]

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        _check_size(size2, self.log_size)
        return merkle.consistency_proof(self._get_node, size1, size2)

    def inclusion_proofs(self, log_indices: Sequence[int], tree_size: int) -> list[list[bytes]]:
        """``inclusion_proof`` of each index, in one read transaction, each node read
        once: the txs of one block share most of their paths (a receipt batch's cost).
        The nodes not stored (below ``NODES_MIN_LEVEL``) are hashed from groups of
        ``_LEAF_GROUP`` aligned leaves, each group read once: a proof's lower siblings
        lie in two groups (its leaf's and the level-4 sibling), read from one or two
        blocks' values rather than five times."""
        size = self.log_size  # committed: visible to the transaction begun below
        _check_size(tree_size, size)
        memo: dict[tuple[int, int], bytes] = {}
        groups: dict[int, list[bytes]] = {}
        with self._read(buffers=True) as txn:

            def node(level: int, index: int) -> bytes:
                found = memo.get((level, index))
                if found is None:
                    if level < NODES_MIN_LEVEL:
                        start = index << level
                        first = start - start % _LEAF_GROUP
                        leaves = groups.get(first)
                        if leaves is None:
                            last = min(first + _LEAF_GROUP, size)
                            leaves = groups[first] = self._leaf_hashes(txn, first, last)
                        hashes = leaves[start - first : start - first + (1 << level)]
                        if len(hashes) != 1 << level:
                            raise StoreError(f"{self.path}: log node ({level}, {index}) is missing")
                        found = hashes[0] if level == 0 else merkle.root(hashes)
                    else:
                        found = self._node(txn, level, index)
                    memo[level, index] = found
                return found

            return [merkle.inclusion_proof(node, i, tree_size) for i in log_indices]

    def state(self) -> LmdbStateView:
        return LmdbStateView(self)

    def snapshot(self) -> LmdbSnapshot:
        return LmdbSnapshot(self)

    # -- genesis and consensus persistence -------------------------------------------
    def genesis_hash(self) -> bytes | None:
        with self._read() as txn:
            value: bytes | None = txn.get(b"genesis", db=self._dbs["meta"])
        return value

    def initialize(self, genesis_hash: bytes, state_writes: Sequence[StateWrite]) -> None:
        """Bind an empty store to a genesis and write the genesis state; on a store that
        is already bound, check it is the same genesis."""
        current = self.genesis_hash()
        if current is not None:
            if current != genesis_hash:
                raise NotAGrantchainStore(
                    f"{self.path}: belongs to genesis {current.hex()}, not {genesis_hash.hex()}"
                )
            return
        if self._height:
            raise StoreError(f"{self.path}: has blocks but no genesis")

        def write() -> None:
            with self._lock.shared(), self._env.begin(write=True) as txn:
                for k, v in state_writes:
                    if v is not None:
                        txn.put(k, v, db=self._dbs["state"])
                txn.put(b"genesis", genesis_hash, db=self._dbs["meta"])

        self._writer.submit(write).result()

    def consensus_load(self) -> tuple[bytes | None, bytes | None, list[bytes]]:
        """(hard state, snapshot, log entries in index order) as last saved."""
        with self._read() as txn:
            meta = self._dbs["meta"]
            hard = txn.get(b"consensus/hard", db=meta)
            snap = txn.get(b"consensus/snapshot", db=meta)
            entries = [v for _, v in txn.cursor(db=self._dbs["clog"])]
        return hard, snap, entries

    def consensus_save(
        self,
        *,
        hard_state: bytes | None,
        entries: Sequence[tuple[int, bytes]],
        snapshot: tuple[int, bytes] | None,
    ) -> None:
        """Durably, in one transaction: install ``snapshot`` (index, bytes) dropping the log
        up to its index, then truncate the log from the first entry's index and append
        ``entries``, then save ``hard_state``."""
        self._ensure_room(sum(len(e) + 64 for _, e in entries) + 4096)
        self._writer.submit(self._consensus_save_on_writer, hard_state, entries, snapshot).result()

    def _consensus_save_on_writer(
        self,
        hard_state: bytes | None,
        entries: Sequence[tuple[int, bytes]],
        snapshot: tuple[int, bytes] | None,
    ) -> None:
        meta, clog = self._dbs["meta"], self._dbs["clog"]
        with self._lock.shared(), self._env.begin(write=True) as txn:
            if snapshot is not None:
                _delete_below(txn, clog, snapshot[0] + 1)
                txn.put(b"consensus/snapshot", snapshot[1], db=meta)
            if entries:
                cur = txn.cursor(db=clog)
                if cur.set_range(_u64(entries[0][0])):
                    while cur.delete():
                        pass
                for index, data in entries:
                    if not txn.put(_u64(index), data, db=clog, append=True):
                        raise StoreError(f"consensus log: entry {index} is not after the last one")
            if hard_state is not None:
                txn.put(b"consensus/hard", hard_state, db=meta)

    def consensus_compact(self, index: int, snapshot: bytes) -> None:
        """Drop log entries up to ``index`` and keep ``snapshot`` in their place."""
        self._writer.submit(self._consensus_save_on_writer, None, (), (index, snapshot)).result()

    def certificate(self, height: int) -> list[tuple[str, bytes]]:
        with self._read() as txn:
            raw = txn.get(_u64(height), db=self._dbs["certs"])
        return [] if raw is None else [(n, s) for n, s in codec.decode(raw)]

    def put_certificate(self, height: int, signatures: Sequence[tuple[str, bytes]]) -> None:
        """Store the header signatures collected for ``height`` (replacing earlier ones)."""
        value = codec.encode(sorted([n, s] for n, s in signatures))

        def write() -> None:
            with self._lock.shared(), self._env.begin(write=True) as txn:
                txn.put(_u64(height), value, db=self._dbs["certs"])

        self._writer.submit(write).result()

    # -- writing ---------------------------------------------------------------------
    def append(self, block: Block, state_writes: Sequence[StateWrite] = ()) -> None:
        self.submit_append(block, state_writes).result()

    def submit_append(self, block: Block, state_writes: Sequence[StateWrite] = ()) -> Future[None]:
        """Queue the append on the writer thread; the future resolves once it is durable
        (or raises what ``append`` would). Lets a caller build the next block meanwhile.

        The block's body is hashed here, on the caller's thread, while the writer may be
        committing the block before (its fsync releases the GIL): ``check_body`` keeps
        the ids it found in the immutable block, and the writer's own check reuses them.
        Whatever is wrong with the body is left for the writer to find again and report
        through the future, as before."""
        prepared = None
        with contextlib.suppress(Exception):
            ids = block.check_body()
            h = block.header
            # The writes that follow from the block alone, made here too (``_Prepared``);
            # the writer makes them again if the log start turns out different.
            prepared = _prepare(block, ids, h.log_size - h.tx_count)
            # The duplicate check against the runs on disk too: candidates from the run
            # filters, then LMDB probes, here rather than on the writer (its bottleneck).
            prepared = prepared._replace(on_disk=self._stored_now(ids))
        return self._writer.submit(self._append_on_writer, block, state_writes, prepared)

    def _stored_now(self, ids: Sequence[bytes]) -> tuple[int, list[tuple[bytes, bytes]]]:
        """(the disk generation, ``_stored(ids)`` in a read transaction begun after it was
        read). Whatever makes ids visible in runs, or moves them, is made visible before
        the generation moves (``_disk_gen``): the same generation later means the same
        answer, so the writer may take it as its own."""
        gen = self._disk_gen
        with self._read() as txn:
            return gen, self._stored(txn, ids)

    def _append_on_writer(
        self, block: Block, state_writes: Sequence[StateWrite], prepared: _Prepared | None = None
    ) -> None:
        t0 = time.perf_counter()
        frontier = self._frontier.copy()
        joined = prepared.joined if prepared is not None else None
        ids, levels = check_and_extend_levels(block, self._head, frontier, joined)
        self.append_phases_s["check"] += time.perf_counter() - t0
        h = block.header
        raw_header = h.to_bytes()
        header_hash = h.hash
        log_start = self._frontier.size
        if prepared is None or prepared.log_start != log_start:
            prepared = _prepare(block, ids, log_start)  # looked up on disk below
        estimate = prepared.estimate
        # The state writes' size is guessed (summing it costs ~10% of an append); only a
        # block that outgrows the headroom on the guess pays for the sum, below.
        self._ensure_room(estimate + STATE_WRITE_BYTES_GUESS * len(state_writes))
        for attempt in (1, 2):
            try:
                self._write(block, ids, levels, raw_header, header_hash, prepared, state_writes)
                break
            except lmdb.MapFullError:
                if attempt == 2:
                    raise StoreError(f"{self.path}: LMDB map full even after growing") from None
                estimate += sum(len(k) + len(v or b"") + 64 for k, v in state_writes)
                used, map_size = self.map_usage()
                self._grow(max(map_size * 2, (used + estimate) * 4))
        self._frontier = frontier
        self._head = h
        self._height = h.height
        if self._anchor is None:
            self._anchor = h.prev_hash

    def _write(
        self,
        block: Block,
        ids: list[bytes],
        levels: list[tuple[int, int, list[bytes]]],
        raw_header: bytes,
        header_hash: bytes,
        prepared: _Prepared,
        state_writes: Sequence[StateWrite],
    ) -> None:
        h = block.header
        log_start, body = prepared.log_start, prepared.body
        dbs = self._dbs
        key = _u64(h.height)
        phases = self.append_phases_s
        t0 = time.perf_counter()
        # The run being written to its file, if it is whole now: recorded in this
        # transaction (a failed write fails this append, and every one after it, until
        # a reopen rebuilds the run from the blocks: nothing acknowledged is lost).
        whole = self._round if self._round is not None and self._round.done() else None
        try:
            round_file = whole.result() if whole is not None else None
        except Exception as exc:
            raise StoreError(
                f"{self.path}: a tx index run's file could not be written ({exc}); "
                "reopening the store writes it again from the blocks"
            ) from exc
        with self._lock.shared(), self._env.begin(write=True) as txn:
            pending, in_round = self._pending, self._round_ids
            joined = prepared.joined
            id_keys = self._id_keys
            on_disk = prepared.on_disk
            stored = (
                on_disk[1]
                if on_disk is not None and on_disk[0] == self._disk_gen
                else self._stored(txn, ids)
            )
            if (
                (id_keys is None or id_keys.may_hold(joined))
                and (pending.holds_any(ids) or in_round.holds_any(ids))
            ) or stored:
                found = {i for i, _ in stored}
                dup = next(i for i in ids if i in pending or i in in_round or i in found)
                raise DuplicateTxError(f"block {h.height}: tx {dup.hex()} is already stored")
            meta = dbs["meta"]
            if round_file is not None:
                txn.put(b"indexed_height", _u64(self._round_height), db=meta)
                txn.put(_RUN_KEY + _u32(round_file.run), _run_record(round_file), db=meta)
                txn.put(b"txruns", _u32(self._next_run), db=meta)
            merged = self._merge_step(txn)
            t1 = time.perf_counter()
            phases["index"] += t1 - t0
            if prepared.txs_items:  # none for a block with no txs
                _append_sorted(txn, dbs["txs"], prepared.txs_items, "txs")
            if len(levels) > NODES_MIN_LEVEL:  # the block completed a node kept on disk
                nodes = _nodes_value(log_start, h.log_size, levels)
                _append_sorted(txn, dbs["nodes"], [(_u64(h.log_size), nodes)], "log nodes")
            _append_sorted(txn, dbs["headers"], [(key, raw_header)], "headers")
            _append_sorted(txn, dbs["bodies"], [(key, body)], "bodies")
            txn.put(header_hash, key, db=dbs["hashes"])
            state = dbs["state"]
            puts = [(k, v) for k, v in state_writes if v is not None]
            if puts:  # one call for all: the writes are one per key, in key order
                txn.cursor(db=state).putmulti(puts)
            if len(puts) != len(state_writes):
                for k, v in state_writes:
                    if v is None:
                        txn.delete(k, db=state)
            txn.put(b"height", key, db=meta)
            txn.put(b"log_size", _u64(h.log_size), db=meta)
            if h.height == 1:
                txn.put(b"anchor", h.prev_hash, db=meta)
            t2 = time.perf_counter()
            phases["write"] += t2 - t1
        phases["commit"] += time.perf_counter() - t2
        # Committed: only now may readers stop finding the run's ids in memory, and only
        # once the run's file is open and its filter in place. Readers look in
        # ``_pending`` then ``_round_ids``: an id moves from the first to the second by
        # being in both for a moment, never in neither.
        pending.add(joined, prepared.raw_locs)
        if id_keys is not None:
            id_keys.add(joined)
        if round_file is not None:
            run = round_file.run
            self._index_gen += 1
            self._files = {**self._files, run: round_file}
            self._filters[0].add_runs([round_file.filter_bits], [run])
            self._round_ids, self._round = MemIds(_split_locs), None
            if id_keys is not None:  # the round's ids are found on disk from now
                id_keys.reset(b"".join([i for i, _ in pending.parts]))
            self._indexed_height = self._round_height
            self._start_merge()
        if self._round is None and len(pending) >= INDEX_FLUSH_TXS:
            # The pending ids become the next run, sorted and written to its file on the
            # index thread (the same dict moves: no copy); recorded by a later append.
            run = self._next_run
            self._next_run += 1
            parts, first = pending.parts, self._indexed_height + 1
            self._round = self._round_writer.submit(  # type: ignore[union-attr]
                self._write_round, run, first, h.height, parts
            )
            self._round_ids, self._round_height = pending, h.height
            self._pending = MemIds(_split_locs)
        if merged is not None:
            merged()
        # Last, once every change to what the runs on disk hold is visible (filters,
        # records, the ids out of memory): a disk lookup made from now on sees them all.
        self._disk_gen = self._index_gen

    def _write_round(
        self, run: int, first_height: int, last_height: int, parts: list[tuple[bytes, bytes]]
    ) -> runfiles.RunFile:
        """On the index thread: sort a run's ids, make its filter, write its file."""
        joined = b"".join([i for i, _ in parts])
        rows = _run_entries(joined, b"".join([loc for _, loc in parts]))
        bits = _run_filter(joined, RUN_FILTER_BITS_LOG2[0])
        return runfiles.write(
            self._index_dir, run, 0, first_height, last_height, rows, bits, RUN_FILTER_BITS_LOG2[0]
        )

    # -- merging the tx index's runs ---------------------------------------------------
    def _start_merge(self) -> None:
        """Once ``MERGE_RUNS`` runs of a level below the top are whole, merge the oldest of
        them into one run of the next level (the lowest such level first: its runs are
        the many small ones): read, sorted and written to its file on the merge thread,
        recorded by the next append after it is done (``_merge_step``). One merge at a
        time. A level's runs cover one band of heights, older than the level below's, so
        its oldest runs cover consecutive heights, as a run must."""
        if self._merger is None or self._merge_future is not None:
            return
        runs = self._runs
        for level in range(len(RUN_FILTER_BITS_LOG2) - 1):
            same = sorted((i.first_height, r) for r, i in runs.items() if i.level == level)
            if len(same) >= MERGE_RUNS:
                sources = [run for _, run in same[:MERGE_RUNS]]
                run = self._next_run
                self._next_run += 1
                self._merge_future = self._merger.submit(self._merged_run, sources, run, level + 1)
                return

    def _merged_run(
        self, sources: list[int], run: int, level: int
    ) -> tuple[list[int], runfiles.RunFile]:
        """On the merge thread: (sources, the merged run's file of ``level``, written and
        open)."""
        files = [self._files[r] for r in sources]
        rows = _merged_entries([f.rows() for f in files])
        bits = _rows_filter(rows, RUN_FILTER_BITS_LOG2[level])
        first = min(f.first_height for f in files)
        last = max(f.last_height for f in files)
        rf = runfiles.write(
            self._index_dir, run, level, first, last, rows, bits, RUN_FILTER_BITS_LOG2[level]
        )
        return sources, rf

    def _merge_step(self, txn: Any) -> Callable[[], None] | None:
        """In a block's transaction: record a merged run whose file is written, and drop
        its sources' records. Returns what to do once the transaction has committed."""
        future = self._merge_future
        if future is None or not future.done():
            return None
        meta = self._dbs["meta"]
        try:
            sources, rf = future.result()
        except Exception as exc:  # a damaged run or a failed write: the runs stay as they are
            self._merge_future = None
            self.merge_problem = str(exc)
            return None
        txn.put(_RUN_KEY + _u32(rf.run), _run_record(rf), db=meta)
        txn.put(b"txruns", _u32(self._next_run), db=meta)
        for source in sources:
            txn.delete(_RUN_KEY + _u32(source), db=meta)

        def done() -> None:
            # Readers find an id in the merged run or still in its source, never in
            # neither: the merged run goes in before the sources go out. A view older
            # than the merge's commit looks again (``_index_gen``).
            self._index_gen += 1
            self._files = {**self._files, rf.run: rf}
            self._filters[rf.level].add_runs([rf.filter_bits], [rf.run])
            self._filters[rf.level - 1].remove_runs(sources)
            gone = [self._files[s].path for s in sources]
            self._files = {r: f for r, f in self._files.items() if r not in sources}
            for path in gone:  # open maps stay valid; a crash before this leaves orphans
                path.unlink(missing_ok=True)  # that the next writable open deletes
            self._merge_future = None
            self._start_merge()

        return done

    def _ensure_room(self, bytes_needed: int) -> None:
        info = self._env.info()
        used = (info["last_pgno"] + 1) * self._env.stat()["psize"]
        map_size = info["map_size"]
        if used + bytes_needed > map_size * (1 - MAP_HEADROOM_FRACTION):
            self._grow(max(map_size * 2, (used + bytes_needed) * 4))

    def _grow(self, new_size: int) -> None:
        with self._lock.exclusive():
            self._env.set_mapsize(new_size)

    @property
    def _runs(self) -> dict[int, RunInfo]:
        """Every complete run of the tx index, from its open file."""
        return {run: _info_of(rf) for run, rf in self._files.items()}

    def index_runs(self) -> int:
        """How many runs the tx index has on disk (a lookup tests each one's filter)."""
        return len(self._files)

    def map_usage(self) -> tuple[int, int]:
        """(bytes used, map size) — for metrics and headroom alerts."""
        info = self._env.info()
        return (info["last_pgno"] + 1) * self._env.stat()["psize"], info["map_size"]

    def _stored(self, txn: Any, ids: Sequence[bytes]) -> list[tuple[bytes, bytes]]:
        """(id, packed location) of those ``ids`` that are in a complete run on disk."""
        probes: list[tuple[int, bytes]] = []
        kernel = backend.active().filter_candidates
        joined = b"".join(ids) if kernel is not None and len(ids) > 1 else b""
        for f in self._filters:
            if not f.runs:
                continue
            if len(ids) == 1:
                probes.extend((r, ids[0]) for r in f.candidates_of(ids[0]))
            else:
                which, runs = (
                    f.candidate_pairs(ids)
                    if kernel is None
                    else f.candidate_pairs_joined(joined, kernel)
                )
                probes.extend((r, ids[i]) for i, r in zip(which, runs, strict=True))
        out = []
        files = self._files
        for run, tx_id in sorted(probes):  # a run's file read in id order
            rf = files.get(run)  # None: merged away since (see _index_gen)
            loc = rf.find(tx_id) if rf is not None else None
            if loc is not None:
                out.append((tx_id, loc))
        return out

    def close(self) -> None:
        # The ids not yet in a run are not written here: the next open rebuilds them from
        # the blocks, as after a crash, and a run is only ever a whole batch. A merge cut
        # short is begun again at the next open.
        self._writer.shutdown(wait=True)
        for pool in (self._merger, self._round_writer):  # a file half written is deleted
            if pool is not None:  # at the next writable open
                pool.shutdown(wait=True, cancel_futures=True)
        self._files = {}
        self._env.close()

    def __enter__(self) -> LmdbBlockStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class IndexChecker:
    """The tx index checked against the blocks, fed in height order (``verify``).

    A run holds the ids of a range of heights and nothing else: once its last block is
    fed, its stored pages are checked against the blocks' ids (``_run_agrees``: the
    layout a writer makes, every id once, at its location); ids past the last run are
    checked in memory. Only
    when a run differs are its blocks looked up one id at a time, to name the first
    wrong one. (Looking up every id, 1,000 B-tree searches a block, took a third of a
    verify.)"""

    def __init__(self, store: LmdbBlockStore) -> None:
        self._store = store
        self._runs = sorted(store._runs.items(), key=lambda item: item[1].first_height)
        self._next = 0
        self._ids: list[bytes] = []
        self._locs: list[bytes] = []
        self._blocks: list[tuple[int, Sequence[bytes]]] = []

    def feed(
        self, header: BlockHeader, ids: Sequence[bytes], results: Sequence[int]
    ) -> tuple[int, str] | None:
        """None, or (height, problem) for the first block the index is wrong about."""
        h = header.height
        store = self._store
        if self._next == len(self._runs):
            problem = store.index_problem(h, ids)
            return None if problem is None else (h, problem)
        run, info = self._runs[self._next]
        if not info.first_height <= h <= info.last_height:
            return (
                h,
                f"no tx index run covers block {h} (the next is run {run}, blocks {info.first_height}-{info.last_height})",
            )
        self._ids.append(b"".join(ids))
        self._locs.append(_locations_raw(h, header.log_size - header.tx_count, results))
        self._blocks.append((h, ids))
        if h < info.last_height:
            return None
        self._next += 1
        ids_raw, locs_raw, blocks = b"".join(self._ids), b"".join(self._locs), self._blocks
        self._ids, self._locs, self._blocks = [], [], []
        n = len(ids_raw) // txruns.ID_BYTES
        rf = store._files[run]
        rows = rf.rows()
        if n == info.id_count and _run_agrees(rows, ids_raw, locs_raw, blocks):
            # The entries are the blocks'; the rest of the file (its filter, the fences)
            # must be what they make, or lookups would miss ids the entries hold.
            if not rf.digest_ok():
                return h, f"tx index run {run}: its file {rf.path} does not match its digest"
            if bytes(rf.filter_bits) != _rows_filter(rows, rf.filter_bits_log2):
                return h, f"tx index run {run}: its filter is not its ids' filter"
            return None
        for height, block_ids in blocks:  # name the first id the index is wrong about
            problem = store.index_problem(height, block_ids)
            if problem is not None:
                return height, problem
        return (
            h,
            f"tx index run {run} holds entries that blocks {info.first_height}-{h} do not have",
        )

    def finish(self, height: int) -> tuple[int, str] | None:
        """After the last block (``height``): a run that covers blocks past it is wrong."""
        if self._next < len(self._runs):
            run, info = self._runs[self._next]
            return (
                height + 1,
                f"tx index run {run} covers blocks {info.first_height}-{info.last_height}, past the last block",
            )
        return None


def _run_agrees(
    rows: np.ndarray,
    ids_raw: bytes,
    locs_raw: bytes,
    blocks: list[tuple[int, Sequence[bytes]]],
) -> bool:
    """True if a run's stored entry ``rows`` are exactly what a writer makes of the
    blocks' ids (``ids_raw``, in block order) and locations (``locs_raw``): strictly
    increasing ids (``txruns.strictly_increasing``), as many as the blocks have, each
    entry's location naming a (height, position) of these blocks where that very id and
    location are. Distinct ids at distinct positions, as many as there are positions:
    every id of the blocks once, with its location. No sort (rebuilding the run sorted
    its 65,536 or 1,048,576 ids: ~5% of a verify)."""
    if not txruns.strictly_increasing(rows):
        return False
    n = len(ids_raw) // txruns.ID_BYTES
    if rows.shape[0] != n or len(locs_raw) != n * _LOC.size:
        return False
    if n == 0:
        return True
    base, count = blocks[0][0], len(blocks)
    if blocks[-1][0] != base + count - 1:  # heights not consecutive: not a writer's run
        return False
    tx_counts = np.fromiter((len(ids) for _, ids in blocks), dtype=np.int64, count=count)
    starts = np.zeros(count, dtype=np.int64)
    np.cumsum(tx_counts[:-1], out=starts[1:])
    locs = np.ascontiguousarray(rows[:, txruns.ID_BYTES :]).view(_LOC_DTYPE).reshape(n)
    heights = locs["height"]
    if not bool(((heights >= base) & (heights < base + count)).all()):
        return False
    at = heights.astype(np.int64) - base
    pos = locs["pos"].astype(np.int64)
    if not bool((pos < tx_counts[at]).all()):
        return False
    want = np.empty((n, txruns.ENTRY_BYTES), dtype=np.uint8)  # block order
    want[:, : txruns.ID_BYTES] = np.frombuffer(ids_raw, dtype=np.uint8).reshape(n, -1)
    want[:, txruns.ID_BYTES :] = np.frombuffer(locs_raw, dtype=np.uint8).reshape(n, -1)
    # Whole entries gathered as one item each (a 54-byte void), then compared as bytes:
    # 1.7x faster than gathering and comparing the ids' and locations' bytes apart.
    entries = want.view(f"V{txruns.ENTRY_BYTES}").reshape(n)
    return bool(entries.take(starts[at] + pos).tobytes() == rows.tobytes())


class _ReadTxn:
    """A read transaction held under the shared lock (so the map cannot move under it)."""

    __slots__ = ("_buffers", "_env", "_lock", "_txn")

    def __init__(self, store: LmdbBlockStore, buffers: bool = False) -> None:
        self._lock = store._lock
        self._env = store._env
        self._buffers = buffers
        self._txn: Any = None

    def __enter__(self) -> Any:
        self._lock.acquire_shared()
        try:
            self._txn = (
                self._env.begin(write=False, buffers=True)
                if self._buffers
                else self._env.begin(write=False)
            )
        except BaseException:
            self._lock.release_shared()
            raise
        return self._txn

    def __exit__(self, *exc: object) -> None:
        # py-lmdb frees a read transaction's reader slot only when the object dies, not
        # at abort: drop the reference, so a view kept by a waiting coroutine (``with
        # .. as view`` outlives its block) holds no slot. Hundreds of such waits filled
        # all max_readers slots under MQTT load (MDB_READERS_FULL).
        txn, self._txn = self._txn, None
        try:
            txn.abort()
        finally:
            del txn
            self._lock.release_shared()


def _delete_below(txn: Any, db: Any, end: int) -> None:
    cur = txn.cursor(db=db)
    if cur.first():
        while cur.key() and int.from_bytes(cur.key(), "big") < end:
            if not cur.delete():
                break


def _append_sorted(txn: Any, db: Any, items: list[tuple[bytes, bytes]], what: str) -> None:
    """LMDB's fast append; keys must sort after every stored key, or nothing is trusted."""
    if not items:
        return
    _, added = txn.cursor(db=db).putmulti(items, append=True)
    if added != len(items):
        raise StoreError(f"{what}: {len(items) - added} keys did not append in order")


def _check_not_truncated(env: lmdb.Environment, data: Path) -> None:
    """A file shorter than its own meta page says would SIGBUS the process on first read."""
    if not data.exists():
        return
    needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    actual = data.stat().st_size
    if actual < needed:
        raise NotAGrantchainStore(
            f"{data}: truncated ({actual} bytes, the store's meta page says {needed})"
        )


def _header(raw: bytes, height: int) -> BlockHeader:
    try:
        h = BlockHeader.from_bytes(raw)
    except BlockError as exc:
        raise StoreError(f"block {height}: stored header is damaged: {exc}") from None
    if h.height != height:
        raise StoreError(f"block {height}: stored header says height {h.height}")
    return h


def _body(raw: bytes, height: int) -> tuple[int, list[int]]:
    try:
        value = codec.decode(raw)
        log_start, results = value
        if not isinstance(log_start, int) or not isinstance(results, list):
            raise ValueError("shape")
    except (codec.DecodeError, ValueError, TypeError):
        raise StoreError(f"block {height}: stored body is damaged") from None
    return log_start, results


def _check_size(size: int, log_size: int) -> None:
    if not 0 <= size <= log_size:
        raise merkle.ProofError(f"tree size {size} is beyond the log size {log_size}")


SNAPSHOT_META_KEYS = (
    b"schema",
    b"genesis",
    b"anchor",
    b"height",
    b"log_size",
    b"indexed_height",
    b"txruns",
)
"""What a snapshot keeps of ``meta``, with every run's record, its file copied beside it
(not the consensus state: the node that imports it gets that from its peers)."""
SNAPSHOT_TABLES = ("headers", "bodies", "hashes", "nodes", "certs", "state")
"""Tables a snapshot copies as they are."""
_COPY_BATCH = 50_000


def export_snapshot(store: LmdbBlockStore, out: Path) -> int:
    """Write at ``out`` (a new directory) a store holding the chain as of ``store``'s head
    with every block pruned (``LmdbBlockStore.prune``): headers, certificates, results,
    log nodes, the txs' ids, the tx index's runs and the state, read in one read
    transaction (a consistent cut, whatever the node appends meanwhile). A new node opens
    it as it would its own store, at that height. Returns the height."""
    if (out / "data.mdb").exists():
        raise StoreError(f"{out}: already holds a store")
    out.mkdir(parents=True, exist_ok=True)
    _, map_size = store.map_usage()
    env = lmdb.open(
        str(out),
        map_size=max(map_size, MAP_SIZE_INITIAL_BYTES),
        max_dbs=len(DB_NAMES) + 1,
        sync=True,
        metasync=True,
        writemap=False,
    )
    try:
        dst = {n: env.open_db(n.encode()) for n in DB_NAMES}
        # The runs' files as of before the read transaction: any run its cut records is
        # among them, or (recorded since) still on disk under its name (``_copy_runs``).
        files = store._files
        with store._read() as txn:
            src = store._dbs
            meta = txn.cursor(db=src["meta"])
            items = [(k, v) for k, v in meta if k in SNAPSHOT_META_KEYS]
            runs = []
            for k, v in txn.cursor(db=src["meta"]):
                if k.startswith(_RUN_KEY):
                    items.append((k, v))
                    runs.append(int.from_bytes(k[len(_RUN_KEY) :], "big"))
            _copy_runs(store, files, runs, out / INDEX_DIR)
            raw_height = txn.get(b"height", db=src["meta"])
            height = int.from_bytes(raw_height, "big") if raw_height else 0
            items.append((b"pruned_height", _u64(height)))
            _copy(env, dst["meta"], sorted(items))
            for name in SNAPSHOT_TABLES:
                _copy(env, dst[name], txn.cursor(db=src[name]))
            if src["leaves"] is not None:
                _copy(env, dst["leaves"], txn.cursor(db=src["leaves"]), append=True)
            raw_pruned = txn.get(b"pruned_height", db=src["meta"])
            pruned = int.from_bytes(raw_pruned, "big") if raw_pruned else 0
            batch: list[bytes] = []
            first = 0  # the log index of ``batch[0]``

            def flush() -> None:
                keys = _split(np.arange(first, first + len(batch), dtype=">u8").tobytes(), 8)
                _copy(env, dst["leaves"], zip(keys, leaf_hashes(batch), strict=True), append=True)

            for block in store._iter_blocks_in(txn, pruned + 1):  # the txs not pruned yet
                if not batch:
                    first = block.header.log_size - block.header.tx_count
                batch.extend(block.txs)
                if len(batch) >= _COPY_BATCH:
                    flush()
                    batch = []
            if batch:
                flush()
    finally:
        env.close()
    return height


def _copy_runs(
    store: LmdbBlockStore, files: dict[int, runfiles.RunFile], runs: list[int], out: Path
) -> None:
    """Copy the files of ``runs`` (a snapshot's cut) into ``out``. A run recorded after
    ``files`` was read is opened by its name: only a merge completed while the snapshot
    was taken could have unlinked it since, and then the snapshot is taken again."""
    for run in runs:
        rf = files.get(run)
        if rf is None:
            try:
                rf = runfiles.RunFile.open(store._index_dir / runfiles.file_name(run))
            except runfiles.RunFileError as exc:
                raise StoreError(
                    f"snapshot: tx index run {run} was merged away meanwhile ({exc}): "
                    "take the snapshot again"
                ) from None
        runfiles.copy_to(rf, out)


def _copy(env: lmdb.Environment, db: Any, items: Any, *, append: bool = False) -> None:
    """Put ``items`` (sorted by key) into ``db``, ``_COPY_BATCH`` a transaction."""
    it = iter(items)
    while True:
        chunk = list(itertools.islice(it, _COPY_BATCH))
        if not chunk:
            return
        with env.begin(write=True) as txn:
            _, added = txn.cursor(db=db).putmulti(chunk, append=append)
            if added != len(chunk):
                raise StoreError(f"snapshot: {len(chunk) - added} keys out of order")
