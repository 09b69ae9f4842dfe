"""Multi-buffer SHA-256 in numba: many independent messages hashed side by side.

Why multi-buffer: one SHA-256 compression is a serial chain of 64 rounds, so a single
message cannot use SIMD; sixteen *independent* messages can, one per 32-bit lane. Every
kernel below keeps the lane loop innermost with a straight-line body over flat arrays
with constant offsets, which is the shape LLVM auto-vectorizes (see
``docs/kernels.md``). Portable code only: no SHA-NI, so no CPU can abort on it;
the host's own vector width is what numba compiles for (and the cache is keyed on it).

Every expression is cast back to ``uint32`` because numba widens integer arithmetic and
the widened form does not vectorize to 32-bit lanes.

Public data only (leaves, Merkle nodes): nothing here is constant-time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
from numba import njit, types

from chain.kernels import (
    cachekey,  # noqa: F401  (before any cached kernel is defined)
    pyobjects,
    reference,
)
from chain.kernels.hasharray import HashArray, split_hashes
from chain.kernels.vectorwidth import prefer_512_bit

LANES = 16
_BYTES_RO = types.Array(types.uint8, 1, "C", readonly=True)
_U = np.uint32
_NL = np.uint64(LANES)
_N1, _N2, _N3, _N4, _N7 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4), np.uint64(7)
_N15, _N16, _N64, _N67 = np.uint64(15), np.uint64(16), np.uint64(64), np.uint64(67)
_SCRATCH = 16 * LANES

K = np.array(
    [
        0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4,
        0xAB1C5ED5, 0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE,
        0x9BDC06A7, 0xC19BF174, 0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F,
        0x4A7484AA, 0x5CB0A9DC, 0x76F988DA, 0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7,
        0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967, 0x27B70A85, 0x2E1B2138, 0x4D2C6DFC,
        0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85, 0xA2BFE8A1, 0xA81A664B,
        0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070, 0x19A4C116,
        0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
        0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7,
        0xC67178F2,
    ],
    dtype=np.uint32,
)  # fmt: skip
IV = np.array(
    [
        0x6A09E667,
        0xBB67AE85,
        0x3C6EF372,
        0xA54FF53A,
        0x510E527F,
        0x9B05688C,
        0x1F83D9AB,
        0x5BE0CD19,
    ],
    dtype=np.uint32,
)


@njit(inline="always")
def _rotr(x, n):
    return _U(_U(x >> _U(n)) | _U(x << _U(32 - n)))


@njit(inline="always")
def _init_state(st):
    for i in range(8):
        v = IV[i]
        for j in range(LANES):
            st[i * LANES + j] = v


NODE_PADDING_WORDS = [0] * 15 + [65 * 8]
"""Words 1-15 of a Merkle node's second block: ``0x01 || l || r`` is 65 bytes, so that
block holds r's last byte and 0x80 (word 0, varying), zeros, and the length in bits."""


def _round_lines(lines: list[str], state: list[str], w: str, tag: str) -> list[str]:
    """Append the 64 rounds of one compression to ``lines``: working variables start as
    the names in ``state``, message words are ``{w}0`` .. ``{w}15`` (the schedule extends
    them to ``{w}63``), new variables are named ``{tag}a1``, ``{tag}e1``, ... Returns the
    names holding a..h after round 64 (to be added to the chaining value)."""
    reg = list(state)
    for t in range(64):
        if t >= 16:
            lines.append(
                f"    {w}{t} = _U(_U(_U(_ssig1({w}{t - 2}) + {w}{t - 7}) + _ssig0({w}{t - 15}))"
                f" + {w}{t - 16})"
            )
        a, b, c, d, e, f, g, h = reg
        lines.append(
            f"    t1 = _U(_U(_U({h} + _bsig1({e})) + _U(_ch({e}, {f}, {g}) + _U({K[t]}))) + {w}{t})"
        )
        lines.append(f"    t2 = _U(_bsig0({a}) + _maj({a}, {b}, {c}))")
        lines.append(f"    {tag}e{t + 1} = _U({d} + t1)")
        lines.append(f"    {tag}a{t + 1} = _U(t1 + t2)")
        reg = [f"{tag}a{t + 1}", a, b, c, f"{tag}e{t + 1}", e, f, g]
    return reg


