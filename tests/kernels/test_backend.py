"""The GRANTCHAIN_KERNELS switch and the shape of both backends."""

from __future__ import annotations

import pytest

from chain.kernels import backend, numba_backend


def test_default_is_numba_and_reference_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRANTCHAIN_KERNELS", raising=False)
    assert backend.requested_name() == "numba"
    monkeypatch.setenv("GRANTCHAIN_KERNELS", " Reference ")
    assert backend.requested_name() == "reference"
    monkeypatch.setenv("GRANTCHAIN_KERNELS", "")
    assert backend.requested_name() == "numba"
    monkeypatch.setenv("GRANTCHAIN_KERNELS", "gpu")
    with pytest.raises(ValueError):
        backend.requested_name()
    with pytest.raises(ValueError):
        backend.load("gpu")


def test_both_backends_offer_the_same_operations() -> None:
    ref, fast = backend.load("reference"), backend.load("numba")
    assert (ref.name, fast.name) == ("reference", "numba")
    assert fast.verify_batch is numba_backend.verify_batch
    for be in (ref, fast):
        be.warmup()
        be.register_keys([bytes(32), b"short"])
        assert be.verify_batch([], [], []) == []
        assert be.leaf_hashes([]) == []


def test_register_keys_fills_the_process_key_cache() -> None:
    key = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    numba_backend.register_keys([key])
    assert key in numba_backend.KEY_TABLES
