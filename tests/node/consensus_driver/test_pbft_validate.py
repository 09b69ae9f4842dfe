"""A PBFT backup validates a proposed block before it prepares it (issue 14, item 2):
on real LMDB stores, with the story's signed txs, a primary's pipelined blocks are
valid on their validated parents, and every way a lying primary can get a block wrong
is refused with its reason."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from acl.samples import story
from chain import codec, signing
from chain.block import Block
from chain.hashing import leaf_hash
from chain.tx import decode_tx
from node.consensus_driver.pbft_validate import BlockValidator, Verdict
from node.pipeline.entry import decode_entry, encode_entry
from node.pipeline.ledger import ApplyOutcome, Ledger
from storage.lmdb_store import LmdbBlockStore

GENESIS = dataclasses.replace(story().genesis, consensus="pbft")
TS = story().blocks[0].timestamp_ms
BLOCKS = [[tx.to_bytes() for tx in b.txs] for b in story().blocks]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Ledger, Ledger, BlockValidator]]:
    stores = [LmdbBlockStore.open(tmp_path / n) for n in ("primary", "backup")]
    primary, backup = (Ledger(s, GENESIS, signing.verify_batch) for s in stores)
    for led in (primary, backup):
        led.ensure_genesis()
    validator = BlockValidator(
        stores[1], GENESIS, signing.verify_batch, clock_ms=lambda: TS + 10**9, skew_ms_max=10_000
    )
    yield primary, backup, validator
    for s in stores:
        s.close()


def _propose(led: Ledger, raws: list[bytes], ts: int, proposer: str = "n1", view: int = 2) -> bytes:
    block, stored = led.build(raws, timestamp_ms=ts, proposer=proposer, round=view)
    assert block is not None and not stored
    return led.entry(block)


def test_pipelined_blocks_are_valid_on_their_validated_parents(
    world: tuple[Ledger, Ledger, BlockValidator],
) -> None:
    primary, backup, v = world
    first = _propose(primary, BLOCKS[0], TS)
    second = _propose(primary, BLOCKS[1], TS + 3_600_000)
    assert v.check(second, primary="n1", view=2).verdict is Verdict.LATER
    assert v.check(first, primary="n1", view=2).verdict is Verdict.VALID
    assert v.check(second, primary="n1", view=2).verdict is Verdict.VALID
    for data in (first, second):
        assert backup.apply(data).outcome is ApplyOutcome.APPLIED
    third = _propose(primary, BLOCKS[2], TS + 7_200_000)
    assert v.check(third, primary="n1", view=2).verdict is Verdict.VALID


def _lie(data: bytes, change: Callable[[Block], Block]) -> bytes:
    return encode_entry(change(Block.from_bytes(codec.decode(data)[0])).to_bytes(), None)


@pytest.mark.parametrize(
    ("lie", "reason"),
    [
        (
            lambda b: Block(
                dataclasses.replace(b.header, state_root=b"\x01" * 32), b.txs, b.results
            ),
            "not what its txs give",
        ),
        (lambda b: Block(b.header, b.txs, (b.results[0] ^ 1, *b.results[1:])), "results"),
        (
            lambda b: Block(
                dataclasses.replace(b.header, timestamp_ms=TS + 10**10), b.txs, b.results
            ),
            "ahead",
        ),
        (
            lambda b: Block(dataclasses.replace(b.header, chain_id="other"), b.txs, b.results),
            "another chain",
        ),
        (
            lambda b: Block(
                dataclasses.replace(b.header, prev_hash=b"\x07" * 32), b.txs, b.results
            ),
            "does not extend",
        ),
    ],
)
def test_a_lying_block_is_refused_with_its_reason(
    world: tuple[Ledger, Ledger, BlockValidator], lie: Callable[[Block], Block], reason: str
) -> None:
    primary, _, v = world
    data = _lie(_propose(primary, BLOCKS[0], TS), lie)
    check = v.check(data, primary="n1", view=2)
    assert check.verdict is Verdict.INVALID and reason in check.reason


def test_a_block_of_another_proposer_or_view_is_refused(
    world: tuple[Ledger, Ledger, BlockValidator],
) -> None:
    primary, _, v = world
    data = _propose(primary, BLOCKS[0], TS)
    assert v.check(data, primary="n2", view=2).verdict is Verdict.INVALID
    assert v.check(data, primary="n1", view=3).verdict is Verdict.INVALID
    assert v.check(b"\x93junk", primary="n1", view=2).verdict is Verdict.INVALID


def test_a_forged_signature_is_refused(
    world: tuple[Ledger, Ledger, BlockValidator], tmp_path: Path
) -> None:
    _, _, v = world
    fields = codec.decode(BLOCKS[0][0])
    fields[7] = codec.decode(BLOCKS[0][1])[7]  # another tx's signature
    with LmdbBlockStore.open(tmp_path / "forger") as store:
        forger = Ledger(store, GENESIS, lambda k, m, s: [True] * len(k))
        forger.ensure_genesis()
        data = _propose(forger, [codec.encode(fields), *BLOCKS[0][1:]], TS)
    check = v.check(data, primary="n1", view=2)
    assert check.verdict is Verdict.INVALID and "bad signature" in check.reason


def test_a_block_on_a_branch_that_lost_is_refused(
    world: tuple[Ledger, Ledger, BlockValidator],
) -> None:
    primary, backup, v = world
    first = _propose(primary, BLOCKS[0], TS)
    second = _propose(primary, BLOCKS[1], TS + 3_600_000)
    assert v.check(first, primary="n1", view=2).verdict is Verdict.VALID
    primary.abandon()  # another block 1 wins (a new view's primary built it)
    rival = _propose(primary, BLOCKS[0][:1], TS, proposer="n2", view=3)
    assert v.check(rival, primary="n2", view=3).verdict is Verdict.VALID
    assert backup.apply(rival).outcome is ApplyOutcome.APPLIED
    check = v.check(second, primary="n1", view=2)
    assert check.verdict is Verdict.INVALID


def _state(store: LmdbBlockStore) -> list[tuple[bytes, bytes]]:
    return list(store.state().range(b"", None))


def _header_hash(data: bytes) -> bytes:
    return Block.from_bytes(decode_entry(data)[0]).header.hash


def test_a_validated_block_is_applied_from_its_validation(
    world: tuple[Ledger, Ledger, BlockValidator], tmp_path: Path
) -> None:
    """One execution per backup: the one its validation did, written as the block
    commits, giving the state the primary's own execution gave."""
    primary, backup, v = world
    first = _propose(primary, BLOCKS[0], TS)
    second = _propose(primary, BLOCKS[1], TS + 3_600_000)
    for data in (first, second):
        assert v.check(data, primary="n1", view=2).verdict is Verdict.VALID
    for data in (first, second):
        applied = backup.apply(data, kept=v.kept)
        assert (applied.outcome, applied.source) == (ApplyOutcome.APPLIED, "validated")
        assert primary.apply(data).outcome is ApplyOutcome.APPLIED
        assert v.kept(_header_hash(data)) is None  # handed out once
    assert backup.store.head() == primary.store.head()
    with LmdbBlockStore.open(tmp_path / "executes") as store:
        other = Ledger(store, GENESIS, signing.verify_batch)
        other.ensure_genesis()
        for data in (first, second):
            assert other.apply(data).source == "executed"
        assert _state(other.store) == _state(backup.store)
    third = _propose(primary, BLOCKS[2], TS + 7_200_000)
    assert v.check(third, primary="n1", view=2).verdict is Verdict.VALID


