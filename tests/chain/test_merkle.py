"""RFC 9162 Merkle tree: the transparency-dev vectors, and proofs from our own trees."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import merkle
from chain.hashing import EMPTY_ROOT, leaf_hash, node_hash
from chain.kernels import backend, reference
from tests.conftest import VECTORS

MERKLE = VECTORS / "merkle"


def _b64(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [base64.b64decode(v) for v in value]
    return base64.b64decode(value)


def _files(kind: str) -> list[Path]:
    return sorted((MERKLE / kind).rglob("*.json"))


def test_vector_sets_are_present() -> None:
    assert len(_files("inclusion")) > 50
    assert len(_files("consistency")) > 50


@pytest.mark.parametrize("path", _files("inclusion"), ids=lambda p: str(p.relative_to(MERKLE)))
def test_inclusion_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], _b64(v["proof"]), _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("path", _files("consistency"), ids=lambda p: str(p.relative_to(MERKLE)))
def test_consistency_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (v["size1"], v["size2"], _b64(v["proof"]), _b64(v["root1"]), _b64(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, written as the recursive definition (the oracle)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def _tree(n: int) -> tuple[merkle.MemoryTree, list[bytes]]:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    t = merkle.MemoryTree()
    t.extend(leaves)
    return t, leaves


def test_roots_match_the_recursive_definition_for_every_size_to_130() -> None:
    t = merkle.MemoryTree()
    leaves: list[bytes] = []
    assert t.root() == EMPTY_ROOT
    for i in range(130):
        leaf = leaf_hash(bytes([i]))
        leaves.append(leaf)
        t.append(leaf)
        want = mth(leaves)
        assert t.root() == want
        assert merkle.root(leaves) == want
        assert reference.merkle_root(leaves) == want
        assert merkle.root_at(t.get_node, len(leaves)) == want


def test_every_inclusion_and_consistency_proof_up_to_40_leaves_verifies() -> None:
    t, leaves = _tree(40)
    for size in range(1, 41):
        r = t.root(size)
        for i in range(size):
            merkle.verify_inclusion(leaves[i], i, size, t.inclusion_proof(i, size), r)
        for size1 in range(1, size + 1):
            proof = t.consistency_proof(size1, size)
            merkle.verify_consistency(size1, size, proof, t.root(size1), r)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
    st.integers(0, 31),
    st.integers(0, 7),
)
def test_a_flipped_bit_anywhere_in_an_inclusion_proof_is_rejected(
    case: tuple[int, int], which: int, bit: int
) -> None:
    n, i = case
    t, leaves = _tree(n)
    proof = t.inclusion_proof(i)
    merkle.verify_inclusion(leaves[i], i, n, proof, t.root())
    if not proof:
        return
    j = which % len(proof)
    bad = bytearray(proof[j])
    bad[bit] ^= 1
    proof[j] = bytes(bad)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(leaves[i], i, n, proof, t.root())


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))))
def test_consistency_proofs_verify_and_reject_a_wrong_old_root(case: tuple[int, int]) -> None:
    size2, size1 = case
    t, _ = _tree(size2)
    proof = t.consistency_proof(size1, size2)
    merkle.verify_consistency(size1, size2, proof, t.root(size1), t.root(size2))
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(size1, size2, proof, leaf_hash(b"other"), t.root(size2))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.integers(), st.binary(), st.text(), st.lists(st.binary())),
        min_size=5,
        max_size=5,
    )
)
def test_verifiers_raise_only_proof_error_on_garbage(args: list[Any]) -> None:
    for fn in (merkle.verify_inclusion, merkle.verify_consistency):
        with contextlib.suppress(merkle.ProofError):
            fn(*args)


def test_proof_generation_reads_only_log_n_nodes() -> None:
    t, _ = _tree(1000)
    reads = 0

    def counting(level: int, index: int) -> bytes:
        nonlocal reads
        reads += 1
        return t.get_node(level, index)

    for i in (0, 1, 511, 512, 998, 999):
        reads = 0
        merkle.inclusion_proof(counting, i, 1000)
        assert reads <= 2 * 10 + 2
    reads = 0
    merkle.consistency_proof(counting, 333, 1000)
    assert reads <= 3 * 10


def test_frontier_reloads_from_stored_nodes() -> None:
    t, _leaves = _tree(77)
    f = merkle.Frontier.load(t.get_node, 77)
    assert f.root() == t.root()
    made = f.append(leaf_hash(b"next"))
    t.append(leaf_hash(b"next"))
    assert f.root() == t.root()
    assert [(lvl, idx) for lvl, idx, _ in made] == [(0, 77), (1, 38)]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 200), st.lists(st.integers(0, 70), max_size=6))
def test_frontier_extend_equals_append_one_by_one(start: int, batches: list[int]) -> None:
    one, many = merkle.Frontier(), merkle.Frontier()
    n = 0
    for size in [start, *batches]:
        leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n, n + size)]
        n += size
        made_one = [node for leaf in leaves for node in one.append(leaf)]
        made_many = many.extend(leaves)
        assert sorted(made_one) == sorted(made_many)
        assert one.size == many.size == n
        assert one.root() == many.root()


@pytest.mark.parametrize("name", backend.BACKENDS)
@pytest.mark.parametrize("start", [0, 1, 5, 1000])
def test_frontier_extend_levels_on_both_backends(
    name: str, start: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "_active", backend.load(name))
    one, many = merkle.Frontier(), merkle.Frontier()
    first = [leaf_hash(i.to_bytes(4, "big")) for i in range(start)]
    for leaf in first:
        one.append(leaf)
    many.extend(first)
    leaves = [leaf_hash(b"x" + i.to_bytes(4, "big")) for i in range(1000)]
    made_one = [node for leaf in leaves for node in one.append(leaf)]
    levels = many.extend_levels(leaves)
    flat = [(lvl, s + i, h) for lvl, s, hashes in levels for i, h in enumerate(hashes)]
    assert sorted(flat) == sorted(made_one)
    assert [lvl for lvl, _, _ in levels] == list(range(len(levels)))
    assert one.root() == many.root()


def test_frontier_extend_with_leaves_that_are_not_hashes() -> None:
    # Any bytes may be a leaf of a Frontier; only 32-byte ones go to the kernel.
    leaves = [bytes([i]) * (i % 40) for i in range(100)]
    one, many = merkle.Frontier(), merkle.Frontier()
    made_one = [node for leaf in leaves for node in one.append(leaf)]
    assert sorted(many.extend(leaves)) == sorted(made_one)
    assert one.root() == many.root()
