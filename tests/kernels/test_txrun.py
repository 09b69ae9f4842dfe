"""The tx index run kernels (``chain.kernels.txrun``) against their numpy twins in
``storage.txruns`` and ``storage.txfilter``, byte for byte: empty, one id, page and
radix-digit boundaries, ids sharing their first 8 bytes (the radix sort's key) or more,
and equal ids (kept in input order, as numpy's stable sorts keep them)."""

from __future__ import annotations

import numpy as np
import pytest

from chain.kernels import txrun
from storage import txruns
from storage.txfilter import TxFilter

LOC = txruns.LOC_BYTES


def _random(rng: np.random.Generator, n: int, width: int) -> bytes:
    return rng.integers(0, 256, n * width, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("n", [0, 1, 2, 74, 75, 76, 150, 151, 255, 256, 257, 4097])
def test_sorted_entries_are_the_numpy_entries(n: int) -> None:
    rng = np.random.default_rng(n)
    ids, locs = _random(rng, n, 32), _random(rng, n, LOC)
    want = txruns.entries(ids, locs)
    got = txrun.sorted_entries(ids, locs, LOC)
    assert got.shape == want.shape == (n, txruns.ENTRY_BYTES)
    assert got.tobytes() == want.tobytes()


def test_ids_sharing_a_prefix_sort_on_the_rest() -> None:
    rng = np.random.default_rng(7)
    ids = rng.integers(0, 256, (600, 32), dtype=np.uint8)
    ids[:200, :8] = ids[0, :8]  # one radix key for 200 ids: ordered on bytes 8..31
    ids[200:260, :31] = ids[200, :31]  # differ in the last byte only
    ids[260:300, :8] = 0  # the smallest key, and some ids all zero
    ids[280:290] = 0
    ids[300:340, :8] = 0xFF  # the largest
    ids[400:410] = ids[400]  # equal ids: input order kept
    locs = np.arange(600 * LOC, dtype=np.uint64).astype(np.uint8).tobytes()
    raw = ids.tobytes()
    want = txruns.entries(raw, locs)
    assert txrun.sorted_entries(raw, locs, LOC).tobytes() == want.tobytes()
    shuffled = want[rng.permutation(600)]
    assert txrun.sorted_rows(shuffled).tobytes() == txruns.merge([shuffled]).tobytes()


def test_ids_differing_only_in_one_radix_digit() -> None:
    for byte in range(8):
        ids = np.zeros((300, 32), dtype=np.uint8)
        ids[:, byte] = np.arange(300)[::-1] % 256
        ids[:, 31] = np.arange(300) % 7
        raw, locs = ids.tobytes(), bytes(300 * LOC)
        want = txruns.entries(raw, locs)
        assert txrun.sorted_entries(raw, locs, LOC).tobytes() == want.tobytes()


@pytest.mark.parametrize("parts", [1, 3, 16])
def test_sorted_rows_is_the_numpy_merge(parts: int) -> None:
    rng = np.random.default_rng(parts)
    runs = [
        txruns.entries(_random(rng, n, 32), _random(rng, n, LOC))
        for n in rng.integers(0, 3000, parts)
    ]
    want = txruns.merge(runs)
    assert txrun.sorted_rows(np.concatenate(runs)).tobytes() == want.tobytes()


def test_ids_crowding_one_bucket_sort_as_numpy_sorts_them() -> None:
    """The bucket sort's buckets hold ~1 random id; ids ground to share their leading
    bits crowd one (past ``BUCKET_SORT_MAX``: sorted by the radix sort there), some
    sharing all 8 key bytes too, among 70,000 random ids."""
    rng = np.random.default_rng(11)
    ids = rng.integers(0, 256, (70_000, 32), dtype=np.uint8)
    ids[:3000, :3] = (0x12, 0x34, 0x56)  # one bucket of 3,000 (the leading 16 bits)
    ids[3000:3040, :3] = (0x12, 0x34, 0x57)  # one of 40, sorted by insertion
    ids[3000:3010, 3:8] = 0  # keys equal within the bucket: ordered on the rest
    ids[100:110] = ids[100]  # equal ids: input order kept
    raw, locs = ids.tobytes(), rng.integers(0, 256, 70_000 * LOC, dtype=np.uint8).tobytes()
    want = txruns.entries(raw, locs)
    assert txrun.BUCKET_SORT_MAX < 40 < 3000
    assert txrun.sorted_entries(raw, locs, LOC).tobytes() == want.tobytes()


def test_sorted_rows_leaves_its_input_as_it_was() -> None:
    rows = np.random.default_rng(1).integers(0, 256, (100, txruns.ENTRY_BYTES), dtype=np.uint8)
    before = rows.copy()
    txrun.sorted_rows(rows)
    assert rows.flags.writeable and (rows == before).all()


@pytest.mark.parametrize("bits_log2", [3, 8, 20, 24])
@pytest.mark.parametrize("n", [0, 1, 2, 1000])
def test_filter_bits_are_the_numpy_filter(n: int, bits_log2: int) -> None:
    ids = _random(np.random.default_rng(n + bits_log2), n, 32)
    assert txrun.filter_bits(ids, bits_log2) == TxFilter.bits_of_joined(ids, bits_log2)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        txrun.sorted_entries(bytes(33), bytes(LOC), LOC)
    with pytest.raises(ValueError):
        txrun.sorted_entries(bytes(64), bytes(LOC), LOC)
    with pytest.raises(ValueError):
        txrun.filter_bits(bytes(31), 20)
    with pytest.raises(ValueError):
        txrun.sorted_rows(np.zeros((3, 31), dtype=np.uint8))


def test_id_keys_never_miss_an_added_id() -> None:
    rng = np.random.default_rng(3)
    keys = txrun.IdKeys(bits=12)
    assert not keys.may_hold(b"") and not keys.may_hold(_random(rng, 5, 32))
    added = []
    for _ in range(20):
        batch = _random(rng, 100, 32)
        keys.add(batch)
        added.append(batch)
        for old in added:
            for i in range(0, len(old), 32):
                assert keys.may_hold(old[i : i + 32])
    fresh = _random(rng, 500, 32)
    assert not any(keys.may_hold(fresh[i : i + 32]) for i in range(0, len(fresh), 32))
    keys.reset(added[-1])
    assert keys.may_hold(added[-1][:32]) and not keys.may_hold(added[0][:32])


def test_id_keys_zero_and_shared_prefixes() -> None:
    keys = txrun.IdKeys(bits=6)
    zero = bytes(32)
    one = (1).to_bytes(8, "big") + bytes(24)  # 0 is kept as 1: they share a slot key
    keys.add(zero)
    assert keys.may_hold(zero) and keys.may_hold(one)  # "maybe": the caller checks
    shared = zero[:8] + b"\x01" * 24  # the same first 8 bytes as an added id
    assert keys.may_hold(shared)


def test_id_keys_past_half_full_answer_maybe_until_reset() -> None:
    rng = np.random.default_rng(4)
    keys = txrun.IdKeys(bits=5)  # 32 slots: 16 ids at most
    keys.add(_random(rng, 16, 32))
    assert not keys.may_hold(_random(rng, 1, 32))
    keys.add(_random(rng, 1, 32))  # the 17th: full, so "maybe" for anything
    assert keys.may_hold(_random(rng, 1, 32))
    keys.reset(_random(rng, 2, 32))
    assert not keys.may_hold(_random(rng, 1, 32))


def test_id_keys_probes_are_bounded() -> None:
    """A table whose probe from some slot runs past ``PROBES_MAX`` answers "maybe"."""
    bits = 8
    table = np.zeros(1 << bits, dtype=np.uint64)
    table[:] = np.arange(1, (1 << bits) + 1, dtype=np.uint64) + np.uint64(1 << 40)  # full
    ids = np.random.default_rng(5).integers(0, 256, 32, dtype=np.uint8)
    assert txrun.keys_any(table, bits, ids)
    table[:] = 0
    assert not txrun.keys_any(table, bits, ids)


@pytest.mark.parametrize(
    ("bits_log2", "word_bits", "runs"),
    [(8, 64, 1), (8, 64, 63), (8, 64, 64), (8, 64, 130), (10, 8, 3), (10, 8, 17), (20, 64, 14)],
)
def test_filter_candidates_are_the_numpy_pairs(bits_log2: int, word_bits: int, runs: int) -> None:
    """The kernel finds exactly ``TxFilter.candidate_pairs``' pairs: ids of some run (true
    hits, in several runs at once), fresh ids (false positives, many in a small table),
    columns past the run count ignored (a table wider than its runs)."""
    rng = np.random.default_rng(bits_log2 * 1000 + runs)
    f = TxFilter(bits_log2, word_bits)
    members = [_random(rng, 40, 32) for _ in range(runs)]
    f.add_runs([TxFilter.bits_of_joined(m, bits_log2) for m in members], list(range(7, 7 + runs)))
    joined = b"".join([m[: 32 * 5] for m in members]) + _random(rng, 300, 32)
    ids = [joined[i : i + 32] for i in range(0, len(joined), 32)]
    want = sorted(zip(*f.candidate_pairs(ids), strict=True))
    got = list(zip(*f.candidate_pairs_joined(joined, txrun.filter_candidates), strict=True))
    assert got == sorted(got) == want  # id then column order, which is run order here
    assert len(want) >= 5 * runs  # every member found (and, in small tables, more)
    rows, _ = f._table
    which, cols = txrun.filter_candidates(joined, rows, bits_log2, 0)  # no columns count
    assert which.size == cols.size == 0


def test_filter_candidates_past_the_first_guess_of_room() -> None:
    """Every id a candidate of every run (a table of all ones): more pairs than the first
    output arrays hold, so the call tries again with room for all."""
    rows = np.full((1 << 8, 2), 0xFFFF_FFFF_FFFF_FFFF, dtype=np.uint64)
    ids = _random(np.random.default_rng(9), 50, 32)
    which, cols = txrun.filter_candidates(ids, rows, 8, 100)
    assert which.tolist() == [i for i in range(50) for _ in range(100)]
    assert cols.tolist() == list(range(100)) * 50
    with pytest.raises(ValueError):
        txrun.filter_candidates(ids[:31], rows, 8, 100)
    with pytest.raises(ValueError):
        txrun.filter_candidates(ids, rows, 9, 100)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 1000, 70_000])
def test_has_repeat_is_a_set_s_answer(n: int) -> None:
    """A block's own duplicate check: none among distinct ids (also ids sharing their
    first 8 bytes, or all but the last byte); found wherever the repeat sits (neighbours,
    first and last, a crowded bucket)."""
    rng = np.random.default_rng(n)
    ids = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    if n >= 3:
        ids[: n // 2, :8] = ids[0, :8]  # one radix key for half of them
        ids[1, :31] = ids[2, :31]  # differ in the last byte only
        ids[1, 31], ids[2, 31] = 1, 2
    assert not txrun.has_repeat(ids.tobytes())
    assert len({bytes(i) for i in ids}) == n
    for a, b in (
        [(0, n - 1), (n // 2, n // 2 + 1), (1, 2)] if n >= 3 else [(0, 1)] if n == 2 else []
    ):
        twice = ids.copy()
        twice[b] = twice[a]
        assert txrun.has_repeat(twice.tobytes()), (a, b)
    with pytest.raises(ValueError):
        txrun.has_repeat(bytes(33))
