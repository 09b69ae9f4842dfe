"""``chain.kernels.logextend`` (a block's new log tree nodes, every level in one kernel
call) against the level-at-a-time path of ``Frontier.extend_levels`` (``node_hashes``
per level), ``Frontier.append`` leaf by leaf (hashlib), the reference backend, and the
transparency-dev vectors: the same levels, frontier, roots and proofs, byte for byte."""

from __future__ import annotations

import base64
import dataclasses
import json
import random

import pytest

from chain import merkle
from chain.hashing import leaf_hash
from chain.kernels import backend, logextend, reference
from chain.merkle import Frontier
from tests.conftest import VECTORS

NUMBA = backend.load("numba")
LEVEL_AT_A_TIME = dataclasses.replace(NUMBA, log_extend=None)


def _extend(f: Frontier, leaves: list[bytes], kernels: backend.Backend, mp: pytest.MonkeyPatch):
    mp.setattr(backend, "_active", kernels)
    return f.extend_levels(leaves)


def _extend_joined(f: Frontier, leaves: list[bytes], mp: pytest.MonkeyPatch):
    mp.setattr(backend, "_active", NUMBA)
    return f.extend_levels(leaves, joined=b"".join(leaves))


def _random_frontier(rng: random.Random, size: int) -> Frontier:
    """A frontier of any shape: ``size``'s set bits, nodes that no leaves of ours made."""
    return Frontier(size, [rng.randbytes(32) for _ in range(size.bit_count())])


def _same_either_way(before: Frontier, leaves: list[bytes], mp: pytest.MonkeyPatch) -> None:
    kernel, level, ref = before.copy(), before.copy(), before.copy()
    got = _extend(kernel, leaves, NUMBA, mp)
    assert got == _extend(level, leaves, LEVEL_AT_A_TIME, mp)
    assert got == _extend(ref, leaves, backend.REFERENCE, mp)
    assert kernel == level == ref and kernel.root() == ref.root()
    given = before.copy()  # the leaves end to end from the caller (``chain.assemble``)
    with_joined = _extend_joined(given, leaves, mp)
    assert with_joined == got and given == kernel
    assert all(type(h) is bytes for _, _, hashes in got for h in hashes)
    one = before.copy()
    made_one = [node for leaf in leaves for node in one.append(leaf)]
    flat = [(lvl, s + i, h) for lvl, s, hashes in got for i, h in enumerate(hashes)]
    assert sorted(flat) == sorted(made_one)
    assert one == kernel
    # Level L holds exactly the nodes whose subtree ends inside the block (the store's check).
    end = before.size + len(leaves)
    for lvl, s, hashes in got:
        assert s == before.size >> lvl and len(hashes) == (end >> lvl) - s


SIZES = [1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 999, 1000, 1024, 1025, 4097]
STARTS = [0, 1, 2, 3, 5, 6, 7, 8, 31, 1000, 1023, 1024, 1025, 2**20 - 1, 2**40 + 12345]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("start", STARTS)
def test_kernel_equals_the_level_at_a_time_path(
    n: int, start: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(n * 7919 + start)
    leaves = [rng.randbytes(32) for _ in range(n)]
    _same_either_way(_random_frontier(rng, start), leaves, monkeypatch)


@pytest.mark.parametrize("seed", range(40))
def test_random_sizes_and_starts(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    size = rng.choice([rng.randrange(0, 70), rng.randrange(0, 5000), rng.randrange(0, 2**61)])
    f = _random_frontier(rng, size)
    for _ in range(4):  # blocks one after another on the frontier the kernel left
        n = rng.choice([1, 2, rng.randrange(1, 40), rng.randrange(1, 3000)])
        leaves = [rng.randbytes(32) for _ in range(n)]
        _same_either_way(f, leaves, monkeypatch)
        _extend(f, leaves, NUMBA, monkeypatch)


def test_a_log_built_by_blocks_answers_every_proof_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(5)
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(700)]
    levels: dict[tuple[int, int], bytes] = {}
    f, at = Frontier(), 0
    while at < len(leaves):
        n = rng.choice([1, 1, 2, 3, rng.randrange(1, 130)])
        for lvl, s, hashes in _extend(f, leaves[at : at + n], NUMBA, monkeypatch):
            levels.update(((lvl, s + i), h) for i, h in enumerate(hashes))
        at += n
        assert f.root() == reference.merkle_root(leaves[:at])
    tree = merkle.MemoryTree()
    tree.extend(leaves)
    for size in (1, 2, 77, 128, 511, 700):
        for index in (0, size // 3, size - 1):
            proof = merkle.inclusion_proof(lambda lv, i: levels[(lv, i)], index, size)
            assert proof == tree.inclusion_proof(index, size)
            merkle.verify_inclusion(leaves[index], index, size, proof, tree.root(size))
        for old in (1, size // 2 or 1, size):
            proof = merkle.consistency_proof(lambda lv, i: levels[(lv, i)], old, size)
            assert proof == tree.consistency_proof(old, size)


# The leaves of the transparency-dev vectors (its ``testonly.LeafInputs``).
VECTOR_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
]  # fmt: skip


def _valid_inclusion_vectors() -> list[dict]:
    found = []
    for path in sorted((VECTORS / "merkle" / "inclusion").rglob("*.json")):
        v = json.loads(path.read_text())
        if not v["wantErr"]:
            found.append(v)
    return found


def test_transparency_dev_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = [leaf_hash(leaf) for leaf in VECTOR_LEAVES]
    vectors = [v for v in _valid_inclusion_vectors() if v["treeSize"] <= len(hashes)]
    assert vectors
    for v in vectors:
        size, index, leaf = v["treeSize"], v["leafIdx"], base64.b64decode(v["leafHash"])
        tree = [leaf] if size == 1 else hashes[:size]  # a tree of one: any leaf hash
        assert tree[index] == leaf
        for cut in range(size + 1):  # the tree built as two blocks, cut anywhere
            f = Frontier()
            levels: dict[tuple[int, int], bytes] = {}
            for part in (tree[:cut], tree[cut:]):
                for lvl, s, got in _extend(f, part, NUMBA, monkeypatch):
                    levels.update(((lvl, s + i), h) for i, h in enumerate(got))
            assert f.root() == base64.b64decode(v["root"])
            proof = merkle.inclusion_proof(lambda lv, i, nodes=levels: nodes[(lv, i)], index, size)
            assert proof == [base64.b64decode(p) for p in v["proof"] or []]


def test_one_leaf_blocks_and_the_kernel_api_directly() -> None:
    rng = random.Random(9)
    f = Frontier()
    for _ in range(300):
        leaf = rng.randbytes(32)
        before = f.copy()
        nodes, ends, after = logextend.extend(b"".join(before._nodes), before.size, leaf)
        made = f.append(leaf)
        assert ends[0] == 0 and len(ends) == len(made)
        assert nodes == b"".join(h for _, _, h in made[1:])
        assert after == b"".join(f._nodes)


def test_warmup_agrees() -> None:
    assert logextend.warmup()


def test_joined_leaves_must_be_whole_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "_active", NUMBA)
    f = Frontier()
    with pytest.raises(ValueError, match="joined"):
        f.extend_levels([bytes(32), bytes(32)], joined=bytes(63))
    assert f == Frontier()


def test_the_numba_backend_extends_with_this_kernel() -> None:
    assert NUMBA.log_extend is logextend.extend and backend.REFERENCE.log_extend is None
