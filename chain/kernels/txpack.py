"""A block's txs packed into page-sized store values in one numba call that frees the GIL.

Why: the store keeps a block's txs as whole txs packed greedily into values of at most a
page (``storage.lmdb_store._txs_items``: the tx count, each tx's end counted from the
value's start, u32 big-endian, then the txs end to end). Built in Python that is ~60
values of per-value steps a block of 1,000 txs, ~0.6 ms under the GIL on the caller's
thread (~0.6 s per 1M txs appended), where the GIL is what an append waits for. Here the
bounds, the headers and the copy are one loop; Python only joins the txs and slices
the result.

Byte for byte ``_txs_items``'s values (``tests/kernels/test_txpack.py`` holds it to
that function). ``unpack`` reads a block's values back as the txs end to end and their
lengths, with ``_txs_of``'s frame checks, for ``verify`` (``LmdbBlockStore.iter_packed``:
no ``bytes`` object per tx). Public data only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numba import njit, types

from chain.kernels import cachekey  # noqa: F401  (before any cached kernel is defined)

_BYTES_RO = types.Array(types.uint8, 1, "C", readonly=True)
_I64_RO = types.Array(types.int64, 1, "C", readonly=True)
VALUE_END_MAX = (1 << 32) - 1
"""A value's ends are u32: one whose last end would pass this is refused (-1)."""


@njit(inline="always")
def _put_u32(out, at, v):
    out[at] = np.uint8((v >> 24) & 0xFF)
    out[at + 1] = np.uint8((v >> 16) & 0xFF)
    out[at + 2] = np.uint8((v >> 8) & 0xFF)
    out[at + 3] = np.uint8(v & 0xFF)


@njit(
    types.int64(_BYTES_RO, _I64_RO, types.int64, types.uint8[::1], types.int64[::1],
                types.int64[::1]),
    cache=True,
    nogil=True,
)  # fmt: skip
def pack_into(data, lens, room, out, firsts, sizes):
    """Pack the txs (``lens[i]`` bytes each, end to end in ``data``) greedily into values
    of at most ``room + 4`` bytes: as many whole txs as fit with their 4-byte ends, at
    least one. Value ``k`` starts at tx ``firsts[k]``, is ``sizes[k]`` bytes, and follows
    value ``k - 1`` in ``out`` (``len(data) + 8 * n`` bytes suffice). Returns the number
    of values, or -1 if a value's end would not fit a u32 (nothing is then promised)."""
    n = lens.shape[0]
    i = 0
    k = 0
    o = 0
    src = 0
    while i < n:
        first = i
        used = lens[i] + 4
        i += 1
        while i < n and used + lens[i] + 4 <= room:
            used += lens[i] + 4
            i += 1
        count = i - first
        end = 4 + 4 * count
        body = 0
        for j in range(first, i):
            body += lens[j]
        if end + body > VALUE_END_MAX:
            return -1
        _put_u32(out, o, count)
        for j in range(first, i):
            end += lens[j]
            _put_u32(out, o + 4 + 4 * (j - first), end)
        at = o + 4 + 4 * count
        # An element loop over two views: numba runs ``out[a:b] = data[c:d]`` a byte at a
        # time (~80 us a block), and a loop indexed ``at + j`` checks each index's sign;
        # indexed from 0, LLVM vectorizes it (~5 us).
        dst = out[at : at + body]
        part = data[src : src + body]
        for j in range(body):
            dst[j] = part[j]
        src += body
        firsts[k] = first
        sizes[k] = end
        k += 1
        o += end
    return k


@njit(inline="always")
def _get_u32(raw, at):
    return (
        (np.int64(raw[at]) << 24)
        | (np.int64(raw[at + 1]) << 16)
        | (np.int64(raw[at + 2]) << 8)
        | np.int64(raw[at + 3])
    )


