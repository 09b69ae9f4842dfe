"""Cutting work over threads changes nothing: same roots, hashes and verdicts."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from chain import signing
from chain.kernels import backend, parallel, reference
from chain.kernels.hasharray import HashArray

BACKENDS = [backend.load(name) for name in backend.BACKENDS]


@pytest.mark.parametrize("be", BACKENDS, ids=lambda b: b.name)
def test_merkle_root_in_parts_is_the_same_tree(be: backend.Backend) -> None:
    rng = random.Random(3)
    leaves = [rng.randbytes(32) for _ in range(200)]
    with ThreadPoolExecutor(2) as pool:
        for n in [*range(0, 40), 64, 65, 127, 200]:
            want = reference.merkle_root(leaves[:n])
            for parts in (1, 2, 3, 4, 7):
                assert parallel.merkle_root(pool, be.merkle_root, leaves[:n], parts) == want
                arr = HashArray.from_hashes(leaves[:n])
                assert parallel.merkle_root(pool, be.merkle_root, arr, parts) == want


@pytest.mark.parametrize("be", BACKENDS, ids=lambda b: b.name)
def test_verify_and_leaf_hashes_in_parts_keep_order(be: backend.Backend) -> None:
    rng = random.Random(4)
    keys = [signing.private_key_from_bytes(rng.randbytes(32)) for _ in range(3)]
    msgs = [rng.randbytes(rng.randrange(50)) for _ in range(40)]
    sigs = [signing.sign(keys[i % 3], m) for i, m in enumerate(msgs)]
    pubs = [signing.public_key_bytes(keys[i % 3]) for i in range(40)]
    sigs[5] = sigs[6]
    want = reference.verify_batch(pubs, msgs, sigs)
    assert want.count(False) == 1
    with ThreadPoolExecutor(2) as pool:
        for parts in (1, 2, 5, 64):
            assert parallel.verify_batch(pool, be.verify_batch, pubs, msgs, sigs, parts) == want
            assert parallel.leaf_hashes(pool, be.leaf_hashes, msgs, parts) == (
                reference.leaf_hashes(msgs)
            )
        assert parallel.verify_batch(pool, be.verify_batch, [], [], [], 2) == []


def test_hash_array_is_a_sequence_of_hashes() -> None:
    hashes = [bytes([i]) * 32 for i in range(10)]
    arr = HashArray.from_hashes(hashes)
    assert len(arr) == 10 and arr[3] == hashes[3] and arr[-1] == hashes[-1]
    assert list(arr) == hashes and arr == hashes and arr[2:5] == hashes[2:5]
    assert arr[::3] == hashes[::3] and arr[7:2] == [] and len(arr[20:]) == 0
    assert arr.buffer == b"".join(hashes) and arr.buffer.readonly
    assert HashArray(bytearray(b"".join(hashes))) == arr
    with pytest.raises(IndexError):
        arr[10]
    with pytest.raises(ValueError):
        HashArray(b"x" * 33)
    with pytest.raises(ValueError):
        HashArray.from_hashes([b"x" * 31])
    for be in BACKENDS:
        assert be.merkle_root(arr) == reference.merkle_root(hashes)


def test_two_threads_sharing_a_churning_key_cache_keep_every_verdict() -> None:
    """Capacity 3 for 12 keys: tables are built and evicted while the other thread's
    kernel runs; verdicts must not move."""
    from chain.kernels import ed25519
    from chain.kernels.keytables import KeyTables

    rng = random.Random(12)
    keys = [signing.private_key_from_bytes(rng.randbytes(32)) for _ in range(12)]
    msgs = [rng.randbytes(20) for _ in range(240)]
    sigs = [signing.sign(keys[i % 12], m) for i, m in enumerate(msgs)]
    pubs = [signing.public_key_bytes(keys[i % 12]) for i in range(240)]
    for i in range(0, 240, 7):
        sigs[i] = sigs[i][:32] + bytes(32)
    want = reference.verify_batch(pubs, msgs, sigs)
    tables = KeyTables(capacity=3, uses_min=1)

    def verify(k: list[bytes], m: list[bytes], s: list[bytes]) -> list[bool]:
        return ed25519.verify_batch(k, m, s, tables)

    with ThreadPoolExecutor(2) as pool:
        for parts in (2, 8, 24):
            assert parallel.verify_batch(pool, verify, pubs, msgs, sigs, parts) == want
    assert len(tables) <= 3
