"""Points of edwards25519 (-x^2 + y^2 = 1 + d x^2 y^2) for the numba verifier.

Extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, T = XY/Z, with the a = -1 formulas of
Hisil, Wong, Carter and Dawson (2008): they are complete on this curve (d is not a
square), so no input, small-order and mixed-order points included, needs a special case.
Two forms of an addend save work: *cached* (Y+X, Y-X, Z, 2dT) for points computed on the
fly, and *affine* (y+x, y-x, 2dxy) with Z = 1 for precomputed tables (one multiplication
fewer per addition).

A table of width w of a point P holds the affine multiples j * 2^(w*i) * P for
1 <= j <= 2^(w-1) and every row i: with signed radix-2^w digits of a scalar (each in
[-2^(w-1), 2^(w-1)]), [k]P is one table addition per digit and no doubling. The base
point B has one table of width 8 (32 additions, 491,520 bytes, built once per process);
a registered key A gets its own of width 7 (37 additions, 284,160 bytes; see
``keytables``), which is what a generic verifier cannot do. (Width 5, 51 additions and
97,920 bytes, until issue 14's PBFT work: width 7 verified in 0.85x the time, measured
12.2 -> 10.3 us a signature with 32 keys in a batch of 512; width 6, 0.91x.)

Public data only: everything here is variable-time.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from chain.kernels import cachekey  # noqa: F401  (before any cached kernel is defined)
from chain.kernels import field25519 as fe

P = fe.P
D_INT = (-121665 * pow(121666, P - 2, P)) % P
D = fe.limbs(D_INT)
D2 = fe.limbs(2 * D_INT)
SQRT_M1 = fe.limbs(pow(2, (P - 1) // 4, P))
ONE = (1, 0, 0, 0, 0)
ZERO = (0, 0, 0, 0, 0)

ENTRY_WORDS = 15  # three field elements of five limbs
BASE_WINDOW = 8
KEY_WINDOW = 7
SCALAR_BITS = 253  # S < L and h < L are below 2^253


def table_rows(window: int) -> int:
    """Digits of a scalar below 2^253: the top digit then absorbs the last carry."""
    return (SCALAR_BITS + window - 1) // window


def table_cols(window: int) -> int:
    return 1 << (window - 1)


def table_words(window: int) -> int:
    return table_rows(window) * table_cols(window) * ENTRY_WORDS


KEY_TABLE_WORDS = table_words(KEY_WINDOW)
BASE_TABLE_WORDS = table_words(BASE_WINDOW)

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
    """P1 + P2 (or P1 - P2 when ``negate``), P2 in cached form: 8 multiplications.
    Intermediate sums feed only multiplications, so they skip the carry pass."""
    if negate:
        ypx, ymx = ymx, ypx
    a = fe.mul(fe.sub_nc(y1, x1), ymx)
    b = fe.mul(fe.add_nc(y1, x1), ypx)
    c = fe.mul(t1, t2d)
    zz = fe.mul(z1, z2)
    d = fe.add_nc(zz, zz)
    e = fe.sub_nc(b, a)
    h = fe.add_nc(b, a)
    if negate:
        f = fe.add_nc(d, c)
        g = fe.sub_nc(d, c)
    else:
        f = fe.sub_nc(d, c)
        g = fe.add_nc(d, c)
    return fe.mul(e, f), fe.mul(g, h), fe.mul(f, g), fe.mul(e, h)


@njit
def add_affine(x1, y1, z1, t1, ypx, ymx, xy2d, negate):
    """P1 + P2 (or P1 - P2 when ``negate``), P2 affine from a table: 7 multiplications."""
    if negate:
        ypx, ymx = ymx, ypx
    a = fe.mul(fe.sub_nc(y1, x1), ymx)
    b = fe.mul(fe.add_nc(y1, x1), ypx)
    c = fe.mul(t1, xy2d)
    d = fe.add_nc(z1, z1)
    e = fe.sub_nc(b, a)
    h = fe.add_nc(b, a)
    if negate:
        f = fe.add_nc(d, c)
        g = fe.sub_nc(d, c)
    else:
        f = fe.sub_nc(d, c)
        g = fe.add_nc(d, c)
    return fe.mul(e, f), fe.mul(g, h), fe.mul(f, g), fe.mul(e, h)


@njit
def add_table_entry(x1, y1, z1, t1, table, cols, row, digit):
    """P1 + digit * 2^(w*row) * Q where ``table`` is Q's table with ``cols`` = 2^(w-1)
    entries a row and |digit| <= cols."""
    if digit == 0:
        return x1, y1, z1, t1
    mag = digit if digit > 0 else -digit
    off = (row * cols + mag - 1) * ENTRY_WORDS
    return add_affine(
        x1, y1, z1, t1, load(table, off), load(table, off + 5), load(table, off + 10), digit < 0
    )


@njit(inline="always")
def _double_parts(x1, y1, z1):
    a = fe.sq(x1)
    b = fe.sq(y1)
    zz = fe.sq(z1)
    c = fe.add_nc(zz, zz)
    h = fe.add_nc(a, b)
    e = fe.sub_nc(h, fe.sq(fe.add_nc(x1, y1)))
    g = fe.sub_nc(a, b)
    f = fe.add_nc(c, g)
    return e, f, g, h


@njit
def double(x1, y1, z1):
    """2 * P1 from X, Y, Z only (T is not needed to double): 4 squarings, 4 products."""
    e, f, g, h = _double_parts(x1, y1, z1)
    return fe.mul(e, f), fe.mul(g, h), fe.mul(f, g), fe.mul(e, h)


@njit
def double_xyz(x1, y1, z1):
    """``double`` without T, for a doubling followed by another: one product fewer."""
    e, f, g, h = _double_parts(x1, y1, z1)
    return fe.mul(e, f), fe.mul(g, h), fe.mul(f, g)


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
def _fill_table(x, y, z, t, rows, cols, out, base, px, py, pz, pt, prefix):
    """Write the affine table of (x:y:z:t) at ``out[base:]``; the other arrays are
    scratch of rows * cols field elements each."""
    n = rows * cols
    for row in range(rows):
        cx, cy, cz, ct = to_cached(x, y, z, t)
        for col in range(cols):
            k = (row * cols + col) * 5
            store(px, k, x)
            store(py, k, y)
            store(pz, k, z)
            store(pt, k, t)
            if col < cols - 1:
                x, y, z, t = add_cached(x, y, z, t, cx, cy, cz, ct, False)
        # 2^(w*(row+1)) P = 2 * (2^(w-1) * 2^(w*row) P), the row's last entry doubled.
        x, y, z, t = double(x, y, z)
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
    types.void(_BYTES_RO, types.int64, types.int64[::1], types.uint8[::1]),
    cache=True,
    nogil=True,
)
def build_tables(keys, window, out, ok):
    """For each 32-byte key in ``keys``: decode it (OpenSSL's lenient rule) and write its
    table of width ``window`` to ``out[i*words:]``; ``ok[i]`` = 0 when the key does not
    decode (every signature under it is then rejected, as OpenSSL does)."""
    n = keys.shape[0] // 32
    rows = (SCALAR_BITS + window - 1) // window
    cols = 1 << (window - 1)
    words = rows * cols * ENTRY_WORDS
    m = rows * cols * 5
    px = np.empty(m, dtype=np.int64)
    py = np.empty(m, dtype=np.int64)
    pz = np.empty(m, dtype=np.int64)
    pt = np.empty(m, dtype=np.int64)
    prefix = np.empty(m, dtype=np.int64)
    for i in range(n):
        good, x, y, z, t = decode_lenient(keys, 32 * i)
        ok[i] = 1 if good else 0
        if good:
            _fill_table(x, y, z, t, rows, cols, out, i * words, px, py, pz, pt, prefix)
        else:
            out[i * words : (i + 1) * words] = 0