def _compress_lane_source(padding_block: bool = False) -> str:
    """Source of ``_compress_lane(st, w, j)``: the 64 rounds written out straight-line.
    With ``padding_block``, ``_compress_pad_lane(st, w, j)`` instead: the last block of a
    65-byte message (a Merkle node), whose words 1-15 are constants (zeros, then the bit
    length 520), written as literals so that LLVM folds the schedule words they fix.

    Why generated: LLVM vectorizes the caller's lane loop only over a straight-line body,
    and with every round unrolled the eight working variables and the sixteen live
    schedule words stay in vector registers (a rolled round loop keeps them in memory
    and ran 1.7x slower). Writing 64 rounds by hand would be 400 lines of noise; the
    generated text is the textbook round, renamed per round instead of shifted.
    """
    names = ["a", "b", "c", "d", "e", "f", "g", "h"]
    lines = [f"def _compress{'_pad' if padding_block else ''}_lane(st, w, j):"]
    lines += [f"    {v}0 = st[{i} * _NL + j]" for i, v in enumerate(names)]
    if padding_block:
        lines.append("    w0 = w[j]")
        lines += [f"    w{t} = _U({NODE_PADDING_WORDS[t]})" for t in range(1, 16)]
    else:
        lines += [f"    w{t} = w[{t} * _NL + j]" for t in range(16)]
    reg = _round_lines(lines, [f"{v}0" for v in names], "w", "")
    for i, v in enumerate(reg):
        lines.append(f"    st[{i} * _NL + j] = _U(st[{i} * _NL + j] + {v})")
    return "\n".join(lines) + "\n"


ROW = 32
"""Nodes per level buffer of the Merkle kernels: word t of node k is at ``t * ROW + k``
(structure of arrays), so sixteen pairs fill the sixteen lanes."""


def _node_lane_source() -> str:
    """Source of ``_node_lane(src, sb, dst, db, j)``: lane j's whole RFC 9162 node hash
    ``SHA-256(0x01 || l || r)``, both compressions in one straight-line body, with l and r
    the nodes ``2j`` and ``2j + 1`` of the level buffer at ``src[sb:]`` and the result
    written as node ``j`` of the buffer at ``dst[db:]`` (both laid out by ``ROW``).

    The message words are the pair's sixteen words shifted right by one byte (the 0x01
    prefix enters at the top); the state starts from the IV as literals, stays in
    registers between the two blocks, and the second block's words 1-15 are literals, so
    nothing goes through memory between loading the pair and storing the node.
    """
    lines = ["def _node_lane(src, sb, dst, db, j):", "    i = sb + _N2 * j"]
    for t in range(8):
        lines.append(f"    l{t} = src[i + _ROW{t}]")
        lines.append(f"    r{t} = src[i + _ROW{t} + _N1]")
    halves = [f"l{t}" for t in range(8)] + [f"r{t}" for t in range(8)]
    prev = "_U(0x01)"
    for t in range(16):
        lines.append(f"    w{t} = _U(_U({prev} << _U(24)) | _U({halves[t]} >> _U(8)))")
        prev = halves[t]
    lines.append("    p0 = _U(_U(r7 << _U(24)) | _U(0x00800000))")
    lines += [f"    p{t} = _U({NODE_PADDING_WORDS[t]})" for t in range(1, 16)]
    lines += [f"    iv{k} = _U({IV[k]})" for k in range(8)]
    reg = _round_lines(lines, [f"iv{k}" for k in range(8)], "w", "")
    lines += [f"    m{k} = _U(iv{k} + {reg[k]})" for k in range(8)]
    reg = _round_lines(lines, [f"m{k}" for k in range(8)], "p", "q")
    lines += [f"    dst[db + _ROW{k} + j] = _U(m{k} + {reg[k]})" for k in range(8)]
    return "\n".join(lines) + "\n"


@njit(inline="always")
def _ssig0(x):
    return _U(_rotr(x, 7) ^ _rotr(x, 18) ^ _U(x >> _U(3)))


@njit(inline="always")
def _ssig1(x):
    return _U(_rotr(x, 17) ^ _rotr(x, 19) ^ _U(x >> _U(10)))


@njit(inline="always")
def _bsig0(x):
    return _U(_rotr(x, 2) ^ _rotr(x, 13) ^ _rotr(x, 22))


