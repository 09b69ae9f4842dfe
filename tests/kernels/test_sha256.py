"""SHA-256 kernels against NIST CAVP, hashlib, and the RFC 9162 reference tree.

Both backends go through the same public functions; the multi-buffer kernel is also
called directly so that the tests do not depend on the small-input routing threshold.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.kernels import backend, pyobjects, reference, sha256
from chain.kernels.hasharray import HashArray, split_hashes
from tests.conftest import VECTORS

CAVP = VECTORS / "sha256"
BACKENDS = [backend.load(name) for name in backend.BACKENDS]


def _records(path: Path) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            continue
        key, _, value = line.partition(" = ")
        current[key] = value
        if key == "MD":
            records.append(current)
            current = {}
    return records


@pytest.mark.parametrize("name", ["SHA256ShortMsg.rsp", "SHA256LongMsg.rsp"])
def test_cavp_messages_all_at_once(name: str) -> None:
    records = _records(CAVP / name)
    assert len(records) in (64, 65)
    messages = [bytes.fromhex(r["Msg"])[: int(r["Len"]) // 8] for r in records]
    digests = sha256.hash_many(messages)
    assert [d.hex() for d in digests] == [r["MD"] for r in records]


def test_cavp_monte_carlo() -> None:
    text = (CAVP / "SHA256Monte.rsp").read_text()
    seed = bytes.fromhex(text.split("Seed = ")[1].split()[0])
    expected = [r["MD"] for r in _records(CAVP / "SHA256Monte.rsp")]
    assert len(expected) == 100
    for want in expected:
        md = [seed, seed, seed]
        for _ in range(1000):
            md = [md[1], md[2], sha256.hash_many([md[0] + md[1] + md[2]])[0]]
        seed = md[2]
        assert seed.hex() == want


def test_every_length_0_to_300_with_and_without_prefix() -> None:
    rng = random.Random(300)
    messages = [rng.randbytes(n) for n in range(301)]
    shuffled = messages[:]
    rng.shuffle(shuffled)
    for batch in (messages, shuffled):
        assert sha256.hash_many(batch) == [hashlib.sha256(m).digest() for m in batch]
        assert sha256.hash_many(batch, prefix=0) == reference.leaf_hashes(batch)
        assert sha256.hash_many(batch, prefix=1) == [
            hashlib.sha256(b"\x01" + m).digest() for m in batch
        ]


@pytest.mark.parametrize("be", BACKENDS, ids=lambda b: b.name)
def test_leaf_hashes_match_hashlib(be: backend.Backend) -> None:
    rng = random.Random(7)
    for n in (0, 1, 15, 16, 17, 100):
        datas = [rng.randbytes(rng.randrange(0, 200)) for _ in range(n)]
        assert be.leaf_hashes(datas) == [hashlib.sha256(b"\x00" + d).digest() for d in datas]


@pytest.mark.parametrize("be", BACKENDS, ids=lambda b: b.name)
def test_merkle_root_matches_reference_for_every_small_size(be: backend.Backend) -> None:
    rng = random.Random(9)
    leaves = [rng.randbytes(32) for _ in range(300)]
    for n in range(301):
        assert be.merkle_root(leaves[:n]) == reference.merkle_root(leaves[:n]), n


@pytest.mark.parametrize(
    "n", [1, 2, 3, 31, 32, 33, 1023, 1025, 4095, 4096, 4097, 8191, 8192, 8193, 3 * 4096 + 5]
)
def test_merkle_kernel_directly_across_chunk_boundaries(n: int) -> None:
    assert sha256.MERKLE_CHUNK_LEAVES == 4096
    rng = random.Random(n)
    leaves = [rng.randbytes(32) for _ in range(n)]
    want = reference.merkle_root(leaves)
    assert sha256.merkle_root(leaves) == want
    assert sha256.merkle_root(tuple(leaves)) == want
    assert sha256.merkle_root(HashArray.from_hashes(leaves)) == want


def test_merkle_root_of_nothing_is_sha256_of_nothing() -> None:
    assert sha256.merkle_root([]) == hashlib.sha256(b"").digest()


def test_merkle_root_of_odd_sized_hashes_falls_back_to_reference() -> None:
    leaves = [b"x" * 31, b"y" * 33] * 20
    assert sha256.merkle_root(leaves) == reference.merkle_root(leaves)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=40), st.integers(-1, 255))
def test_hash_many_matches_hashlib(datas: list[bytes], prefix: int) -> None:
    head = b"" if prefix < 0 else bytes([prefix])
    assert sha256.hash_many(datas, prefix) == [hashlib.sha256(head + d).digest() for d in datas]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=200))
def test_merkle_root_matches_reference(leaves: list[bytes]) -> None:
    assert sha256.merkle_root(leaves) == reference.merkle_root(leaves)


def test_bytes_objects_are_read_in_place_on_this_interpreter() -> None:
    # The fast path for lists exists here; the tests above then exercise it, not the gather.
    assert pyobjects.LAYOUT is not None


class _Hash(bytes):
    """A bytes subclass: equal bytes, but not the object layout the kernel reads."""


@pytest.mark.parametrize("where", [0, 1, 17, 4095, 4096, 5000])
@pytest.mark.parametrize(
    "odd",
    [
        lambda h: bytearray(h),
        lambda h: memoryview(h),
        lambda h: _Hash(h),
        lambda h: h[:31],
        lambda h: h + b"!",
    ],
    ids=["bytearray", "memoryview", "subclass", "short", "long"],
)
def test_merkle_root_of_a_list_with_one_odd_element(where: int, odd: Any) -> None:
    rng = random.Random(where)
    leaves: list[Any] = [rng.randbytes(32) for _ in range(5001)]
    leaves[where] = odd(leaves[where])
    n = len(leaves)
    if pyobjects.LAYOUT is not None:  # the kernel names the first element it cannot take
        out = np.empty(8, dtype=np.uint32)
        bad = sha256.merkle_root_objects(
            pyobjects.items_address(leaves), n, pyobjects.LAYOUT.bytes_type, sha256._OFFSETS, out
        )
        assert bad == where
    want = reference.merkle_root([bytes(h) for h in leaves])
    if all(len(h) == 32 for h in leaves):
        assert sha256.merkle_root(leaves) == want
    else:
        assert sha256.merkle_root(leaves) == reference.merkle_root(leaves)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=300),
    st.booleans(),
)
def test_merkle_root_of_lists_and_tuples_matches_reference(
    leaves: list[bytes], as_tuple: bool
) -> None:
    seq = tuple(leaves) if as_tuple else leaves
    for be in BACKENDS:
        assert be.merkle_root(seq) == reference.merkle_root(leaves)


# The Merkle kernels stream leaves 32 at a time into level buffers and carry full levels
# upwards like a binary counter; these sizes cover every remainder below 32, sizes with
# every bit set (the longest final fold) and carries across many levels.
STREAM_SIZES = [
    *range(1, 70),
    *(32 * m + r for m in (2, 3, 5, 7, 16, 31) for r in (0, 1, 15, 16, 17, 31)),
    *(2**k + d for k in range(6, 15) for d in (-1, 0, 1)),
    2**15 + 2**10 + 2**5 + 3,
]


@pytest.mark.parametrize("n", STREAM_SIZES)
def test_streamed_merkle_kernels_match_reference(n: int) -> None:
    rng = random.Random(1000 + n)
    leaves = [rng.randbytes(32) for _ in range(n)]
    want = reference.merkle_root(leaves)
    out = np.empty(8, dtype=np.uint32)
    sha256.merkle_root_words(np.frombuffer(b"".join(leaves), dtype=np.uint8), out)
    assert sha256._digest_bytes(out) == want
    if pyobjects.LAYOUT is not None:
        for seq in (leaves, tuple(leaves)):
            assert (
                sha256.merkle_root_objects(
                    pyobjects.items_address(seq),
                    n,
                    pyobjects.LAYOUT.bytes_type,
                    sha256._OFFSETS,
                    out,
                )
                == -1
            )
            assert sha256._digest_bytes(out) == want


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3000), st.integers(0, 2**32 - 1))
def test_merkle_root_of_any_size_matches_reference(n: int, seed: int) -> None:
    rng = random.Random(seed)
    leaves = [rng.randbytes(32) for _ in range(n)]
    want = reference.merkle_root(leaves)
    assert sha256.merkle_root(leaves) == want
    assert sha256.merkle_root(HashArray.from_hashes(leaves)) == want


@pytest.mark.parametrize("same_array", [False, True])
def test_sixteen_node_hashes_at_once_match_hashlib(same_array: bool) -> None:
    # Level buffer layout: word t of node k at t * ROW + k; nodes 2j, 2j+1 make node j.
    rng = np.random.default_rng(16)
    src = rng.integers(0, 2**32, 8 * sha256.ROW, dtype=np.uint32)
    nodes = [src[k :: sha256.ROW].astype(">u4").tobytes() for k in range(sha256.ROW)]
    if same_array:  # how the kernels call it: the level above, in the same array
        buf = np.concatenate([src, np.zeros(8 * sha256.ROW, dtype=np.uint32)])
        sha256._node_hash16(buf, np.uint64(0), buf, np.uint64(8 * sha256.ROW + 16))
        dst = buf[8 * sha256.ROW + 16 :]
    else:
        dst = np.zeros(8 * sha256.ROW, dtype=np.uint32)
        sha256._node_hash16(src, np.uint64(0), dst, np.uint64(0))
    got = [dst[j :: sha256.ROW][:8].astype(">u4").tobytes() for j in range(16)]
    want = [hashlib.sha256(b"\x01" + nodes[2 * j] + nodes[2 * j + 1]).digest() for j in range(16)]
    assert got == want


# Leaf data lengths around SHA-256's block and padding boundaries (a leaf hash covers one
# more byte, the 0x00 prefix), and large leaves of several blocks.
EDGE_LENGTHS = [0, 1, 31, 32, 33, 54, 55, 56, 57, 63, 64, 65, 119, 120, 121, 128, 1000, 4099]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 16, 17, 33, 100])
def test_tree_of_edge_length_leaves_matches_hashlib(n: int) -> None:
    rng = random.Random(n)
    datas = [rng.randbytes(EDGE_LENGTHS[i % len(EDGE_LENGTHS)]) for i in range(n)]
    leaves = [hashlib.sha256(b"\x00" + d).digest() for d in datas]
    assert sha256.leaf_hashes(datas) == leaves
    assert sha256.merkle_root(sha256.leaf_hashes(datas)) == reference.merkle_root(leaves)
    assert sha256.merkle_root(sha256.leaf_hash_array(datas)) == reference.merkle_root(leaves)


@pytest.mark.parametrize("size", EDGE_LENGTHS[1:])
@pytest.mark.parametrize("n", [1, 2, 3, 16, 33])
def test_fixed_size_records_of_edge_lengths(size: int, n: int) -> None:
    records = random.Random(size * n).randbytes(size * n)
    want = reference.merkle_root(
        [
            hashlib.sha256(b"\x00" + records[i : i + size]).digest()
            for i in range(0, len(records), size)
        ]
    )
    assert sha256.fixed_leaves_root(records, size) == want


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(EDGE_LENGTHS), max_size=40), st.integers(0, 2**32 - 1))
def test_leaf_hashes_and_root_of_edge_lengths(lengths: list[int], seed: int) -> None:
    rng = random.Random(seed)
    datas = [rng.randbytes(k) for k in lengths]
    leaves = [hashlib.sha256(b"\x00" + d).digest() for d in datas]
    assert sha256.leaf_hashes(datas) == leaves
    assert sha256.merkle_root(leaves) == reference.merkle_root(leaves)


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 4095, 4096, 4097, 9000])
def test_node_hashes_on_both_backends_match_hashlib(n: int) -> None:
    rng = random.Random(n)
    pairs = rng.randbytes(64 * n)
    want = b"".join(
        hashlib.sha256(b"\x01" + pairs[i : i + 64]).digest() for i in range(0, len(pairs), 64)
    )
    assert sha256.node_hashes(pairs) == want
    for be in BACKENDS:
        assert be.node_hashes(pairs) == want


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=64 * 40).map(lambda b: b[: len(b) // 64 * 64]))
def test_node_hashes_matches_reference(pairs: bytes) -> None:
    assert sha256.node_hashes(pairs) == reference.node_hashes(pairs)


@pytest.mark.parametrize("fn", [sha256.node_hashes, reference.node_hashes])
def test_node_hashes_refuses_a_half_pair(fn: Any) -> None:
    with pytest.raises(ValueError):
        fn(bytes(96))


@pytest.mark.parametrize("n", [0, 1, 2, 999, 4096, 4097, 9000])
def test_split_hashes_is_slicing(n: int) -> None:
    raw = random.Random(n).randbytes(32 * n)
    assert split_hashes(raw) == [raw[i : i + 32] for i in range(0, len(raw), 32)]


def test_split_hashes_refuses_a_partial_hash() -> None:
    with pytest.raises(ValueError):
        split_hashes(bytes(33))
