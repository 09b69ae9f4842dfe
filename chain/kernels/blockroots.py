"""A block's tx ids, tx root and results root in one numba call that frees the GIL.

Why: ``chain.assemble`` hashed the txs (one kernel call), then the tx root (a kernel that
reads the ids' ``bytes`` objects and so holds the GIL), then the results tree (its
leaves laid out by numpy, then two kernel calls): a dozen Python steps a block, all
under the GIL that the store's writer thread needs for the block before. Here the ids'
state words go straight into both trees, in the lane layout of ``sha256``'s kernels,
whose pieces this reuses (so the hashing is theirs, bit for bit).

The trees are RFC 9162's: ``tx_root`` over the leaf hashes ``SHA-256(0x00 || tx)``,
``results_root`` over the leaf hashes of ``tx_id || result`` (``result`` 2 bytes
big-endian), as ``chain.block.results_root``. ``tests/kernels/test_blockroots.py`` holds
them to the reference backend. Public data only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numba import njit, types

from chain.kernels import (
    cachekey,  # noqa: F401  (before any cached kernel is defined)
    sha256,
)

_BYTES_RO = types.Array(types.uint8, 1, "C", readonly=True)
_INT64_RO = types.Array(types.int64, 1, "C", readonly=True)
_U = np.uint32
_LANES = sha256.LANES
_ROW = sha256.ROW
_RESULT_LEAF_BITS = (1 + 32 + 2) * 8
"""A results leaf hashed: ``0x00 || tx_id || result``, 35 bytes, so one padded block."""


@njit(inline="always")
def _root_of_words(words, n, out):
    """``out[0:8]`` = the RFC 9162 root over the ``n`` (>= 1) hashes whose state words
    are ``words[8*i : 8*i+8]`` (``sha256.merkle_root_words``, from words, not bytes)."""
    levels = sha256._tree_levels(n)
    lv = np.empty(levels * 8 * _ROW, dtype=np.uint32)
    count = np.zeros(levels, dtype=np.int64)
    k = 0
    for i in range(n):
        for r in range(8):
            lv[r * _ROW + k] = words[8 * i + r]
        k += 1
        if k == _ROW:
            sha256._carry(lv, count)
            k = 0
    sha256._finish(lv, count, levels, k, out)


@njit(inline="always")
def _result_leaves(ids, results, n, leaves):
    """``leaves[8*i : 8*i+8]`` = state words of ``SHA-256(0x00 || id_i || result_i)``,
    sixteen at a time: the message is the id's words shifted right one byte behind the
    0x00, then its last byte, the 2-byte result and 0x80, zeros, and the length."""
    st = np.empty(8 * _LANES, dtype=np.uint32)
    w = np.zeros(16 * _LANES, dtype=np.uint32)
    for g0 in range(0, n, _LANES):
        for j in range(_LANES):
            i = min(g0 + j, n - 1)
            src = 8 * i
            prev = _U(0)
            for t in range(8):
                cur = ids[src + t]
                w[t * _LANES + j] = _U(_U(prev << _U(24)) | _U(cur >> _U(8)))
                prev = cur
            w[8 * _LANES + j] = _U(_U(prev << _U(24)) | _U(_U(results[i]) << _U(8)) | _U(0x80))
            for t in range(9, 15):
                w[t * _LANES + j] = _U(0)
            w[15 * _LANES + j] = _U(_RESULT_LEAF_BITS)
        sha256._init_state(st)
        sha256._compress(st, w)
        for j in range(min(_LANES, n - g0)):
            for r in range(8):
                leaves[8 * (g0 + j) + r] = st[r * _LANES + j]


@njit(
    types.void(_BYTES_RO, types.int64[::1], types.int64[::1], _INT64_RO, types.uint8[::1],
               types.uint32[::1]),
    cache=True,
    nogil=True,
)  # fmt: skip
def block_roots_into(txs, offsets, order, results, ids, roots):
    """For the ``n`` txs ``txs[offsets[i]:offsets[i+1]]`` (n >= 1; ``order`` sorts them by
    length, as ``sha256.sha256_many`` takes them) and their result codes (0..65535):
    ``ids`` (32 n bytes) = their leaf hashes end to end, ``roots[0:8]`` = the tx root's
    state words, ``roots[8:16]`` = the results root's."""
    n = offsets.shape[0] - 1
    words = np.empty(8 * n, dtype=np.uint32)
    sha256.sha256_many(txs, offsets, 0, order, words)
    for i in range(8 * n):
        v = words[i]
        ids[4 * i] = np.uint8(v >> _U(24))
        ids[4 * i + 1] = np.uint8((v >> _U(16)) & _U(0xFF))
        ids[4 * i + 2] = np.uint8((v >> _U(8)) & _U(0xFF))
        ids[4 * i + 3] = np.uint8(v & _U(0xFF))
    out = np.empty(8, dtype=np.uint32)
    _root_of_words(words, n, out)
    roots[0:8] = out
    leaves = np.empty(8 * n, dtype=np.uint32)
    _result_leaves(words, results, n, leaves)
    _root_of_words(leaves, n, out)
    roots[8:16] = out


