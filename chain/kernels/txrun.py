"""The tx index's runs built in numba, without the GIL: entries sorted by id, and a run's
Bloom filter bits (``storage/txruns.py`` and ``storage/txfilter.py`` hold the numpy
twins these must equal byte for byte; ``tests/kernels/test_txrun.py`` holds them to it).

Why: the store sorts a run of 65,536 ids (and a merge's 1,048,576) and sets its
filter's bits. In numpy that is a dozen calls, several of which hold the GIL, while the
thread that assembles the next block waits for it; here it is one call each that
releases it, and a bucket sort on the ids' leading bits (random: SHA-256 outputs) rather
than a comparison sort. (A k-way merge of a merge's 16 sorted runs was tried: no faster
than this sort of them together, whose cost is mostly the rows' copy.)

Order: ids in lexicographic byte order; equal ids (never in a run: the store refuses a
duplicate) keep their input order, as numpy's stable sorts do. Public data only.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from chain.kernels import cachekey  # noqa: F401  (before any cached kernel is defined)
from chain.kernels.prefetch import prefetch

ID_BYTES = 32
_BYTES_RO = types.Array(types.uint8, 1, "C", readonly=True)
_ROWS_RO = types.Array(types.uint8, 2, "C", readonly=True)


@njit(inline="always")
def _key(ids, at):
    """The 8 bytes at ``ids[at:at+8]`` as a big-endian unsigned number."""
    k = np.uint64(0)
    for b in range(8):
        k = (k << np.uint64(8)) | np.uint64(ids[at + b])
    return k


@njit(inline="always")
def _less(ids, stride, a, b):
    """Id ``a`` before id ``b`` (bytes 8..31; the first 8 are equal), or the same id
    and ``a`` earlier in the input."""
    pa, pb = a * stride, b * stride
    for j in range(8, ID_BYTES):
        x, y = ids[pa + j], ids[pb + j]
        if x != y:
            return x < y
    return a < b


BUCKET_BITS_MAX = 20
"""The most leading key bits ``_order`` buckets on (a count table of 8 MiB)."""
BUCKET_SORT_MAX = 32
"""A bucket of at most this many ids is sorted by insertion; a larger one (ids ground to
share their leading bits) by the byte-wise radix sort, so no input costs n**2."""


@njit(inline="always")
def _radix(keys, order, spare, counts, lo, hi, passes):
    """Sort ``order[lo:hi]`` (indices into ``keys``) by key, stably: an LSD radix sort of
    the low ``passes`` bytes (a byte a pass, a pass whose byte is the same in every key
    skipped). Sorted in place (``spare[lo:hi]`` is scratch)."""
    m = hi - lo
    for p in range(passes):
        shift = np.uint64(8 * p)
        counts[:] = 0
        for i in range(lo, hi):
            counts[np.int64((keys[order[i]] >> shift) & np.uint64(0xFF)) + 1] += 1
        if counts.max() == m:
            continue
        for d in range(256):
            counts[d + 1] += counts[d]
        for i in range(lo, hi):
            o = order[i]
            digit = np.int64((keys[o] >> shift) & np.uint64(0xFF))
            spare[lo + counts[digit]] = o
            counts[digit] += 1
        for i in range(lo, hi):
            order[i] = spare[i]


@njit(inline="always")
def _order(ids, stride, n):
    """The order that sorts the ``n`` ids found every ``stride`` bytes of ``ids``. Their
    first 8 bytes are the key: the ids go into ~n buckets by the key's leading bits (a
    counting sort, stable), each bucket is then sorted by key (insertion, or the radix
    sort past ``BUCKET_SORT_MAX``), and each group sharing a key is ordered on the rest
    by insertion (such a group takes a 2^64 search to make: a pair, at most). Ids are
    SHA-256 outputs: uniform leading bits, so buckets of ~1 id; two passes over the ids
    where the byte-wise radix sort made sixteen (~4x faster at a run's 65,536)."""
    keys = np.empty(n, dtype=np.uint64)
    for i in range(n):
        keys[i] = _key(ids, i * stride)
    bits = 1
    while bits < BUCKET_BITS_MAX and (2 << bits) <= n:
        bits += 1
    shift = np.uint64(64 - bits)
    starts = np.zeros((1 << bits) + 1, dtype=np.int64)
    for i in range(n):
        starts[np.int64(keys[i] >> shift) + 1] += 1
    for b in range(1 << bits):
        starts[b + 1] += starts[b]
    order = np.empty(n, dtype=np.int64)
    fill = starts[:-1].copy()
    for i in range(n):
        into = np.int64(keys[i] >> shift)
        order[fill[into]] = i
        fill[into] += 1
    spare = np.empty(n, dtype=np.int64)
    counts = np.empty(257, dtype=np.int64)
    for bucket in range(1 << bits):
        lo, hi = starts[bucket], starts[bucket + 1]
        if hi - lo <= 1:
            continue
        if hi - lo > BUCKET_SORT_MAX:
            _radix(keys, order, spare, counts, lo, hi, 8)
            continue
        for a in range(lo + 1, hi):
            cur = order[a]
            k = keys[cur]
            j = a - 1
            while j >= lo and keys[order[j]] > k:
                order[j + 1] = order[j]
                j -= 1
            order[j + 1] = cur
    i = 0
    while i < n - 1:
        if keys[order[i]] != keys[order[i + 1]]:
            i += 1
            continue
        end = i + 1
        while end < n and keys[order[end]] == keys[order[i]]:
            end += 1
        for a in range(i + 1, end):
            cur = order[a]
            b = a - 1
            while b >= i and _less(ids, stride, cur, order[b]):
                order[b + 1] = order[b]
                b -= 1
            order[b + 1] = cur
        i = end
    return order


@njit(types.void(_BYTES_RO, _BYTES_RO, types.uint8[:, ::1]), cache=True, nogil=True)
def sort_entries_into(ids, locs, out):
    """``out[k]`` = the k-th entry ``id || location`` in id order, of the ``n`` 32-byte
    ids and the locations (``out.shape[1] - 32`` bytes each) laid end to end."""
    n = out.shape[0]
    loc_bytes = out.shape[1] - ID_BYTES
    order = _order(ids, ID_BYTES, n)
    for k in range(n):
        i = order[k]
        a = i * ID_BYTES
        for j in range(ID_BYTES):
            out[k, j] = ids[a + j]
        a = i * loc_bytes
        for j in range(loc_bytes):
            out[k, ID_BYTES + j] = locs[a + j]


@njit(types.void(_ROWS_RO, types.uint8[:, ::1]), cache=True, nogil=True)
def sort_rows_into(rows, out):
    """``out`` = ``rows`` (each starting with its 32-byte id) in id order."""
    n, width = rows.shape
    order = _order(rows.ravel(), width, n)
    for k in range(n):
        i = order[k]
        for j in range(width):
            out[k, j] = rows[i, j]


@njit(types.boolean(_BYTES_RO), cache=True, nogil=True)
def repeats_in(ids):
    """Whether the 32-byte ids laid end to end in ``ids`` hold one id twice: sorted
    (``_order``), a repeat is two neighbours."""
    n = ids.shape[0] // ID_BYTES
    order = _order(ids, ID_BYTES, n)
    for k in range(n - 1):
        a, b = order[k] * ID_BYTES, order[k + 1] * ID_BYTES
        same = True
        for j in range(ID_BYTES):
            if ids[a + j] != ids[b + j]:
                same = False
                break
        if same:
            return True
    return False


@njit(inline="always")
def _filter_position(ids, at, j, mask):
    """Bit position ``j`` (0-3) in a run filter of the id at ``at``: its ``j``-th big-endian
    32-bit word, masked (``storage.txfilter.TxFilter.positions``), defined once for the
    kernel that sets a filter's bits and the one that tests them."""
    w = np.uint32(0)
    for b in range(4):
        w = np.uint32((w << np.uint32(8)) | np.uint32(ids[at + 4 * j + b]))
    return np.int64(w & mask)


@njit(types.void(_BYTES_RO, types.int64, types.uint8[::1]), cache=True, nogil=True)
def filter_bits_into(ids, bits_log2, out):
    """``out`` (``2**bits_log2 / 8`` bytes, zeroed) = the packed Bloom filter of the
    32-byte ids laid end to end: bit ``w & mask`` set for each of an id's first four
    big-endian 32-bit words ``w``, the first bit the high bit of a byte (``np.packbits``)."""
    mask = np.uint32((1 << bits_log2) - 1)
    for i in range(ids.shape[0] // ID_BYTES):
        at = i * ID_BYTES
        for j in range(4):
            p = _filter_position(ids, at, j, mask)
            out[p >> 3] |= np.uint8(0x80 >> (p & 7))


def sorted_entries(ids: bytes, locations: bytes, loc_bytes: int) -> np.ndarray:
    """The ``(n, 32 + loc_bytes)`` entries of the ``n`` 32-byte ids and locations laid
    end to end, sorted by id (``storage.txruns.entries``)."""
    n = len(ids) // ID_BYTES
    if len(ids) != n * ID_BYTES or len(locations) != n * loc_bytes:
        raise ValueError("ids and locations of different counts")
    out = np.empty((n, ID_BYTES + loc_bytes), dtype=np.uint8)
    if n:
        sort_entries_into(
            np.frombuffer(ids, dtype=np.uint8), np.frombuffer(locations, dtype=np.uint8), out
        )
    return out


def sorted_rows(rows: np.ndarray) -> np.ndarray:
    """``rows`` (``(n, w)`` uint8, each starting with its 32-byte id) sorted by id
    (``storage.txruns.merge`` of one array)."""
    src = np.ascontiguousarray(rows, dtype=np.uint8)
    if src.ndim != 2 or src.shape[1] < ID_BYTES:
        raise ValueError("rows of at least 32 bytes")
    out = np.empty_like(src)
    if src.shape[0]:
        view = src.view()
        view.flags.writeable = False  # the kernel's signature: read-only rows
        sort_rows_into(view, out)
    return out


def has_repeat(ids: bytes) -> bool:
    """Whether the 32-byte ids laid end to end in ``ids`` hold one id twice (a block's
    own duplicate check, ``storage.appendcheck``), in one call that frees the GIL."""
    if len(ids) % ID_BYTES:
        raise ValueError("32-byte ids")
    return len(ids) > ID_BYTES and bool(repeats_in(np.frombuffer(ids, dtype=np.uint8)))


def filter_bits(ids: bytes, bits_log2: int) -> bytes:
    """``storage.txfilter.TxFilter.bits_of_joined(ids, bits_log2)``."""
    if len(ids) % ID_BYTES or not 3 <= bits_log2 <= 32:
        raise ValueError("32-byte ids, and 2**3 to 2**32 filter bits")
    out = np.zeros(1 << (bits_log2 - 3), dtype=np.uint8)
    filter_bits_into(np.frombuffer(ids, dtype=np.uint8), bits_log2, out)
    return out.tobytes()


_MIX = np.uint64(0x9E3779B97F4A7C15)
PROBES_MAX = 64
"""A lookup that has probed this many slots answers "maybe" (ids ground to share slots
cost the caller an exact check, never a wrong answer, and never a long probe here)."""


@njit(inline="always")
def _slot_key(ids, at):
    k = _key(ids, at)
    return k if k else np.uint64(1)  # 0 marks an empty slot: 0 stands in for itself as 1


@njit(types.int64(types.uint64[::1], types.int64, _BYTES_RO), cache=True, nogil=True)
def keys_add(table, bits, ids):
    """Add the first 8 bytes of each 32-byte id in ``ids`` to ``table`` (``2**bits``
    slots, open addressing with linear probing, 0 = empty; the caller keeps it at most
    half full); returns how many were not there yet."""
    mask = (1 << bits) - 1
    shift = np.uint64(64 - bits)
    added = 0
    for i in range(ids.shape[0] // ID_BYTES):
        k = _slot_key(ids, i * ID_BYTES)
        s = np.int64((k * _MIX) >> shift)
        while table[s] != 0 and table[s] != k:
            s = (s + 1) & mask
        if table[s] == 0:
            table[s] = k
            added += 1
    return added


@njit(types.boolean(types.uint64[::1], types.int64, _BYTES_RO), cache=True, nogil=True)
def keys_any(table, bits, ids):
    """True if the first 8 bytes of an id in ``ids`` are in ``table`` (``keys_add``), or
    a probe ran past ``PROBES_MAX`` slots: False means none of the ids was added."""
    mask = (1 << bits) - 1
    shift = np.uint64(64 - bits)
    for i in range(ids.shape[0] // ID_BYTES):
        k = _slot_key(ids, i * ID_BYTES)
        s = np.int64((k * _MIX) >> shift)
        probes = 0
        while table[s] != 0:
            if table[s] == k or probes == PROBES_MAX:
                return True
            probes += 1
            s = (s + 1) & mask
    return False


class IdKeys:
    """The first 8 bytes of a set of tx ids, for a check that frees the GIL: ``may_hold``
    False means none of the ids given was added since the last ``reset``; True means
    "maybe" (the caller looks them up exactly). Past half full it stops adding and
    answers True until the next ``reset`` that fits."""

    __slots__ = ("_bits", "_count", "_full", "_table")

    def __init__(self, bits: int = 19) -> None:
        self._bits = bits
        self._table = np.zeros(1 << bits, dtype=np.uint64)
        self._count = 0
        self._full = False

    def may_hold(self, ids: bytes) -> bool:
        if self._full:
            return True
        if len(ids) % ID_BYTES:
            raise ValueError("32-byte ids laid end to end")
        return bool(keys_any(self._table, self._bits, np.frombuffer(ids, dtype=np.uint8)))

    def add(self, ids: bytes) -> None:
        if len(ids) % ID_BYTES:
            raise ValueError("32-byte ids laid end to end")
        if self._full:
            return
        if (self._count + len(ids) // ID_BYTES) * 2 > self._table.shape[0]:
            self._full = True
            return
        self._count += keys_add(self._table, self._bits, np.frombuffer(ids, dtype=np.uint8))

    def reset(self, ids: bytes = b"") -> None:
        """Forget every id, then add ``ids``."""
        self._table[:] = 0
        self._count = 0
        self._full = False
        self.add(ids)


CANDIDATES_AHEAD = 16
"""Ids ahead whose filter rows ``candidates_into`` prefetches: a table is 16-256 MiB, so
each of an id's four rows is a cache miss; announced this far ahead, the misses of many
ids overlap instead of one id's at a time (level-0 table, 1,000 ids: ~180 -> ~30 us)."""


@njit(
    types.int64(_BYTES_RO, _ROWS_RO, types.int64, types.int64, types.int64[::1], types.int64[::1]),
    cache=True,
    nogil=True,
)
def candidates_into(ids, rows, bits_log2, columns, which, cols):
    """The (id, column) pairs of a bit-sliced Bloom table that may hold each of the
    32-byte ids laid end to end in ``ids``: ``rows[p]`` is bit position ``p``'s row, its
    bytes little-endian (column ``c`` is bit ``c % 8`` of byte ``c // 8``, whatever the
    table's word size), an id's positions its first four big-endian 32-bit words
    masked to ``bits_log2`` bits, and only columns below ``columns`` count. Pairs go
    into ``which`` and ``cols`` (id ascending, then column); returns how many, or -1
    if they do not fit (nothing else is promised of the outputs then)."""
    mask = np.uint32((1 << bits_log2) - 1)
    width = rows.shape[1]
    cap = which.shape[0]
    n = ids.shape[0] // ID_BYTES
    pos = np.empty(4 * n, dtype=np.int64)
    for i in range(n):
        for j in range(4):
            pos[4 * i + j] = _filter_position(ids, i * ID_BYTES, j, mask)
    for k in range(min(CANDIDATES_AHEAD, n) * 4):
        prefetch(rows[pos[k]], 0)
    found = 0
    for i in range(n):
        if i + CANDIDATES_AHEAD < n:
            for j in range(4):
                prefetch(rows[pos[4 * (i + CANDIDATES_AHEAD) + j]], 0)
        p0, p1, p2, p3 = pos[4 * i], pos[4 * i + 1], pos[4 * i + 2], pos[4 * i + 3]
        for byte in range(width):
            v = rows[p0, byte] & rows[p1, byte] & rows[p2, byte] & rows[p3, byte]
            bit = 0
            while v:
                if v & 1:
                    c = byte * 8 + bit
                    if c < columns:
                        if found == cap:
                            return -1
                        which[found] = i
                        cols[found] = c
                        found += 1
                v = np.uint8(v >> 1)
                bit += 1
    return found


def filter_candidates(
    ids: bytes, rows: np.ndarray, bits_log2: int, columns: int
) -> tuple[np.ndarray, np.ndarray]:
    """(positions in ``ids``, columns) of every pair that a ``storage.txfilter.TxFilter``
    table ``rows`` (``(2**bits_log2, words)``, little-endian words) says may hold, for
    columns below ``columns``: the pairs of ``TxFilter.candidate_pairs``, id ascending
    then column, found in one call that frees the GIL."""
    if len(ids) % ID_BYTES or rows.ndim != 2 or rows.shape[0] != 1 << bits_log2:
        raise ValueError("32-byte ids, and a table of 2**bits_log2 rows")
    if rows.dtype.byteorder == ">" or not rows.flags.c_contiguous:
        raise ValueError("a C-contiguous table of little-endian words")
    view = rows.view(np.uint8)
    view.flags.writeable = False  # the kernel's signature: read-only rows
    src = np.frombuffer(ids, dtype=np.uint8)
    cap = len(ids) // ID_BYTES + 64
    while True:
        which = np.empty(cap, dtype=np.int64)
        cols = np.empty(cap, dtype=np.int64)
        found = candidates_into(src, view, bits_log2, columns, which, cols)
        if found >= 0:
            return which[:found], cols[:found]
        cap = len(ids) // ID_BYTES * max(1, columns)  # every pair: always fits


def warmup() -> None:
    """Load every kernel here (from numba's cache) and run it once."""
    ids = bytes(range(64))
    sorted_entries(ids, bytes(44), 22)
    sorted_rows(np.zeros((2, 54), dtype=np.uint8))
    if has_repeat(ids) or not has_repeat(ids[:32] * 2):
        raise AssertionError("has_repeat is wrong on a small input")
    filter_bits(ids, 8)
    filter_candidates(ids, np.zeros((1 << 8, 1), dtype=np.uint64), 8, 1)
    keys = IdKeys(bits=4)
    keys.add(ids)
    if not keys.may_hold(ids[:32]):
        raise AssertionError("IdKeys lost an id")