def test_an_execution_kept_for_another_block_is_never_applied(
    world: tuple[Ledger, Ledger, BlockValidator],
) -> None:
    """View 2's block 1 was validated, view 3's block 1 commits: the backup executes the
    committed one, and what it kept for the other is dropped. A lookup that hands over
    the other block's execution whatever the hash asked for is not used either."""
    primary, backup, v = world
    lost = _propose(primary, BLOCKS[0], TS)
    assert v.check(lost, primary="n1", view=2).verdict is Verdict.VALID
    primary.abandon()
    # The same txs, so only the header (proposer, view, timestamp) tells them apart.
    rival = _propose(primary, BLOCKS[0], TS + 1, proposer="n2", view=3)
    stale = v.kept(_header_hash(lost))
    assert stale is not None and stale.header_hash == _header_hash(lost)
    applied = backup.apply(rival, kept=lambda _hash: stale)
    assert (applied.outcome, applied.source) == (ApplyOutcome.APPLIED, "executed")
    assert primary.apply(rival).outcome is ApplyOutcome.APPLIED
    assert _state(backup.store) == _state(primary.store)
    assert backup.store.head() == primary.store.head()


def test_a_kept_execution_for_a_height_that_is_taken_is_dropped(
    world: tuple[Ledger, Ledger, BlockValidator],
) -> None:
    primary, backup, v = world
    lost = _propose(primary, BLOCKS[0], TS)
    assert v.check(lost, primary="n1", view=2).verdict is Verdict.VALID
    primary.abandon()
    rival = _propose(primary, BLOCKS[0][:1], TS + 1, proposer="n2", view=3)
    applied = backup.apply(rival, kept=v.kept)  # not validated here: executed
    assert (applied.outcome, applied.source) == (ApplyOutcome.APPLIED, "executed")
    assert v.kept(_header_hash(lost)) is None


