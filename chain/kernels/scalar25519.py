"""Scalars mod L, the order of Ed25519's base point: SHA-512 digests reduced for the
verifier (h = SHA-512(R || A || M) mod L), in numba.

The reduction is ref10's ``sc_reduce`` shape: the 512-bit digest in 24 limbs of 21 bits
(the top one 29), limbs from 2^252 up folded down with 2^252 = -L0 (mod L), where
L = 2^252 + L0 and ``FOLD`` holds -L0 in signed radix-2^21 digits, with carry passes in
between so no ``int64`` overflows (bounds in ``reduce_kernel``). Every step keeps the value
congruent mod L, so the result is right whenever it ends below 2^252, which the kernel
checks and reports per digest (``clean``); a digest whose result it cannot show below
2^252 (one in ~2^125 at random, or one made to sit on a boundary) is reduced by the
caller with Python integers (``reduce``). Public data only: variable time.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from chain.kernels import cachekey  # noqa: F401  (before any cached kernel is defined)

L = 2**252 + 27742317777372353535851937790883648493
FOLD = (666643, 470296, 654183, -997805, 136657, -683901)
"""-(L - 2^252) in signed radix-2^21 digits, least significant first."""
assert sum(d << (21 * i) for i, d in enumerate(FOLD)) == -(L - 2**252)
_MASK21 = (1 << 21) - 1
_BYTES_RO = types.Array(types.uint8, 1, "C", readonly=True)


@njit(inline="always")
def _fold(s, k):
    """Limb k (k >= 12) moved down six limbs: s[k] * 2^(21k) = s[k] * 2^(21(k-12)) * -L0."""
    v = s[k]
    s[k] = 0
    s[k - 12] += v * 666643
    s[k - 11] += v * 470296
    s[k - 10] += v * 654183
    s[k - 9] -= v * 997805
    s[k - 8] += v * 136657
    s[k - 7] -= v * 683901


@njit(inline="always")
def _ripple(s, lo, hi):
    """Limbs lo..hi into [0, 2^21), each one's carry (floor) added to the next."""
    for i in range(lo, hi + 1):
        c = s[i] >> 21
        s[i] -= c << 21
        s[i + 1] += c


@njit(types.void(_BYTES_RO, types.uint8[::1], types.uint8[::1]), cache=True, nogil=True)
def reduce_kernel(digests, out, clean):
    """``out[32j:]`` = the 64-byte little-endian ``digests[64j:]`` mod L (little endian)
    and ``clean[j]`` = 1, or ``clean[j]`` = 0 where the result could not be shown below
    2^252 (then ``out`` holds no meaning for j).

    Bounds (|FOLD digits| < 2^20): limbs start below 2^21 (the top one 2^29); folding
    23..18 leaves limbs 6..16 below 2^52; after their carry pass limb 17 is below 2^33;
    folding 17..12 leaves limbs 0..11 below 2^57; after the carry pass limb 12 is below
    2^37; each later fold of limb 12 adds under 2^58 to limbs in [0, 2^21)."""
    n = clean.shape[0]
    s = np.zeros(24, dtype=np.int64)
    for j in range(n):
        base = 64 * j
        for i in range(24):
            bit = 21 * i
            byte = bit >> 3
            v = np.int64(0)
            for k in range(5):
                if byte + k < 64:
                    v |= np.int64(digests[base + byte + k]) << np.int64(8 * k)
            v >>= np.int64(bit & 7)
            s[i] = v & _MASK21 if i < 23 else v
        for k in range(23, 17, -1):
            _fold(s, k)
        _ripple(s, 6, 16)
        for k in range(17, 11, -1):
            _fold(s, k)
        _ripple(s, 0, 11)
        _fold(s, 12)
        _ripple(s, 0, 11)
        _fold(s, 12)
        _ripple(s, 0, 11)
        # Limbs 0..11 in [0, 2^21) and nothing above: the value is below 2^252 < L.
        clean[j] = 1 if s[12] == 0 else 0
        acc = np.int64(0)
        bits = 0
        o = 32 * j
        for i in range(12):
            acc |= s[i] << np.int64(bits)
            bits += 21
            while bits >= 8:
                out[o] = acc & 0xFF
                acc >>= 8
                bits -= 8
                o += 1
        out[o] = acc & 0xFF


def reduce(digests: bytes) -> bytes:
    """Each 64-byte little-endian value in ``digests`` mod L, as 32 little-endian bytes."""
    n = len(digests) // 64
    if len(digests) != 64 * n:
        raise ValueError("digests must be 64 bytes each")
    out = np.empty(32 * n, dtype=np.uint8)
    clean = np.empty(n, dtype=np.uint8)
    reduce_kernel(np.frombuffer(digests, dtype=np.uint8), out, clean)
    if n and not clean.all():
        for j in np.flatnonzero(clean == 0).tolist():
            value = int.from_bytes(digests[64 * j : 64 * j + 64], "little") % L
            out[32 * j : 32 * j + 32] = np.frombuffer(value.to_bytes(32, "little"), np.uint8)
    return out.tobytes()


def warmup() -> None:
    reduce(bytes(64))