class BodyArrays(NamedTuple):
    """A block's body as the kernel read it, for a store appending the same block to pack
    its txs and locations from, instead of gathering the txs and converting the results
    again (``Block.body_arrays``)."""

    txs: bytes
    """The txs end to end."""
    lengths: np.ndarray
    """Each tx's length (int64, read-only)."""
    codes: np.ndarray
    """Each tx's result code (int64 in [0, 65536), read-only)."""


def _codes(results: Sequence[int], n: int) -> np.ndarray | None:
    """The result codes as a read-only int64 array, or None unless there are ``n`` (>= 1)
    of them, each an ``int`` in [0, 65536)."""
    if not n or len(results) != n or set(map(type, results)) != {int}:
        return None
    try:
        codes = np.fromiter(results, dtype=np.int64, count=n)
    except OverflowError:  # a code past 2**63
        return None
    if int(codes.min()) < 0 or int(codes.max()) >= 1 << 16:
        return None
    codes.flags.writeable = False
    return codes


def _roots(joined: bytes, lengths: np.ndarray, codes: np.ndarray) -> tuple[bytes, bytes, bytes]:
    n = lengths.shape[0]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    order = np.argsort(lengths, kind="stable").astype(np.int64)
    ids = np.empty(32 * n, dtype=np.uint8)
    roots = np.empty(16, dtype=np.uint32)
    block_roots_into(np.frombuffer(joined, dtype=np.uint8), offsets, order, codes, ids, roots)
    raw = roots.astype(">u4").tobytes()
    return ids.tobytes(), raw[:32], raw[32:]


def body_roots(
    txs: Sequence[bytes], results: Sequence[int]
) -> tuple[bytes, bytes, bytes, BodyArrays] | None:
    """(the txs' ids laid end to end, tx root, results root, the body's arrays), or None
    where the kernel does not apply and the caller takes the general path (which names
    what is wrong): no txs, a count mismatch, or a result that is not an ``int`` in
    [0, 65536)."""
    n = len(txs)
    codes = _codes(results, n)
    if codes is None:
        return None
    lengths = np.fromiter(map(len, txs), dtype=np.int64, count=n)
    lengths.flags.writeable = False
    joined = b"".join(txs)
    return (*_roots(joined, lengths, codes), BodyArrays(joined, lengths, codes))


def packed_roots(
    joined: bytes, lengths: np.ndarray, results: Sequence[int]
) -> tuple[bytes, bytes, bytes] | None:
    """``block_roots`` of the txs given end to end (``joined``) with their ``lengths``
    (int64), as ``storage``'s ``iter_packed`` reads them: no ``bytes`` object per tx.
    None where ``block_roots`` would be None, or the lengths do not cover ``joined``."""
    if lengths.ndim != 1:
        return None
    codes = _codes(results, lengths.shape[0])
    if codes is None or int(lengths.sum()) != len(joined) or int(lengths.min()) < 0:
        return None
    return _roots(joined, np.ascontiguousarray(lengths, dtype=np.int64), codes)


def block_roots(txs: Sequence[bytes], results: Sequence[int]) -> tuple[bytes, bytes, bytes] | None:
    """``body_roots`` without the body's arrays."""
    got = body_roots(txs, results)
    return None if got is None else got[:3]


def warmup() -> bool:
    """Load the kernel (from numba's cache) and run it once: True if it agrees with
    hashlib on a small block (``numba_backend.warmup`` raises if not)."""
    from chain.kernels import reference

    txs = [bytes(range(n)) for n in (0, 55, 56, 200)]
    results = [0, 1, 255, 65535]
    ids = reference.leaf_hashes(txs)
    leaves = [i + r.to_bytes(2, "big") for i, r in zip(ids, results, strict=True)]
    want = (
        b"".join(ids),
        reference.merkle_root(ids),
        reference.merkle_root(reference.leaf_hashes(leaves)),
    )
    return block_roots(txs, results) == want
