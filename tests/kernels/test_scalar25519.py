"""Digests reduced mod L by the kernel equal Python's ``int % L`` on every input: the
clean results bit for bit, and the fallback for the ones the kernel cannot show below
2^252 (values on purpose next to the boundaries: multiples of L, 2^252 + k L)."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.kernels import ed25519, scalar25519
from chain.kernels.scalar25519 import L

MAX = 2**512 - 1


def _python(values: list[int]) -> bytes:
    return b"".join((v % L).to_bytes(32, "little") for v in values)


def _digests(values: list[int]) -> bytes:
    return b"".join(v.to_bytes(64, "little") for v in values)


def _edges() -> list[int]:
    out = [0, 1, 2**252 - 1, 2**252, 2**253, 2**256 - 1, 2**511, MAX, MAX - 1]
    for k in (0, 1, 2, 3, 19, 2**64, 2**100, 2**200, 2**259, MAX // L - 1, MAX // L):
        for d in (-(2**130), -(2**126), -2, -1, 0, 1, 2, 2**125, 2**126, 2**252 - L):
            out.append(k * L + d)
            out.append(2**252 + k * L + d)
    return [v for v in out if 0 <= v <= MAX]


def test_the_fold_digits_are_minus_l0() -> None:
    assert sum(d << (21 * i) for i, d in enumerate(scalar25519.FOLD)) == 2**252 - L


def test_boundary_values_match_python() -> None:
    values = _edges()
    assert scalar25519.reduce(_digests(values)) == _python(values)


def test_the_kernel_flags_what_it_cannot_show_reduced() -> None:
    """The fallback is exercised (some edges are flagged) and never anything random."""
    values = _edges()
    out = np.empty(32 * len(values), dtype=np.uint8)
    clean = np.empty(len(values), dtype=np.uint8)
    scalar25519.reduce_kernel(np.frombuffer(_digests(values), dtype=np.uint8), out, clean)
    assert 0 < int((clean == 0).sum()) < len(values)
    for v, ok, i in zip(values, clean.tolist(), range(len(values)), strict=True):
        if ok:
            assert out[32 * i : 32 * i + 32].tobytes() == (v % L).to_bytes(32, "little")
    rng = random.Random(14)
    digests = b"".join(hashlib.sha512(rng.randbytes(40)).digest() for _ in range(20_000))
    clean = np.empty(20_000, dtype=np.uint8)
    scalar25519.reduce_kernel(
        np.frombuffer(digests, dtype=np.uint8), np.empty(32 * 20_000, dtype=np.uint8), clean
    )
    assert clean.all()


def test_random_and_sha512_values_match_python() -> None:
    rng = random.Random(2026)
    values = [rng.getrandbits(512) for _ in range(20_000)]
    values += [rng.getrandbits(rng.randrange(1, 513)) for _ in range(20_000)]
    values += [
        int.from_bytes(hashlib.sha512(i.to_bytes(4, "little")).digest(), "little")
        for i in range(20_000)
    ]
    assert scalar25519.reduce(_digests(values)) == _python(values)


@settings(max_examples=300)
@given(st.lists(st.integers(0, MAX), max_size=40))
def test_any_values_match_python(values: list[int]) -> None:
    assert scalar25519.reduce(_digests(values)) == _python(values)


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(st.integers(0, MAX // L), st.integers(-(2**130), 2**130)), min_size=1, max_size=20
    )
)
def test_values_near_multiples_of_l_match_python(pairs: list[tuple[int, int]]) -> None:
    values = [min(MAX, max(0, k * L + d)) for k, d in pairs]
    assert scalar25519.reduce(_digests(values)) == _python(values)


def test_empty_and_misaligned_input() -> None:
    assert scalar25519.reduce(b"") == b""
    with pytest.raises(ValueError, match="64 bytes"):
        scalar25519.reduce(bytes(63))


def test_challenges_agree_below_and_above_the_kernel_threshold() -> None:
    """``ed25519.challenges`` takes Python integers for a few signatures and the kernel
    from ``REDUCE_IN_KERNEL_MIN``: the same bytes either way."""
    rng = random.Random(7)
    n = ed25519.REDUCE_IN_KERNEL_MIN
    keys = [rng.randbytes(32) for _ in range(n)]
    msgs = [rng.randbytes(rng.randrange(0, 300)) for _ in range(n)]
    sigs = [rng.randbytes(64) for _ in range(n)]
    whole = ed25519.challenges(keys, msgs, sigs)
    one_by_one = b"".join(
        ed25519.challenges([k], [m], [s]) for k, m, s in zip(keys, msgs, sigs, strict=True)
    )
    assert whole == one_by_one
    expect = b"".join(
        (int.from_bytes(hashlib.sha512(s[:32] + k + m).digest(), "little") % L).to_bytes(
            32, "little"
        )
        for k, m, s in zip(keys, msgs, sigs, strict=True)
    )
    assert whole == expect