@njit(inline="always")
def _bsig1(x):
    return _U(_rotr(x, 6) ^ _rotr(x, 11) ^ _rotr(x, 25))


@njit(inline="always")
def _ch(e, f, g):
    return _U(_U(e & f) ^ _U(_U(~e) & g))


@njit(inline="always")
def _maj(a, b, c):
    return _U(_U(a & b) ^ _U(a & c) ^ _U(b & c))


_namespace: dict[str, object] = {
    "_U": _U,
    "_NL": _NL,
    "_ssig0": _ssig0,
    "_ssig1": _ssig1,
    "_bsig0": _bsig0,
    "_bsig1": _bsig1,
    "_ch": _ch,
    "_maj": _maj,
    "_N1": _N1,
    "_N2": _N2,
    **{f"_ROW{t}": np.uint64(t * ROW) for t in range(8)},
}
exec(compile(_compress_lane_source(), "<sha256 rounds>", "exec"), _namespace)
_compress_lane = njit(inline="always")(cast(Callable[..., Any], _namespace["_compress_lane"]))
exec(compile(_compress_lane_source(True), "<sha256 padding rounds>", "exec"), _namespace)
_compress_pad_lane = njit(inline="always")(
    cast(Callable[..., Any], _namespace["_compress_pad_lane"])
)
exec(compile(_node_lane_source(), "<sha256 node rounds>", "exec"), _namespace)
_node_lane = njit(inline="always")(cast(Callable[..., Any], _namespace["_node_lane"]))


@njit(types.void(types.uint32[::1], types.uint32[::1]), cache=True, nogil=True)
def _compress(st, w):
    """One compression in each of the sixteen lanes: ``w[t*16+j]`` is word t (< 16) of
    lane j's block, ``st[r*16+j]`` its chaining state. Unsigned indices: signed ones make
    numba emit negative-index checks that stop vectorizing."""
    prefer_512_bit()
    for j in range(_NL):
        _compress_lane(st, w, j)


@njit(types.void(types.uint32[::1], types.uint32[::1]), cache=True, nogil=True)
def _compress_pad(st, w0):
    """``_compress`` of the sixteen lanes' last node block, given only its word 0 per lane."""
    prefer_512_bit()
    for j in range(_NL):
        _compress_pad_lane(st, w0, j)


@njit(inline="always")
def _bswap(x):
    return _U(
        _U(x >> _U(24))
        | _U(_U(x >> _U(8)) & _U(0xFF00))
        | _U(_U(x << _U(8)) & _U(0xFF0000))
        | _U(x << _U(24))
    )


@njit(inline="always")
def _pad_into(scratch, slot, buf, start, length, prefix, nblocks):
    """Message ``[prefix] || buf[start:start+length]`` padded (``0x80``, zeros, bit
    length) into ``scratch[slot*64 : (slot+nblocks)*64]``. Padding happens per group of
    sixteen messages in a small reused buffer: one padded copy of the whole input would
    cost a page fault per 4 KiB, more than the hashing."""
    p = slot * 64
    end = p + nblocks * 64
    scratch[p:end] = 0
    if prefix >= 0:
        scratch[p] = prefix
        p += 1
    scratch[p : p + length] = buf[start : start + length]
    scratch[p + length] = 0x80
    nbits = (length + (1 if prefix >= 0 else 0)) * 8
    for k in range(8):
        scratch[end - 1 - k] = (nbits >> (8 * k)) & 0xFF


