"""The results tree's fast path (leaves laid out by numpy, hashed where they lie) gives the
root of the plain definition, and refuses the same codes."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import merkle
from chain.block import BlockError, result_leaf, results_root
from chain.hashing import leaf_hash
from chain.kernels import numba_backend, reference


def _plain(ids: list[bytes], results: list[int]) -> bytes:
    return merkle.root([leaf_hash(result_leaf(t, r)) for t, r in zip(ids, results, strict=True)])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(min_size=32, max_size=32),
            st.one_of(st.integers(0, 63), st.integers(0, 2**16 - 1)),
        ),
        min_size=1,
        max_size=300,
    )
)
def test_the_fast_path_is_the_plain_definition(pairs: list[tuple[bytes, int]]) -> None:
    ids, results = [t for t, _ in pairs], [r for _, r in pairs]
    assert results_root(ids, results) == _plain(ids, results)


@pytest.mark.parametrize("bad", [-1, 2**16, 2**70, True])
def test_a_code_out_of_range_is_refused_on_every_path(bad: int) -> None:
    ids = [hashlib.sha256(b"%d" % i).digest() for i in range(40)]
    with pytest.raises(BlockError, match="result code"):
        results_root(ids, [0] * 39 + [bad])


@pytest.mark.parametrize("n", [1, 15, 16, 17, 1000, 4097])
def test_fixed_leaves_root_kernel_agrees_with_hashlib(n: int) -> None:
    records = b"".join(hashlib.sha256(b"r%d" % i).digest()[:2] * 17 for i in range(n))
    assert numba_backend.fixed_leaves_root(records, 34) == reference.fixed_leaves_root(records, 34)


def test_fixed_leaves_root_refuses_partial_records() -> None:
    for fn in (numba_backend.fixed_leaves_root, reference.fixed_leaves_root):
        with pytest.raises(ValueError, match="whole records"):
            fn(bytes(35 * 20), 34)