@njit(
    types.int64(_BYTES_RO, _I64_RO, types.uint8[::1], types.int64[::1]),
    cache=True,
    nogil=True,
)  # fmt: skip
def unpack_into(raw, sizes, out, lengths):
    """``pack_into`` undone: the txs of values laid end to end in ``raw`` (value ``k`` is
    ``sizes[k]`` bytes) end to end into ``out`` (``len(raw)`` bytes suffice), each tx's
    length into ``lengths``. Returns the number of txs, or -1 if a value's frame is
    damaged (no txs, no room for its ends, an end before the one before it or before
    its txs, the last end not the value's end) or the txs outnumber ``lengths``: the
    checks ``storage.lmdb_store._txs_of`` makes, whose caller then names the damage."""
    cap = lengths.shape[0]
    at = 0
    o = 0
    t = 0
    for k in range(sizes.shape[0]):
        size = sizes[k]
        n = _get_u32(raw, at) if size >= 4 else 0
        head = 4 + 4 * n
        if n == 0 or head > size or t + n > cap:
            return -1
        prev = head
        for j in range(n):
            end = _get_u32(raw, at + 4 + 4 * j)
            if end < prev:
                return -1
            lengths[t + j] = end - prev
            prev = end
        if prev != size:
            return -1
        body = size - head
        dst = out[o : o + body]  # an element loop over views: see pack_into
        part = raw[at + head : at + size]
        for j in range(body):
            dst[j] = part[j]
        o += body
        t += n
        at += size
    return t


def unpack(values: Sequence[Any], count: int) -> tuple[bytes, np.ndarray] | None:
    """(the txs end to end, each tx's length (int64)) of ``count`` txs packed in
    ``values`` (bytes or buffers, in order), or None if a value's frame is damaged or
    they do not hold exactly ``count`` txs (the caller's Python path names what)."""
    raw = b"".join(values)
    sizes = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    sizes.flags.writeable = False  # they sum to len(raw): the kernel reads inside it
    out = np.empty(len(raw), dtype=np.uint8)
    lengths = np.empty(count, dtype=np.int64)
    if unpack_into(np.frombuffer(raw, dtype=np.uint8), sizes, out, lengths) != count:
        return None
    lengths.flags.writeable = False
    return out[: int(lengths.sum())].tobytes(), lengths


def pack(
    txs: Sequence[bytes], room: int, joined: bytes | None = None, lengths: np.ndarray | None = None
) -> tuple[bytes, list[int], list[int]] | None:
    """``(the values end to end, each value's first tx, each value's size)`` for the txs
    (at least one), values of at most ``room + 4`` bytes; None if a value's ends would
    not fit a u32 (the caller's Python path names it). ``joined`` and ``lengths`` (int64,
    read-only), where the caller has them: the txs end to end and their lengths."""
    n = len(txs)
    if joined is None or lengths is None:
        joined = b"".join(txs)
        lengths = np.fromiter(map(len, txs), dtype=np.int64, count=n)
        lengths.flags.writeable = False
    elif lengths.shape != (n,) or len(joined) != int(lengths.sum()):
        raise ValueError(f"{lengths.shape} lengths, {len(joined)} bytes for {n} txs")
    data = np.frombuffer(joined, dtype=np.uint8)
    out = np.empty(data.shape[0] + 8 * n, dtype=np.uint8)
    firsts = np.empty(n, dtype=np.int64)
    sizes = np.empty(n, dtype=np.int64)
    k = pack_into(data, lengths, room, out, firsts, sizes)
    if k < 0:
        return None
    total = int(sizes[:k].sum())
    return out[:total].tobytes(), firsts[:k].tolist(), sizes[:k].tolist()


def warmup() -> bool:
    """Load the kernel (from numba's cache) and run it once: True if it packs a small
    block as the layout says (``numba_backend.warmup`` raises if not)."""
    packed = pack([b"ab", b"", b"cde"], 12)  # "ab" and "" fit 12 bytes, "cde" does not
    first = b"\0\0\0\2" + b"\0\0\0\x0e" * 2 + b"ab"
    second = b"\0\0\0\1\0\0\0\x0bcde"
    back = unpack([first, second], 3)
    return (
        packed == (first + second, [0, 2], [14, 11])
        and back is not None
        and (back[0], back[1].tolist()) == (b"abcde", [2, 0, 3])
    )