@njit(
    types.void(_BYTES_RO, types.int64[::1], types.int64, types.int64[::1], types.uint32[::1]),
    cache=True,
    nogil=True,
)
def sha256_many(buf, offsets, prefix, order, out):
    """``out[8*i:8*i+8]`` = SHA-256 state words of ``[prefix] || buf[offsets[i]:offsets[i+1]]``
    (``prefix`` in 0..255, or -1 for none). Messages are taken in ``order`` (sorted by
    length, so the sixteen lanes of a group need about the same number of blocks); a lane
    that has finished keeps its state while the others go on."""
    n = offsets.shape[0] - 1
    extra = 1 if prefix >= 0 else 0
    st = np.empty(8 * LANES, dtype=np.uint32)
    saved = np.empty(8 * LANES, dtype=np.uint32)
    w = np.empty(_SCRATCH, dtype=np.uint32)
    msg = np.zeros(LANES, dtype=np.int64)
    nblk = np.zeros(LANES, dtype=np.int64)
    scratch = np.zeros(64 * LANES, dtype=np.uint8)
    for g0 in range(0, n, LANES):
        most = 0
        for j in range(LANES):
            i = order[min(g0 + j, n - 1)]
            msg[j] = i
            nblk[j] = (offsets[i + 1] - offsets[i] + extra + 8) // 64 + 1
            most = max(most, nblk[j])
        if scratch.shape[0] < LANES * most * 64:
            scratch = np.zeros(LANES * most * 64, dtype=np.uint8)
        for j in range(LANES):
            i = msg[j]
            _pad_into(
                scratch, j * most, buf, offsets[i], offsets[i + 1] - offsets[i], prefix, nblk[j]
            )
        words = scratch.view(np.uint32)
        _init_state(st)
        for blk in range(most):
            for j in range(LANES):
                base = (j * most + blk) * 16
                for t in range(16):
                    w[t * LANES + j] = _bswap(words[base + t])
            saved[:] = st
            _compress(st, w)
            for j in range(LANES):
                if blk >= nblk[j]:
                    for r in range(8):
                        st[r * LANES + j] = saved[r * LANES + j]
        for j in range(min(LANES, n - g0)):
            i = msg[j]
            for r in range(8):
                out[8 * i + r] = st[r * LANES + j]


@njit(inline="always")
def _node_level(words, npairs):
    """Replace ``words[0:8*npairs]`` by the RFC 9162 node hashes of consecutive pairs of
    the hashes in ``words[0:16*npairs]``. A node is ``SHA-256(0x01 || l || r)``: 65 bytes,
    so two blocks; the message words are the pair's words shifted right by one byte.
    In place is safe: group g reads hashes [32g, 32g+32) and writes [16g, 16g+16)."""
    st = np.empty(8 * LANES, dtype=np.uint32)
    w = np.empty(_SCRATCH, dtype=np.uint32)
    last = np.empty(LANES, dtype=np.uint32)
    for g0 in range(0, npairs, LANES):
        for j in range(LANES):
            pair = min(g0 + j, npairs - 1)
            src = 16 * pair
            prev = _U(0x01)
            for t in range(16):
                cur = words[src + t]
                w[t * LANES + j] = _U(_U(prev << _U(24)) | _U(cur >> _U(8)))
                prev = cur
            last[j] = prev
        _init_state(st)
        _compress(st, w)
        for j in range(LANES):
            last[j] = _U(_U(last[j] << _U(24)) | _U(0x00800000))
        _compress_pad(st, last)
        for j in range(min(LANES, npairs - g0)):
            dst = 8 * (g0 + j)
            for r in range(8):
                words[dst + r] = st[r * LANES + j]


MERKLE_CHUNK_LEAVES = 1 << 12
"""Leaves (or pairs) per aligned chunk (128 KiB of hashes) where a sequence is packed in
Python before a kernel call: each chunk is a perfect subtree, and one small reused buffer
at a time does not page-fault the way one big fresh buffer would (see ``CHUNK_BYTES``)."""


@njit(inline="always")
def _reduce_levels(words, n):
    """Pair level by level in place until one hash is left in ``words[0:8]``; an odd last
    node moves up unchanged, which gives the RFC's tree (split at the largest power of
    two below the size)."""
    while n > 1:
        npairs = n // 2
        _node_level(words, npairs)
        if n % 2 == 1:
            for r in range(8):
                words[8 * npairs + r] = words[8 * (n - 1) + r]
            n = npairs + 1
        else:
            n = npairs


_ROW_WORDS = 8 * ROW
_LEVEL_WORDS = np.uint64(_ROW_WORDS)
_HALF_ROW = ROW // 2


@njit(
    types.void(types.uint32[::1], types.uint64, types.uint32[::1], types.uint64),
    cache=True,
    nogil=True,
)
def _node_hash16(src, sb, dst, db):
    """Sixteen node hashes at once: the pairs of the 32 nodes of the level buffer at
    ``src[sb:]`` become nodes 0-15 of the level buffer at ``dst[db:]`` (see ``ROW``)."""
    prefer_512_bit()
    for j in range(_NL):
        _node_lane(src, sb, dst, db, j)


