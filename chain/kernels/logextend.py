"""A block's extension of the log's Merkle tree in one numba call that frees the GIL.

Why: ``Frontier.extend_levels`` hashed a block's new log nodes a level at a time: per
level a join, a kernel call (which frees and retakes the GIL) and a split back into
``bytes``, about ten levels a block, mostly Python under the GIL that the store's writer
thread needs for the block before. Here every level is hashed in one call: the frontier's
nodes that the new leaves pair with, the leaves end to end, and out come every level's
completed nodes end to end (with each level's offset) and the new frontier.

The tree is RFC 9162's (node ``SHA-256(0x01 || l || r)``), hashed by ``sha256``'s
``_node_level`` (so the hashing is its own, bit for bit); the walk is
``Frontier.extend_levels``'s, step for step: at each level a left sibling from the
frontier first when the level's first node is a right child, the last node onto the new
frontier when the count is odd, then the pairs. ``tests/kernels/test_logextend.py`` holds
it to the Python path and hashlib. Public data only.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from chain.kernels import (
    cachekey,  # noqa: F401  (before any cached kernel is defined)
    sha256,
)

_BYTES_RO = types.Array(types.uint8, 1, "C", readonly=True)
_U = np.uint32
LEVELS_MAX = 64
"""A frontier of a log below 2**63 leaves has at most 63 nodes; a block at most 63 levels."""


@njit(inline="always")
def _load(src, h, dst, d):
    """``dst[8d : 8d+8]`` = the state words (big-endian) of hash ``h`` of ``src``."""
    for t in range(8):
        q = 32 * h + 4 * t
        dst[8 * d + t] = _U(
            _U(_U(src[q]) << _U(24))
            | _U(_U(src[q + 1]) << _U(16))
            | _U(_U(src[q + 2]) << _U(8))
            | _U(src[q + 3])
        )


@njit(inline="always")
def _store(src, s, dst, d):
    """Hash ``d`` of ``dst`` (bytes) = the state words ``src[8s : 8s+8]``."""
    for t in range(8):
        v = src[8 * s + t]
        q = 32 * d + 4 * t
        dst[q] = np.uint8(v >> _U(24))
        dst[q + 1] = np.uint8((v >> _U(16)) & _U(0xFF))
        dst[q + 2] = np.uint8((v >> _U(8)) & _U(0xFF))
        dst[q + 3] = np.uint8(v & _U(0xFF))


@njit(
    types.int64(_BYTES_RO, types.int64, _BYTES_RO, types.uint8[::1], types.int64[::1],
                types.uint8[::1]),
    cache=True,
    nogil=True,
)  # fmt: skip
def extend_into(frontier, size, leaves, out, offsets, new_frontier):
    """Append the ``n`` (>= 1) 32-byte ``leaves`` to the tree of ``size`` leaves whose
    frontier is ``frontier`` (its ``popcount(size)`` nodes, largest first, end to end).

    ``out`` gets the completed nodes of level 1 and up, level by level, each level's in
    index order: level ``L``'s are hashes ``[offsets[L-1], offsets[L])`` of ``out``
    (``offsets[0]`` = 0); ``new_frontier`` gets the frontier after, largest first.
    Returns ``levels``: the number of levels with completed nodes, the leaves' included
    (``offsets[0 : levels]`` are set). ``out`` holds ``n + 64`` hashes, ``new_frontier`` 64,
    ``offsets`` 65 entries."""
    n = leaves.shape[0] // 32
    kept = frontier.shape[0] // 32  # frontier nodes not yet consumed (a prefix)
    cur = np.empty(8 * (n + 1), dtype=np.uint32)
    low = np.empty(8 * LEVELS_MAX, dtype=np.uint32)  # new frontier nodes, lowest first
    n_low = 0
    s = size  # the index of the level's first completed node
    m = 0
    if s & 1:  # the first leaf is a right child: its sibling is on the frontier
        kept -= 1
        _load(frontier, kept, cur, 0)
        m = 1
    for i in range(n):
        _load(leaves, i, cur, m + i)
    m += n
    levels = 1
    offsets[0] = 0
    at = 0
    while True:
        if m & 1:  # the last one has no sibling yet: it joins the frontier
            m -= 1
            for t in range(8):
                low[8 * n_low + t] = cur[8 * m + t]
            n_low += 1
        pairs = m // 2
        if pairs == 0:
            break
        sha256._node_level(cur, pairs)
        for i in range(pairs):
            _store(cur, i, out, at + i)
        at += pairs
        offsets[levels] = at
        levels += 1
        s >>= 1
        m = pairs
        if s & 1:  # the level's first node is a right child: prepend its sibling
            for q in range(8 * m - 1, -1, -1):
                cur[q + 8] = cur[q]
            kept -= 1
            _load(frontier, kept, cur, 0)
            m += 1
    for q in range(32 * kept):
        new_frontier[q] = frontier[q]
    for i in range(n_low):
        _store(low, n_low - 1 - i, new_frontier, kept + i)
    return levels


def extend(frontier: bytes, size: int, leaves: bytes) -> tuple[bytes, list[int], bytes]:
    """``(completed nodes of level 1 and up end to end, per-level end offsets in hashes,
    the new frontier end to end)`` for ``extend_into``: level ``L >= 1`` holds hashes
    ``[ends[L-1], ends[L])`` of the first, ``ends[0]`` = 0 (the leaves are level 0).
    ``leaves`` is at least one 32-byte hash; ``size + n`` is below 2**62."""
    n = len(leaves) // 32
    out = np.empty(32 * (n + LEVELS_MAX), dtype=np.uint8)
    offsets = np.empty(LEVELS_MAX + 1, dtype=np.int64)
    new_frontier = np.empty(32 * LEVELS_MAX, dtype=np.uint8)
    levels = extend_into(
        np.frombuffer(frontier, dtype=np.uint8),
        size,
        np.frombuffer(leaves, dtype=np.uint8),
        out,
        offsets,
        new_frontier,
    )
    ends = offsets[:levels].tolist()
    count = (size + n).bit_count()
    return out[: 32 * ends[-1]].tobytes(), ends, new_frontier[: 32 * count].tobytes()


def warmup() -> bool:
    """Load the kernel (from numba's cache) and run it once: True if it agrees with
    hashlib on a small extension (``numba_backend.warmup`` raises if not)."""
    from chain.kernels import reference

    leaves = reference.leaf_hashes([bytes([i]) for i in range(7)])
    first = reference.merkle_root(leaves[:4])  # a tree of 5: nodes of 4 and 1 leaves
    nodes, ends, after = extend(first + leaves[4], 5, b"".join(leaves[5:]))
    pair = reference.node_hashes(leaves[4] + leaves[5])
    want_after = first + pair + leaves[6]  # the tree of 7: nodes of 4, 2 and 1 leaves
    return nodes == pair and ends == [0, 1] and after == want_after
