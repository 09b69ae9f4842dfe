"""Arithmetic in GF(2^255 - 19) for numba: five 51-bit limbs in a tuple of ``int64``.

Why this representation: a limb product needs 102 bits, and numba has no 128-bit integer
type, so the two multiplications (``mul``, ``sq``) are ``numba.extending.intrinsic``s that
emit LLVM ``i128`` IR directly; LLVM lowers that to ``mulx``/``adc`` on any x86-64 (no
instruction-set extension, so nothing can abort on an older CPU). The rest is plain numba
on tuples, which LLVM keeps in registers.

Limb bounds (the invariant every function keeps): outputs of ``mul``, ``sq``, ``add``,
``sub`` have limbs in [0, 2^52). ``mul``/``sq`` accept limbs below 2^56 (products then
stay below 2^120 in i128 and 19 * limb below 2^61 in i64). ``sub`` computes
``a + 4p - b``, which needs b's limbs below 2^53 (4p's limbs are just under 2^53), so no
limb goes negative. ``add``/``sub`` end with one carry pass; ``add_nc``/``sub_nc`` skip it
and are for values that only feed a multiplication (inputs below 2^53, outputs below
2^55). ``freeze`` is the only full reduction; equality and parity go
through it. Variable time: only public data (keys, signatures) is ever processed.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from chain.kernels import cachekey  # noqa: F401  (before any cached kernel is defined)

P = 2**255 - 19
MASK51 = (1 << 51) - 1
FE = types.UniTuple(types.int64, 5)

_I64 = ir.IntType(64)
_I128 = ir.IntType(128)


def limbs(value: int) -> tuple[int, int, int, int, int]:
    """Python int (reduced mod p) to limbs, for constants."""
    v = value % P
    return (
        v & MASK51,
        (v >> 51) & MASK51,
        (v >> 102) & MASK51,
        (v >> 153) & MASK51,
        (v >> 204) & MASK51,
    )


def to_int(fe: tuple[int, ...]) -> int:
    """Limbs back to a Python int mod p (tests and constants)."""
    return sum(int(x) << (51 * i) for i, x in enumerate(fe)) % P


def _carry_out(builder: ir.IRBuilder, acc: list[Any]) -> list[Any]:
    """Reduce five i128 column sums to five limbs below 2^52 (carry chain, the top carry
    folded back times 19, then one more step so limb 0 fits too)."""
    mask = ir.Constant(_I128, MASK51)
    shift = ir.Constant(_I128, 51)
    out: list[Any] = []
    carry = None
    for col in acc:
        v = col if carry is None else builder.add(col, carry)
        out.append(builder.and_(v, mask))
        carry = builder.lshr(v, shift)
    assert carry is not None
    v0 = builder.add(out[0], builder.mul(carry, ir.Constant(_I128, 19)))
    out[0] = builder.and_(v0, mask)
    out[1] = builder.add(out[1], builder.lshr(v0, shift))
    return [builder.trunc(x, _I64) for x in out]


def _limbs128(builder: ir.IRBuilder, tup: Any) -> list[Any]:
    return [builder.zext(builder.extract_value(tup, i), _I128) for i in range(5)]


def _scaled128(builder: ir.IRBuilder, tup: Any, factor: int) -> list[Any]:
    k = ir.Constant(_I64, factor)
    return [builder.zext(builder.mul(builder.extract_value(tup, i), k), _I128) for i in range(5)]


@intrinsic
def _mul(typingctx: Any, a: Any, b: Any) -> Any:
    """a * b mod p (schoolbook 5x5 with the high half folded in times 19)."""
    if a != FE or b != FE:
        return None

    def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> Any:
        x = _limbs128(builder, args[0])
        y = _limbs128(builder, args[1])
        # 19 * y in 64 bits (limbs < 2^54, so < 2^59), then widened: LLVM then sees
        # every product as 64 x 64 -> 128 bits, one ``mul``/``mulx`` each.
        y19 = _scaled128(builder, args[1], 19)
        acc = []
        for k in range(5):
            total = None
            for i in range(5):
                j = k - i
                term = builder.mul(x[i], y[j]) if j >= 0 else builder.mul(x[i], y19[j + 5])
                total = term if total is None else builder.add(total, term)
            acc.append(total)
        out = _carry_out(builder, acc)
        return context.make_tuple(builder, sig.return_type, out)

    return FE(FE, FE), codegen


@intrinsic
def _sq(typingctx: Any, a: Any) -> Any:
    """a^2 mod p: the symmetric products computed once and doubled."""
    if a != FE:
        return None

    def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> Any:
        x = _limbs128(builder, args[0])
        x2 = _scaled128(builder, args[0], 2)
        x19 = _scaled128(builder, args[0], 19)
        m = builder.mul
        a_ = builder.add
        acc = [
            a_(m(x[0], x[0]), a_(m(x2[1], x19[4]), m(x2[2], x19[3]))),
            a_(m(x2[0], x[1]), a_(m(x2[2], x19[4]), m(x[3], x19[3]))),
            a_(m(x2[0], x[2]), a_(m(x[1], x[1]), m(x2[3], x19[4]))),
            a_(m(x2[0], x[3]), a_(m(x2[1], x[2]), m(x[4], x19[4]))),
            a_(m(x2[0], x[4]), a_(m(x2[1], x[3]), m(x[2], x[2]))),
        ]
        out = _carry_out(builder, acc)
        return context.make_tuple(builder, sig.return_type, out)

    return FE(FE), codegen


# Seen from Python the intrinsics take numba's typing context first; from numba code
# they take field elements. Typed as Any so that mypy checks the callers' shape only.
mul: Any = _mul
sq: Any = _sq

_FOUR_P = (4 * (MASK51 - 18), 4 * MASK51, 4 * MASK51, 4 * MASK51, 4 * MASK51)


@njit(inline="always")
def carry(a0, a1, a2, a3, a4):
    c = a0 >> 51
    a0 &= MASK51
    a1 += c
    c = a1 >> 51
    a1 &= MASK51
    a2 += c
    c = a2 >> 51
    a2 &= MASK51
    a3 += c
    c = a3 >> 51
    a3 &= MASK51
    a4 += c
    c = a4 >> 51
    a4 &= MASK51
    a0 += 19 * c
    return (a0, a1, a2, a3, a4)


@njit(inline="always")
def add(a, b):
    return carry(a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4])


@njit(inline="always")
def sub(a, b):
    return carry(
        a[0] + _FOUR_P[0] - b[0],
        a[1] + _FOUR_P[1] - b[1],
        a[2] + _FOUR_P[2] - b[2],
        a[3] + _FOUR_P[3] - b[3],
        a[4] + _FOUR_P[4] - b[4],
    )


@njit(inline="always")
def add_nc(a, b):
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4])


@njit(inline="always")
def sub_nc(a, b):
    return (
        a[0] + _FOUR_P[0] - b[0],
        a[1] + _FOUR_P[1] - b[1],
        a[2] + _FOUR_P[2] - b[2],
        a[3] + _FOUR_P[3] - b[3],
        a[4] + _FOUR_P[4] - b[4],
    )


@njit(inline="always")
def neg(a):
    return sub((0, 0, 0, 0, 0), a)


@njit
def freeze(a):
    """The canonical representative in [0, p), limbs below 2^51."""
    t = carry(a[0], a[1], a[2], a[3], a[4])
    t = carry(t[0], t[1], t[2], t[3], t[4])
    a0, a1, a2, a3, a4 = t
    q = (a0 + 19) >> 51
    q = (a1 + q) >> 51
    q = (a2 + q) >> 51
    q = (a3 + q) >> 51
    q = (a4 + q) >> 51
    a0 += 19 * q
    c = a0 >> 51
    a0 &= MASK51
    a1 += c
    c = a1 >> 51
    a1 &= MASK51
    a2 += c
    c = a2 >> 51
    a2 &= MASK51
    a3 += c
    c = a3 >> 51
    a3 &= MASK51
    a4 = (a4 + c) & MASK51
    return (a0, a1, a2, a3, a4)


@njit
def equal(a, b):
    x = freeze(a)
    y = freeze(b)
    return x[0] == y[0] and x[1] == y[1] and x[2] == y[2] and x[3] == y[3] and x[4] == y[4]


@njit
def is_negative(a):
    """The low bit of the canonical value: the 'sign' of x in an encoded point."""
    return freeze(a)[0] & 1


@njit
def sq_times(a, n):
    for _ in range(n):
        a = sq(a)
    return a


@njit
def _pow_2_250_minus_1(z):
    """z^(2^250 - 1) and z^11, the shared head of inversion and square root."""
    z2 = sq(z)
    z8 = sq_times(z2, 2)
    z9 = mul(z, z8)
    z11 = mul(z2, z9)
    z_5_0 = mul(sq(z11), z9)  # z^(2^5 - 1)
    z_10_0 = mul(sq_times(z_5_0, 5), z_5_0)
    z_20_0 = mul(sq_times(z_10_0, 10), z_10_0)
    z_40_0 = mul(sq_times(z_20_0, 20), z_20_0)
    z_50_0 = mul(sq_times(z_40_0, 10), z_10_0)
    z_100_0 = mul(sq_times(z_50_0, 50), z_50_0)
    z_200_0 = mul(sq_times(z_100_0, 100), z_100_0)
    z_250_0 = mul(sq_times(z_200_0, 50), z_50_0)
    return z_250_0, z11


@njit
def invert(z):
    """z^(p-2) = 1/z (0 maps to 0)."""
    z_250_0, z11 = _pow_2_250_minus_1(z)
    return mul(sq_times(z_250_0, 5), z11)


@njit
def pow_p58(z):
    """z^((p-5)/8) = z^(2^252 - 3), the exponent of the square-root candidate."""
    z_250_0, _ = _pow_2_250_minus_1(z)
    return mul(sq_times(z_250_0, 2), z)


@njit(inline="always")
def _le_word(buf, off, nbytes):
    v = 0
    for k in range(nbytes):
        v |= int(buf[off + k]) << (8 * k)
    return v


@njit
def from_bytes(buf, off):
    """Bits 0..254 of the 32 little-endian bytes at ``buf[off]``; the value may be >= p
    (arithmetic does not care; ``freeze`` reduces it). Bit 255 is ignored."""
    w0 = _le_word(buf, off, 7)  # bits 0..55
    w1 = _le_word(buf, off + 6, 7)  # bits 48..103
    w2 = _le_word(buf, off + 12, 8)  # bits 96..159
    w3 = _le_word(buf, off + 19, 7)  # bits 152..207
    w4 = _le_word(buf, off + 25, 7)  # bits 200..255
    return (
        w0 & MASK51,
        (w1 >> 3) & MASK51,
        (w2 >> 6) & MASK51,
        (w3 >> 1) & MASK51,
        (w4 >> 4) & MASK51,
    )