@njit(inline="always")
def _tree_levels(n):
    """Level buffers a tree of ``n`` leaves needs: level L holds nodes over 2**L leaves,
    and a carry reaches level L + 1 only after 32 * 2**L leaves."""
    levels = 2
    while n:
        levels += 1
        n >>= 1
    return levels


@njit(inline="always")
def _carry(lv, count):
    """Level 0 is full (32 leaf hashes): hash its pairs into level 1, and on up while a
    level fills, like a binary counter. Every call fills all sixteen lanes."""
    level = 0
    while True:
        above = np.uint64(level + 1) * _LEVEL_WORDS
        _node_hash16(lv, np.uint64(level) * _LEVEL_WORDS, lv, above + np.uint64(count[level + 1]))
        count[level] = 0
        count[level + 1] += _HALF_ROW
        level += 1
        if count[level] < ROW:
            return


@njit(inline="always")
def _level_root(lv, base, m, words):
    """``words[0:8]`` = the RFC 9162 root of the ``m`` nodes in the level buffer at
    ``lv[base:]``, taken as leaves (pairing with odd carries, see ``_reduce_levels``)."""
    for k in range(m):
        for r in range(8):
            words[8 * k + r] = lv[base + r * ROW + k]
    _reduce_levels(words, m)


@njit(inline="always")
def _finish(lv, count, levels, rest, out):
    """The root, from what the stream left: ``rest`` (< 32) leaves in level 0 and, in
    each level L >= 1, none or sixteen nodes, which together are the perfect subtree of
    16 * 2**L leaves that bit L + 4 of the leaf count stands for. Lower levels hold later
    leaves, so folding from level 0 up, ``node(subtree, acc)``, is the RFC's split at the
    largest power of two below each size (``Frontier.root`` does the same)."""
    words = np.empty(8 * ROW, dtype=np.uint32)
    pair = np.empty(16, dtype=np.uint32)  # [subtree, acc]: acc is pair[8:16]
    have = False
    if rest > 0:
        _level_root(lv, 0, rest, words)
        pair[8:16] = words[0:8]
        have = True
    for level in range(1, levels):
        if count[level] == 0:
            continue
        _level_root(lv, level * _ROW_WORDS, count[level], words)
        if have:
            pair[0:8] = words[0:8]
            _reduce_levels(pair, 2)
            pair[8:16] = pair[0:8]
        else:
            pair[8:16] = words[0:8]
            have = True
    out[0:8] = pair[8:16]


@njit(types.void(_BYTES_RO, types.uint32[::1]), cache=True, nogil=True)
def merkle_root_words(leaves, out):
    """RFC 9162 root of the 32-byte leaf hashes concatenated in ``leaves`` (at least one),
    as 8 state words in ``out``. Streamed: leaf hashes go 32 at a time into level 0 of a
    stack of small level buffers, and every full level hashes its sixteen pairs into the
    level above (``_carry``), so every hashing call fills all sixteen lanes, the nodes
    never leave the lane layout, and the working set stays a few KiB whatever ``n``."""
    n = leaves.shape[0] // 32
    levels = _tree_levels(n)
    lv = np.empty(levels * _ROW_WORDS, dtype=np.uint32)
    count = np.zeros(levels, dtype=np.int64)
    k = 0
    for i in range(n):
        for r in range(8):
            q = 32 * i + 4 * r
            lv[r * ROW + k] = _U(
                _U(_U(leaves[q]) << _U(24))
                | _U(_U(leaves[q + 1]) << _U(16))
                | _U(_U(leaves[q + 2]) << _U(8))
                | _U(leaves[q + 3])
            )
        k += 1
        if k == ROW:
            _carry(lv, count)
            k = 0
    _finish(lv, count, levels, k, out)


_AHEAD = 16
"""Objects fetched ahead of the one being read (memory latency over the loop's time)."""


