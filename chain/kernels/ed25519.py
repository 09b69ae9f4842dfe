"""Ed25519 verification in numba with OpenSSL's exact verdict, one signature at a time.

The rule (``tests/vectors/ed25519/README.md``): S < L, else reject; A decoded leniently;
h = SHA-512(R || A || M) mod L over the raw bytes; accept iff the canonical encoding of
R' = [S]B - [h]A equals R byte for byte. Each signature is checked by that rule alone,
so one bad signature in a batch cannot change another's verdict; a random-linear-
combination batch equation is deliberately *not* used (it is a different, cofactored,
point-comparing rule).

Where the speed comes from, all without changing the rule:
  * [S]B from a fixed radix-256 table of B (32 table additions, no doubling);
  * [h]A from a per-key radix-128 table when the key is cached (``keytables``; 37
    additions), else a signed radix-16 window over 8 multiples of A computed for that
    signature (252 doublings, 64 additions);
  * the final division by Z batched over the whole call (Montgomery's trick);
  * h: SHA-512 by ``hashlib`` in Python (0.6 us), the digests of a batch reduced mod L
    in one kernel call (``scalar25519``; with Python integers it cost ~1.4 us a
    signature; a call of a few signatures still uses them, ``REDUCE_IN_KERNEL_MIN``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from numba import njit, types

from chain.kernels import (
    cachekey,  # noqa: F401  (before any cached kernel is defined)
    scalar25519,
)
from chain.kernels import edwards25519 as ed
from chain.kernels import field25519 as fe
from chain.kernels.keytables import KeyTables
from chain.kernels.prefetch import prefetch

L = 2**252 + 27742317777372353535851937790883648493
L_BYTES = np.frombuffer(L.to_bytes(32, "little"), dtype=np.uint8).copy()
BASE_POINT_BYTES = ((4 * pow(5, fe.P - 2, fe.P)) % fe.P).to_bytes(32, "little")

_BYTES_RO = types.Array(types.uint8, 1, "C", readonly=True)
_WORDS_RO = types.Array(types.int64, 1, "C", readonly=True)


@njit(inline="always")
def _below_l(buf, off):
    """The 32 little-endian bytes at ``buf[off]`` are strictly below L (no reduction)."""
    for k in range(31, -1, -1):
        b = buf[off + k]
        lb = L_BYTES[k]
        if b != lb:
            return b < lb
    return False


@njit(inline="always")
def _recode(buf, off, window, digits):
    """Signed radix-2^window digits, each in [-2^(window-1), 2^(window-1)], of the
    little-endian scalar below 2^253 at ``buf[off]``; ``table_rows(window)`` of them
    (the last one takes the final carry without overflowing)."""
    rows = (ed.SCALAR_BITS + window - 1) // window
    mask = (1 << window) - 1
    half = 1 << (window - 1)
    carry = 0
    for i in range(rows):
        bit = window * i
        byte = bit >> 3
        v = np.int64(0)
        for k in range(3):
            if byte + k < 32:
                v |= np.int64(buf[off + byte + k]) << (8 * k)
        v = ((v >> (bit & 7)) & mask) + carry
        carry = (v + half) >> window
        digits[i] = v - (carry << window)


@njit
def _minus_h_a(keys, off, hd, cache):
    """-[h]A by a signed radix-16 window over 1A..8A (cached forms written to ``cache``),
    for a key without a table; ``hd`` holds h's 64 radix-16 digits. Returns
    (ok, X, Y, Z, T); ok is False iff A does not decode."""
    good, ax, ay, az, at = ed.decode_lenient(keys, off)
    if not good:
        return False, ed.ZERO, ed.ONE, ed.ONE, ed.ZERO
    c1 = ed.to_cached(ax, ay, az, at)
    px, py, pz, pt = ax, ay, az, at
    for j in range(8):
        c = ed.to_cached(px, py, pz, pt)
        for k in range(4):
            ed.store(cache, (4 * j + k) * 5, c[k])
        if j < 7:
            px, py, pz, pt = ed.add_cached(px, py, pz, pt, c1[0], c1[1], c1[2], c1[3], False)
    x, y, z, t = ed.ZERO, ed.ONE, ed.ONE, ed.ZERO
    for row in range(63, -1, -1):
        if row != 63:
            x, y, z = ed.double_xyz(x, y, z)
            x, y, z = ed.double_xyz(x, y, z)
            x, y, z = ed.double_xyz(x, y, z)
            x, y, z, t = ed.double(x, y, z)
        digit = -hd[row]
        if digit != 0:
            mag = digit if digit > 0 else -digit
            base = 4 * (mag - 1) * 5
            x, y, z, t = ed.add_cached(
                x,
                y,
                z,
                t,
                ed.load(cache, base),
                ed.load(cache, base + 5),
                ed.load(cache, base + 10),
                ed.load(cache, base + 15),
                digit < 0,
            )
    return True, x, y, z, t


@njit(inline="always")
def _prefetch_entries(table, base, cols, rows, digits, negate):
    """Hint the cache about the table entries that ``digits`` will add (all three cache
    lines of each 120-byte entry)."""
    for row in range(rows):
        d = -digits[row] if negate else digits[row]
        if d != 0:
            mag = d if d > 0 else -d
            off = base + (row * cols + mag - 1) * ed.ENTRY_WORDS
            prefetch(table, off)
            prefetch(table, off + 7)
            prefetch(table, off + 14)


@njit(
    types.void(
        _BYTES_RO,
        _BYTES_RO,
        _BYTES_RO,
        types.int64[::1],
        types.int64[::1],
        _WORDS_RO,
        _WORDS_RO,
        types.uint8[::1],
    ),
    cache=True,
    nogil=True,
)
def verify_kernel(keys, sigs, hs, slots, order, tables, base_table, out):
    """``out[i]`` = OpenSSL's verdict on signature i: key ``keys[32i:]``, signature
    ``sigs[64i:]``, h = SHA-512(R||A||M) mod L at ``hs[32i:]``. ``slots[i]`` >= 0 names
    the key's table in ``tables``; -1 means no table (the window path). Signatures are
    visited in ``order`` (grouped by key, so a key's table stays in cache)."""
    n = slots.shape[0]
    xs = np.empty(5 * n, dtype=np.int64)
    ys = np.empty(5 * n, dtype=np.int64)
    zs = np.empty(5 * n, dtype=np.int64)
    prefix = np.empty(5 * n, dtype=np.int64)
    sd = np.empty(64, dtype=np.int64)
    hd = np.empty(64, dtype=np.int64)
    ahead = np.empty(64, dtype=np.int64)
    cache = np.empty(4 * 5 * 8, dtype=np.int64)
    b_rows = (ed.SCALAR_BITS + ed.BASE_WINDOW - 1) // ed.BASE_WINDOW
    b_cols = 1 << (ed.BASE_WINDOW - 1)
    a_rows = (ed.SCALAR_BITS + ed.KEY_WINDOW - 1) // ed.KEY_WINDOW
    a_cols = 1 << (ed.KEY_WINDOW - 1)
    a_words = a_rows * a_cols * ed.ENTRY_WORDS
    for ii in range(n):
        i = order[ii]
        if ii + 1 < n:  # the next signature's table entries load while this one computes
            nxt = order[ii + 1]
            if slots[nxt] >= 0:
                _recode(hs, 32 * nxt, ed.KEY_WINDOW, ahead)
                _prefetch_entries(tables, slots[nxt] * a_words, a_cols, a_rows, ahead, True)
            _recode(sigs, 64 * nxt + 32, ed.BASE_WINDOW, ahead)
            _prefetch_entries(base_table, 0, b_cols, b_rows, ahead, False)
        x, y, z, t = ed.ZERO, ed.ONE, ed.ONE, ed.ZERO
        ok = _below_l(sigs, 64 * i + 32)
        if ok:
            slot = slots[i]
            if slot >= 0:
                _recode(hs, 32 * i, ed.KEY_WINDOW, hd)
                atab = tables[slot * a_words : (slot + 1) * a_words]
                for row in range(a_rows):
                    x, y, z, t = ed.add_table_entry(x, y, z, t, atab, a_cols, row, -hd[row])
            else:
                _recode(hs, 32 * i, 4, hd)
                ok, x, y, z, t = _minus_h_a(keys, 32 * i, hd, cache)
            if ok:
                _recode(sigs, 64 * i + 32, ed.BASE_WINDOW, sd)
                for row in range(b_rows):
                    x, y, z, t = ed.add_table_entry(x, y, z, t, base_table, b_cols, row, sd[row])
        if not ok:
            x, y, z = ed.ZERO, ed.ONE, ed.ONE
        ed.store(xs, 5 * i, x)
        ed.store(ys, 5 * i, y)
        ed.store(zs, 5 * i, z)
        out[i] = 1 if ok else 0
    # Montgomery's trick: one inversion for the whole call. Z is never 0 for a point on
    # the curve (the formulas are complete); if it were, fall back to one at a time.
    acc = ed.ONE
    for i in range(n):
        acc = fe.mul(acc, ed.load(zs, 5 * i))
        ed.store(prefix, 5 * i, acc)
    batched = n > 0 and not fe.equal(acc, ed.ZERO)
    inv = fe.invert(acc)
    for i in range(n - 1, -1, -1):
        z = ed.load(zs, 5 * i)
        if batched:
            zi = fe.mul(inv, ed.load(prefix, 5 * (i - 1))) if i > 0 else inv
            inv = fe.mul(inv, z)
        else:
            zi = fe.invert(z)
            if fe.equal(z, ed.ZERO):
                out[i] = 0
        if out[i] == 1:
            ax = fe.freeze(fe.mul(ed.load(xs, 5 * i), zi))
            ay = fe.freeze(fe.mul(ed.load(ys, 5 * i), zi))
            r = fe.from_bytes(sigs, 64 * i)
            same = (
                ay[0] == r[0]
                and ay[1] == r[1]
                and ay[2] == r[2]
                and ay[3] == r[3]
                and ay[4] == r[4]
            )
            out[i] = 1 if same and (ax[0] & 1) == (sigs[64 * i + 31] >> 7) else 0


_base_table: np.ndarray | None = None


def base_table() -> np.ndarray:
    """The table of B, built once per process by the same kernel as key tables."""
    global _base_table
    if _base_table is None:
        out = np.empty(ed.BASE_TABLE_WORDS, dtype=np.int64)
        ok = np.zeros(1, dtype=np.uint8)
        build_input = np.frombuffer(BASE_POINT_BYTES, dtype=np.uint8)
        ed.build_tables(build_input, ed.BASE_WINDOW, out, ok)
        if ok[0] != 1:
            raise AssertionError("the base point does not decode")
        out.flags.writeable = False
        _base_table = out
    return _base_table


REDUCE_IN_KERNEL_MIN = 8
"""From this many signatures, h is reduced mod L in one kernel call; below, with Python
integers, whose 0.6 us a signature beats the call's fixed ~3.5 us (a PBFT vote, a header
signature: one at a time). The same values either way (``tests/kernels``)."""


def challenges(keys: Sequence[bytes], messages: Sequence[bytes], sigs: Sequence[bytes]) -> bytes:
    """h = SHA-512(R || A || M) mod L for each signature, 32 little-endian bytes each."""
    sha512 = hashlib.sha512
    if len(keys) < REDUCE_IN_KERNEL_MIN:
        return b"".join(
            (int.from_bytes(sha512(s[:32] + k + m).digest(), "little") % L).to_bytes(32, "little")
            for k, m, s in zip(keys, messages, sigs, strict=True)
        )
    return scalar25519.reduce(
        b"".join(
            [sha512(s[:32] + k + m).digest() for k, m, s in zip(keys, messages, sigs, strict=True)]
        )
    )


def verify_batch(
    public_keys: Sequence[bytes],
    messages: Sequence[bytes],
    signatures: Sequence[bytes],
    key_tables: KeyTables,
) -> list[bool]:
    """OpenSSL's verdict on each (key, message, signature); wrong lengths are False."""
    n = len(public_keys)
    if not n == len(messages) == len(signatures):
        raise ValueError("verify_batch needs as many keys, messages and signatures")
    keys = [bytes(k) for k in public_keys]
    msgs = [bytes(m) for m in messages]
    sigs = [bytes(s) for s in signatures]
    good = [i for i in range(n) if len(keys[i]) == 32 and len(sigs[i]) == 64]
    if len(good) < n:
        keys = [keys[i] for i in good]
        msgs = [msgs[i] for i in good]
        sigs = [sigs[i] for i in good]
    if not good:
        return [False] * n
    hs = challenges(keys, msgs, sigs)
    slots, tables = key_tables.tables_for(keys)
    out = np.empty(len(keys), dtype=np.uint8)
    verify_kernel(
        np.frombuffer(b"".join(keys), dtype=np.uint8),
        np.frombuffer(b"".join(sigs), dtype=np.uint8),
        np.frombuffer(hs, dtype=np.uint8),
        slots,
        np.argsort(slots, kind="stable"),
        tables,
        base_table(),
        out,
    )
    verdicts = out.astype(bool).tolist()
    if len(good) == n:
        return verdicts
    full = [False] * n
    for i, v in zip(good, verdicts, strict=True):
        full[i] = v
    return full


def warmup() -> None:
    """Load (or compile) the kernels and build B's table."""
    scalar25519.warmup()
    base_table()
    verify_batch([bytes(32)], [b""], [bytes(64)], KeyTables(capacity=0))
