"""Points of edwards25519 (-x^2 + y^2 = 1 + d x^2 y^2) for the numba verifier.

Extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, T = XY/Z, with the a = -1 formulas of
Hisil, Wong, Carter and Dawson (2008): they are complete on this curve (d is not a
square), so no input, small-order and mixed-order points included, needs a special case.
Two forms of an addend save work: *cached* (Y+X, Y-X, Z, 2dT) for points computed on the
fly, and *affine* (y+x, y-x, 2dxy) with Z = 1 for precomputed tables (one multiplication
fewer per addition).

A table of a point P holds the affine multiples j * 16^i * P for i < 64 and 1 <= j <= 8:
with signed radix-16 digits of a scalar in [-8, 8], [k]P is then 64 table additions and
no doubling. The base point B has one such table; a registered key A gets its own (see
``keytables``), which is what a generic verifier cannot do.

Public data only: everything here is variable-time.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from chain.kernels import field25519 as fe

P = fe.P
D_INT = (-121665 * pow(121666, P - 2, P)) % P
D = fe.limbs(D_INT)
D2 = fe.limbs(2 * D_INT)
SQRT_M1 = fe.limbs(pow(2, (P - 1) // 4, P))
ONE = (1, 0, 0, 0, 0)
ZERO = (0, 0, 0, 0, 0)

TABLE_ROWS = 64
TABLE_COLS = 8
ENTRY_WORDS = 15  # three field elements of five limbs
TABLE_WORDS = TABLE_ROWS * TABLE_COLS * ENTRY_WORDS

_BYTES_RO = types.Array(types.uint8, 1, "C", readonly=True)


@njit(inline="always")
def load(arr, off):
    return (arr[off], arr[off + 1], arr[off + 2], arr[off + 3], arr[off + 4])


@njit(inline="always")
def store(arr, off, a):
    arr[off] = a[0]
    arr[off + 1] = a[1]
    arr[off + 2] = a[2]
    arr[off + 3] = a[3]
    arr[off + 4] = a[4]


@njit
def add_cached(x1, y1, z1, t1, ypx, ymx, z2, t2d, negate):
    """P1 + P2 (or P1 - P2 when ``negate``), P2 in cached form: 8 multiplications."""
    if negate:
        ypx, ymx = ymx, ypx
    a = fe.mul(fe.sub(y1, x1), ymx)
    b = fe.mul(fe.add(y1, x1), ypx)
    c = fe.mul(t1, t2d)
    zz = fe.mul(z1, z2)
    d = fe.add(zz, zz)
    e = fe.sub(b, a)
    h = fe.add(b, a)
    if negate:
        f = fe.add(d, c)
        g = fe.sub(d, c)
    else:
        f = fe.sub(d, c)
        g = fe.add(d, c)
    return fe.mul(e, f), fe.mul(g, h), fe.mul(f, g), fe.mul(e, h)


@njit
def add_affine(x1, y1, z1, t1, ypx, ymx, xy2d, negate):
    """P1 + P2 (or P1 - P2 when ``negate``), P2 affine from a table: 7 multiplications."""
    if negate:
        ypx, ymx = ymx, ypx
    a = fe.mul(fe.sub(y1, x1), ymx)
    b = fe.mul(fe.add(y1, x1), ypx)
    c = fe.mul(t1, xy2d)
    d = fe.add(z1, z1)
    e = fe.sub(b, a)
    h = fe.add(b, a)
    if negate:
        f = fe.add(d, c)
        g = fe.sub(d, c)
    else:
        f = fe.sub(d, c)
        g = fe.add(d, c)
    return fe.mul(e, f), fe.mul(g, h), fe.mul(f, g), fe.mul(e, h)


@njit
def add_table_entry(x1, y1, z1, t1, table, row, digit):
    """P1 + digit * 16^row * Q where ``table`` is Q's table and -8 <= digit <= 8."""
    if digit == 0:
        return x1, y1, z1, t1
    mag = digit if digit > 0 else -digit
    off = (row * TABLE_COLS + mag - 1) * ENTRY_WORDS
    return add_affine(
        x1, y1, z1, t1, load(table, off), load(table, off + 5), load(table, off + 10), digit < 0
    )


