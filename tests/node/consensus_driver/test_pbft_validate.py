"""A PBFT backup validates a proposed block before it prepares it (issue 14, item 2):
on real LMDB stores, with the story's signed txs, a primary's pipelined blocks are
valid on their validated parents, and every way a lying primary can get a block wrong
is refused with its reason."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from acl.samples import story
from chain import codec, signing
from chain.block import Block
from node.consensus_driver.pbft_validate import BlockValidator, Verdict
from node.pipeline.entry import encode_entry
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