@njit(
    types.int64(types.uint64, types.int64, types.uint64, types.int64[::1], types.uint32[::1]),
    cache=True,
    nogil=False,  # reads Python objects it does not own: see ``pyobjects``
)
def merkle_root_objects(items, n, bytes_type, offsets, out):
    """``merkle_root_words`` over ``n`` (>= 1) ``bytes`` objects whose addresses are the
    words at ``items``, each read where it lies. ``offsets`` = [type, size, data] field
    offsets of a ``bytes`` object. Returns -1 with the root in ``out``, or the index of
    the first element that is not a 32-byte ``bytes`` (nothing is read past its type)."""
    type_at, size_at, data_at = offsets[0], offsets[1], offsets[2]
    levels = _tree_levels(n)
    lv = np.empty(levels * _ROW_WORDS, dtype=np.uint32)
    count = np.zeros(levels, dtype=np.int64)
    k = 0
    for i in range(n):
        if i + _AHEAD < n:
            ahead = pyobjects.load(items + np.uint64(8 * (i + _AHEAD)), np.uint64(0))
            pyobjects.prefetch(ahead + np.uint64(data_at))
        obj = pyobjects.load(items + np.uint64(8 * i), np.uint64(0))
        if pyobjects.load(obj + np.uint64(type_at), np.uint64(0)) != bytes_type:
            return i
        if pyobjects.load(obj + np.uint64(size_at), np.uint64(0)) != 32:
            return i
        data = obj + np.uint64(data_at)
        for r in range(8):
            lv[r * ROW + k] = _bswap(pyobjects.load(data + np.uint64(4 * r), np.uint32(0)))
        k += 1
        if k == ROW:
            _carry(lv, count)
            k = 0
    _finish(lv, count, levels, k, out)
    return -1


@njit(types.void(_BYTES_RO, types.uint32[::1]), cache=True, nogil=True)
def node_hashes_words(pairs, out):
    """``out[8*i:8*i+8]`` = state words of ``SHA-256(0x01 || pairs[64*i : 64*i+64])``: the
    RFC 9162 node hash of each (left, right) pair of 32-byte hashes laid end to end."""
    n = pairs.shape[0] // 64
    words = np.empty(16 * min(n, MERKLE_CHUNK_LEAVES), dtype=np.uint32)
    for lo in range(0, n, MERKLE_CHUNK_LEAVES):
        m = min(MERKLE_CHUNK_LEAVES, n - lo)
        for i in range(16 * m):
            q = 4 * (16 * lo + i)
            words[i] = _U(
                _U(_U(pairs[q]) << _U(24))
                | _U(_U(pairs[q + 1]) << _U(16))
                | _U(_U(pairs[q + 2]) << _U(8))
                | _U(pairs[q + 3])
            )
        _node_level(words, m)
        out[8 * lo : 8 * (lo + m)] = words[: 8 * m]


def _digest_bytes(words: np.ndarray) -> bytes:
    return words.astype(">u4").tobytes()


def _split_digests(words: np.ndarray) -> list[bytes]:
    return split_hashes(_digest_bytes(words))


CHUNK_BYTES = 1 << 18
"""Inputs are packed for the kernel this many bytes at a time: buffers of this size are
recycled by the allocator, while one buffer for the whole input would be fresh memory
and page-fault on every 4 KiB (which, on this VM, cost more than hashing it)."""


def _hash_words(datas: Sequence[bytes], prefix: int) -> np.ndarray:
    n = len(datas)
    lengths = np.fromiter(map(len, datas), dtype=np.int64, count=n)
    out = np.empty(8 * n, dtype=np.uint32)
    ends = np.cumsum(lengths)
    start = 0
    while start < n:
        before = int(ends[start - 1]) if start else 0
        end = int(np.searchsorted(ends, before + CHUNK_BYTES, side="right"))
        end = min(max(end, start + 1), start + 4096)
        part = lengths[start:end]
        offsets = np.zeros(end - start + 1, dtype=np.int64)
        np.cumsum(part, out=offsets[1:])
        buf = np.frombuffer(b"".join(datas[start:end]), dtype=np.uint8)
        order = np.argsort(part, kind="stable").astype(np.int64)
        sha256_many(buf, offsets, prefix, order, out[8 * start : 8 * end])
        start = end
    return out


def hash_many(datas: Sequence[bytes], prefix: int = -1) -> list[bytes]:
    """SHA-256 of each input (after the one-byte ``prefix`` if 0..255)."""
    if not datas:
        return []
    return _split_digests(_hash_words(datas, prefix))