@njit
def double(x1, y1, z1):
    """2 * P1 from X, Y, Z only (T is not needed to double): 4 squarings, 4 products."""
    a = fe.sq(x1)
    b = fe.sq(y1)
    zz = fe.sq(z1)
    c = fe.add(zz, zz)
    h = fe.add(a, b)
    e = fe.sub(h, fe.sq(fe.add(x1, y1)))
    g = fe.sub(a, b)
    f = fe.add(c, g)
    return fe.mul(e, f), fe.mul(g, h), fe.mul(f, g), fe.mul(e, h)


@njit
def to_cached(x, y, z, t):
    return fe.add(y, x), fe.sub(y, x), z, fe.mul(t, D2)


@njit
def decode_lenient(buf, off):
    """OpenSSL's decoding of a public key: y = bits 0..254 taken mod p (a non-canonical
    y >= p is accepted), x recovered from the curve equation (no square root: reject),
    the root whose parity is bit 255 ('negative zero', x = 0 with the bit set, is
    accepted as x = 0). Returns (ok, X, Y, Z, T)."""
    y = fe.from_bytes(buf, off)
    sign = buf[off + 31] >> 7
    yy = fe.sq(y)
    u = fe.sub(yy, ONE)
    v = fe.add(fe.mul(yy, D), ONE)
    v3 = fe.mul(fe.sq(v), v)
    v7 = fe.mul(fe.sq(v3), v)
    x = fe.mul(fe.mul(u, v3), fe.pow_p58(fe.mul(u, v7)))
    vxx = fe.mul(v, fe.sq(x))
    if not fe.equal(vxx, u):
        if fe.equal(vxx, fe.neg(u)):
            x = fe.mul(x, SQRT_M1)
        else:
            return False, ZERO, ONE, ONE, ZERO
    if fe.is_negative(x) != sign:
        x = fe.neg(x)
    return True, x, y, ONE, fe.mul(x, y)


@njit
def _fill_table(x, y, z, t, out, base, px, py, pz, pt, prefix):
    """Write the affine table of (x:y:z:t) at ``out[base:]``; the other arrays are
    scratch of 512 field elements each."""
    n = TABLE_ROWS * TABLE_COLS
    for row in range(TABLE_ROWS):
        cx, cy, cz, ct = to_cached(x, y, z, t)
        for col in range(TABLE_COLS):
            k = (row * TABLE_COLS + col) * 5
            store(px, k, x)
            store(py, k, y)
            store(pz, k, z)
            store(pt, k, t)
            if col < TABLE_COLS - 1:
                x, y, z, t = add_cached(x, y, z, t, cx, cy, cz, ct, False)
        x, y, z, t = double(x, y, z)  # 16^(row+1) P = 2 * (8 * 16^row P)
    # Montgomery's trick: one inversion for all 512 Z.
    acc = ONE
    for i in range(n):
        acc = fe.mul(acc, load(pz, 5 * i))
        store(prefix, 5 * i, acc)
    inv = fe.invert(acc)
    for i in range(n - 1, -1, -1):
        zi = fe.mul(inv, load(prefix, 5 * (i - 1))) if i > 0 else inv
        inv = fe.mul(inv, load(pz, 5 * i))
        ax = fe.mul(load(px, 5 * i), zi)
        ay = fe.mul(load(py, 5 * i), zi)
        off = base + i * ENTRY_WORDS
        store(out, off, fe.add(ay, ax))
        store(out, off + 5, fe.sub(ay, ax))
        store(out, off + 10, fe.mul(fe.mul(ax, ay), D2))


@njit(
    types.void(_BYTES_RO, types.int64[::1], types.uint8[::1]),
    cache=True,
    nogil=True,
)
def build_tables(keys, out, ok):
    """For each 32-byte key in ``keys``: decode it (OpenSSL's lenient rule) and write its
    table to ``out[i*TABLE_WORDS:]``; ``ok[i]`` = 0 when the key does not decode (every
    signature under it is then rejected, as OpenSSL does)."""
    n = keys.shape[0] // 32
    m = TABLE_ROWS * TABLE_COLS * 5
    px = np.empty(m, dtype=np.int64)
    py = np.empty(m, dtype=np.int64)
    pz = np.empty(m, dtype=np.int64)
    pt = np.empty(m, dtype=np.int64)
    prefix = np.empty(m, dtype=np.int64)
    for i in range(n):
        good, x, y, z, t = decode_lenient(keys, 32 * i)
        ok[i] = 1 if good else 0
        if good:
            _fill_table(x, y, z, t, out, i * TABLE_WORDS, px, py, pz, pt, prefix)
        else:
            out[i * TABLE_WORDS : (i + 1) * TABLE_WORDS] = 0
