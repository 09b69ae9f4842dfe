"""The tx index's run filters (``storage/txfilter.py``): never a false negative, runs
named newest first, and a false-positive rate near what the sizing promises."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.txfilter import ADD_CHUNK_BYTES, BITS_LOG2, TxFilter


def _ids(rng: random.Random, n: int) -> list[bytes]:
    return [rng.randbytes(32) for _ in range(n)]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.binary(min_size=32, max_size=32), max_size=40), max_size=70))
def test_every_id_is_a_candidate_of_its_run(runs: list[list[bytes]]) -> None:
    f = TxFilter()
    f.add_runs([TxFilter.bits_of(ids) for ids in runs])
    assert f.runs == len(runs)
    for run, ids in enumerate(runs):
        for cands in f.candidates(ids):
            assert run in cands
            assert cands == sorted(cands, reverse=True)
            assert all(0 <= r < len(runs) for r in cands)


def test_runs_beyond_64_and_added_one_at_a_time() -> None:
    rng = random.Random(5)
    f = TxFilter()
    runs = [_ids(rng, 50) for _ in range(140)]
    for ids in runs:
        f.add_runs([TxFilter.bits_of(ids)])
    probe = [ids[i] for ids in runs for i in (0, 49)]
    for k, cands in enumerate(f.candidates(probe)):
        assert k // 2 in cands


def test_false_positives_are_rare() -> None:
    rng = random.Random(11)
    f = TxFilter()
    f.add_runs([TxFilter.bits_of(_ids(rng, 65_536)) for _ in range(3)])
    absent = [hashlib.sha256(b"absent %d" % i).digest() for i in range(10_000)]
    false = sum(len(c) for c in f.candidates(absent))
    # ~0.24% per run at 16 bits per id and 4 probes: ~72 expected of 30,000 tests.
    assert false < 200


def test_an_empty_filter_has_no_candidates() -> None:
    f = TxFilter()
    assert f.candidates([bytes(32)]) == [[]]
    assert f.candidates([]) == []


def test_a_filter_of_the_wrong_size_is_refused() -> None:
    f = TxFilter()
    with pytest.raises(ValueError):
        f.add_runs([bytes(1 << (BITS_LOG2 - 3 - 1))])
    assert f.runs == 0


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 150), st.integers(0, 2**32 - 1))
def test_candidate_pairs_are_the_candidates(runs: int, seed: int) -> None:
    rng = random.Random(seed)
    f = TxFilter()
    stored = [_ids(rng, 20) for _ in range(runs)]
    f.add_runs([TxFilter.bits_of(ids) for ids in stored])
    probe = [ids[rng.randrange(20)] for ids in stored[:: max(1, runs // 7)]] + _ids(rng, 30)
    which, run_of = f.candidate_pairs(probe)
    pairs = sorted(zip(which, run_of, strict=True))
    assert pairs == sorted((i, r) for i, cands in enumerate(f.candidates(probe)) for r in cands)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 150), st.integers(0, 2**32 - 1))
def test_candidates_of_one_id_are_its_candidates(runs: int, seed: int) -> None:
    rng = random.Random(seed)
    f = TxFilter()
    stored = [_ids(rng, 20) for _ in range(runs)]
    f.add_runs([TxFilter.bits_of(ids) for ids in stored])
    probe = [ids[rng.randrange(20)] for ids in stored] + _ids(rng, 30)
    assert [f.candidates_of(i) for i in probe] == f.candidates(probe)


@pytest.mark.parametrize("word_bits", [8, 64])
def test_runs_named_by_number_removed_and_added_in_any_order(word_bits: int) -> None:
    """Merging replaces runs by one: their columns go, the others keep their ids."""
    rng = random.Random(word_bits)
    f = TxFilter(16, word_bits)
    runs = {run: _ids(rng, 30) for run in range(3, 3 + 2 * 21, 2)}
    f.add_runs([TxFilter.bits_of(ids, 16) for ids in runs.values()], list(runs))
    gone = [5, 9, 11, 41]
    f.remove_runs(gone)
    assert f.run_ids == [r for r in runs if r not in gone]
    merged = [i for r in gone for i in runs[r]]
    f.add_runs([TxFilter.bits_of(merged, 16)], [100])
    for run, ids in runs.items():
        want = 100 if run in gone else run
        for i, cands in enumerate(f.candidates(ids)):
            assert want in cands, (run, i)
            assert not set(cands) & set(gone)
            assert f.candidates_of(ids[i]) == cands


@pytest.mark.parametrize(("bits_log2", "word_bits"), [(21, 64), (22, 8)])
def test_a_filter_larger_than_a_chunk_is_set_whole(bits_log2: int, word_bits: int) -> None:
    """A run's filter goes into its column ``ADD_CHUNK_BYTES`` at a time: the table is
    the one that setting every column whole gives, past the first chunk and the first
    word of a row too, and every id is a candidate of its run."""
    assert 1 << bits_log2 > 8 * ADD_CHUNK_BYTES
    rng = random.Random(bits_log2)
    runs = [_ids(rng, 500) for _ in range(word_bits + 3)]
    f = TxFilter(bits_log2, word_bits)
    packed = [TxFilter.bits_of(ids, bits_log2) for ids in runs]
    f.add_runs(packed[:5])
    f.add_runs(packed[5:])
    dtype = np.uint64 if word_bits == 64 else np.uint8
    want = np.zeros((1 << bits_log2, 2), dtype=dtype)
    for col, bits in enumerate(packed):
        column = np.unpackbits(np.frombuffer(bits, dtype=np.uint8))
        want[:, col // word_bits] |= np.left_shift(column, col % word_bits, dtype=dtype)
    assert (f._table[0] == want).all()
    for run, ids in enumerate(runs):
        assert all(run in cands for cands in f.candidates(ids))
