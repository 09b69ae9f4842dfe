"""The start-up self-check passes on good kernels and stops a node on a wrong one."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chain.kernels import backend, numba_backend, reference, selfcheck


def test_warmup_runs_the_self_check_and_passes() -> None:
    numba_backend.warmup()
    backend.load("reference").warmup()
    selfcheck.run(reference.leaf_hashes, reference.merkle_root, reference.verify_batch)


def test_self_check_cases_hold_both_verdicts_and_lenient_keys() -> None:
    keys, _, _ = selfcheck.signature_cases()
    want = reference.verify_batch(*selfcheck.signature_cases())
    assert 0 < sum(want) < len(want)
    assert (1).to_bytes(32, "little") in keys


def test_self_check_catches_a_wrong_verdict() -> None:
    def lenient(k: Sequence[bytes], m: Sequence[bytes], s: Sequence[bytes]) -> list[bool]:
        return [True] * len(k)

    def flips_one(k: Sequence[bytes], m: Sequence[bytes], s: Sequence[bytes]) -> list[bool]:
        got = reference.verify_batch(k, m, s)
        return [not got[0], *got[1:]]

    for wrong in (lenient, flips_one):
        with pytest.raises(selfcheck.KernelMismatch):
            selfcheck.run(reference.leaf_hashes, reference.merkle_root, wrong)


def test_self_check_catches_a_wrong_hash() -> None:
    with pytest.raises(selfcheck.KernelMismatch):
        selfcheck.run(
            lambda d: [b"\x00" * 32 for _ in d], reference.merkle_root, reference.verify_batch
        )
    with pytest.raises(selfcheck.KernelMismatch):
        selfcheck.run(reference.leaf_hashes, lambda h: b"\x00" * 32, reference.verify_batch)