def test_txs_this_node_admitted_are_not_verified_again(
    world: tuple[Ledger, Ledger, BlockValidator], tmp_path: Path
) -> None:
    """Admission decoded and verified the txs of the mempool: validation verifies only
    the others, and a forged signature among those is still refused."""
    primary, backup, _ = world
    verified: list[int] = []

    def counting(k: Sequence[bytes], m: Sequence[bytes], s: Sequence[bytes]) -> list[bool]:
        verified.append(len(k))
        return signing.verify_batch(k, m, s)

    raws = BLOCKS[0]
    pool = {leaf_hash(r): decode_tx(r) for r in raws[1:]}  # the first one never came here
    v = BlockValidator(
        backup.store,
        GENESIS,
        counting,
        clock_ms=lambda: TS + 10**9,
        skew_ms_max=10_000,
        admitted=lambda ids: [pool.get(t) for t in ids],
    )
    data = _propose(primary, raws, TS)
    assert v.check(data, primary="n1", view=2).verdict is Verdict.VALID
    assert verified == [1]
    fields = codec.decode(raws[0])
    fields[7] = codec.decode(raws[1])[7]  # another tx's signature
    with LmdbBlockStore.open(tmp_path / "forger") as store:
        forger = Ledger(store, GENESIS, lambda k, m, s: [True] * len(k))
        forger.ensure_genesis()
        forged = _propose(forger, [codec.encode(fields), *raws[1:]], TS)
    check = v.check(forged, primary="n1", view=2)
    assert check.verdict is Verdict.INVALID and "tx 0: bad signature" in check.reason


def test_the_validated_entry_is_not_hashed_again_but_another_body_is(
    world: tuple[Ledger, Ledger, BlockValidator], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The committed entry is the one validated, byte for byte: its body is not checked
    against its header a second time. An entry with the same header but another body
    (a lying primary's commit) is checked, refused, and its kept execution not used."""
    primary, backup, v = world
    data = _propose(primary, BLOCKS[0], TS)
    assert v.check(data, primary="n1", view=2).verdict is Verdict.VALID
    kept = v.kept(_header_hash(data))
    assert kept is not None and kept.entry == data and kept.block is not None
    swapped = _lie(data, lambda b: Block(b.header, (*b.txs[1:], b.txs[0]), b.results))
    assert _header_hash(swapped) == _header_hash(data)
    refused = backup.apply(swapped, kept=lambda _hash: kept)
    assert refused.outcome is ApplyOutcome.SKIPPED and "tx_root" in refused.reason
    hashed: list[int] = []
    real = Block.tx_ids

    def counting(self: Block) -> list[bytes]:
        hashed.append(len(self.txs))
        return real(self)

    monkeypatch.setattr(Block, "tx_ids", counting)
    applied = backup.apply(bytes(data), kept=lambda _hash: kept)  # equal, not identical
    assert (applied.outcome, applied.source) == (ApplyOutcome.APPLIED, "validated")
    assert applied.tx_ids == kept.tx_ids
    assert hashed == [] and applied.block is kept.block  # its ids remembered
    assert primary.apply(data).outcome is ApplyOutcome.APPLIED
    assert _state(backup.store) == _state(primary.store)