def leaf_hashes(datas: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 leaf hashes ``SHA-256(0x00 || data)``."""
    return hash_many(datas, prefix=0)


def leaf_hash_array(datas: Sequence[bytes]) -> HashArray:
    """The same leaf hashes, kept contiguous for the next kernel (see ``HashArray``)."""
    if not datas:
        return HashArray(b"")
    return HashArray(_digest_bytes(_hash_words(datas, 0)))


_OFFSETS = np.array(
    [pyobjects.LAYOUT.type_offset, pyobjects.LAYOUT.size_offset, pyobjects.LAYOUT.bytes_data_offset]
    if pyobjects.LAYOUT is not None
    else [0, 0, 0],
    dtype=np.int64,
)


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 ``MTH`` over 32-byte leaf hashes (empty: SHA-256 of nothing)."""
    if not leaf_hashes:
        return hash_many([b""])[0]
    out = np.empty(8, dtype=np.uint32)
    if isinstance(leaf_hashes, HashArray):
        merkle_root_words(np.frombuffer(leaf_hashes.buffer, dtype=np.uint8), out)
        return _digest_bytes(out)
    layout = pyobjects.LAYOUT
    if layout is not None and type(leaf_hashes) in (list, tuple):
        # Read in place (see ``pyobjects``); anything but 32-byte ``bytes`` goes below.
        seq: Any = leaf_hashes
        bad = merkle_root_objects(
            pyobjects.items_address(seq), len(seq), layout.bytes_type, _OFFSETS, out
        )
        if bad < 0:
            return _digest_bytes(out)
    # Equal lengths and the right total: all 32 (a C-speed pass, no Python loop).
    if len(set(map(len, leaf_hashes))) != 1 or len(leaf_hashes[0]) != 32:
        # Not a tree of SHA-256 leaves; hashlib gives the reference answer for any input.
        return reference.merkle_root(leaf_hashes)
    # A list is packed one aligned chunk at a time (a perfect subtree each, whose roots
    # paired level by level give the same tree), then the chunk roots are paired.
    n = len(leaf_hashes)
    chunk = MERKLE_CHUNK_LEAVES
    roots = bytearray()
    for lo in range(0, n, chunk):
        merkle_root_words(np.frombuffer(b"".join(leaf_hashes[lo : lo + chunk]), np.uint8), out)
        roots += _digest_bytes(out)
    if n > chunk:
        merkle_root_words(np.frombuffer(bytes(roots), dtype=np.uint8), out)
        return _digest_bytes(out)
    return bytes(roots)


def fixed_leaves_root(records: bytes, size: int) -> bytes:
    """RFC 9162 root over the leaf hashes of the ``size``-byte records laid end to end in
    ``records`` (at least one): the leaves are hashed where they lie and their hashes go
    to the tree kernel as one buffer, so no ``bytes`` object is made per leaf."""
    if size <= 0 or not records or len(records) % size:
        raise ValueError(f"{len(records)} bytes are not whole records of {size} bytes")
    n = len(records) // size
    offsets = np.arange(0, (n + 1) * size, size, dtype=np.int64)
    words = np.empty(8 * n, dtype=np.uint32)
    order = np.arange(n, dtype=np.int64)  # all the same length
    sha256_many(np.frombuffer(records, dtype=np.uint8), offsets, 0, order, words)
    out = np.empty(8, dtype=np.uint32)
    merkle_root_words(np.frombuffer(_digest_bytes(words), dtype=np.uint8), out)
    return _digest_bytes(out)


def node_hashes(pairs: bytes) -> bytes:
    """RFC 9162 node hashes of the (left, right) pairs of 32-byte hashes in ``pairs``
    (a multiple of 64 bytes), laid end to end."""
    if len(pairs) % 64:
        raise ValueError("node_hashes takes pairs of 32-byte hashes")
    n = len(pairs) // 64
    if not n:
        return b""
    out = np.empty(8 * n, dtype=np.uint32)
    node_hashes_words(np.frombuffer(pairs, dtype=np.uint8), out)
    return _digest_bytes(out)


def warmup() -> None:
    """Compile (or load from cache) every specialization the API uses."""
    hash_many([b"", b"abc"], prefix=0)
    merkle_root([bytes(32)] * 3)
    merkle_root(HashArray(bytes(96)))
    node_hashes(bytes(64))
