"""The replicated state machine's decisions (``node.pipeline.ledger``) on two real LMDB stores, a
leader's and a follower's: every node decides the same about every committed entry."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from acl import changeset
from acl.samples import story
from chain import codec, signing
from chain.assemble import assemble_block
from chain.block import Block
from chain.genesis import Genesis
from chain.hashing import leaf_hashes
from chain.merkle import Frontier
from consensus.types import InvariantViolation
from node.pipeline.entry import ENTRY_BYTES_MAX, EntryError, decode_entry, encode_entry
from node.pipeline.ledger import ApplyOutcome, Ledger
from storage.lmdb_store import LmdbBlockStore


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Ledger, Ledger, list[list[bytes]]]]:
    s = story()
    stores = [LmdbBlockStore.open(tmp_path / name) for name in ("leader", "follower")]
    ledgers = [Ledger(st, s.genesis, signing.verify_batch) for st in stores]
    for led in ledgers:
        led.ensure_genesis()
    blocks = [[tx.to_bytes() for tx in b.txs] for b in s.blocks]
    yield ledgers[0], ledgers[1], blocks
    for st in stores:
        st.close()


def _build(led: Ledger, raws: list[bytes], ts: int) -> Block:
    block, stored = led.build(raws, timestamp_ms=ts, proposer="n1", round=1)
    assert block is not None and not stored
    return block


def test_leader_and_follower_reach_the_same_head(
    pair: tuple[Ledger, Ledger, list[list[bytes]]],
) -> None:
    leader, follower, blocks = pair
    ts = story().blocks[0].timestamp_ms
    for i, raws in enumerate(blocks):
        block = _build(leader, raws, ts + i * 3_600_000)
        data = block.to_bytes()
        assert leader.apply(data).outcome is ApplyOutcome.APPLIED
        assert follower.apply(data).outcome is ApplyOutcome.APPLIED
        assert follower.apply(data).outcome is ApplyOutcome.ALREADY_APPLIED  # a replay
    assert leader.store.head() == follower.store.head()
    results = [r for h in range(1, leader.store.height + 1) for r in leader.store.block(h).results]  # type: ignore[union-attr]
    assert results.count(1) == 2  # the two no_grant events of the story


def test_stale_and_malformed_blocks_are_skipped_everywhere(
    pair: tuple[Ledger, Ledger, list[list[bytes]]],
) -> None:
    leader, follower, blocks = pair
    ts = story().blocks[0].timestamp_ms
    first = _build(leader, blocks[0], ts)
    leader.abandon()  # as a leader that lost its term would
    stale = _build(leader, blocks[1], ts)  # also built on the empty chain: loses the race
    for led in (leader, follower):
        assert led.apply(first.to_bytes()).outcome is ApplyOutcome.APPLIED
        assert led.apply(stale.to_bytes()).outcome is ApplyOutcome.SKIPPED
        assert led.apply(b"\x93garbage").outcome is ApplyOutcome.SKIPPED


def _forged_second_block(genesis: Genesis, tmp_path: Path) -> tuple[Block, Block]:
    """Block 1 of the story and a block 2 whose first tx carries another tx's signature
    (its hashes all consistent), built by a proposer that skips signature checks."""
    blocks = [[tx.to_bytes() for tx in b.txs] for b in story().blocks]
    ts = story().blocks[0].timestamp_ms
    fields = codec.decode(blocks[1][0])
    fields[7] = codec.decode(blocks[1][1])[7]
    with LmdbBlockStore.open(tmp_path / "forger") as store:
        forger = Ledger(store, genesis, lambda k, m, s: [True] * len(k))
        forger.ensure_genesis()
        first = _build(forger, blocks[0], ts)
        assert forger.apply(first.to_bytes()).outcome is ApplyOutcome.APPLIED
        return first, _build(forger, [codec.encode(fields), *blocks[1][1:]], ts + 3_600_000)


@pytest.mark.parametrize("consensus", ["raft", "pbft"])
def test_who_checks_the_signatures_of_a_committed_block(consensus: str, tmp_path: Path) -> None:
    """PBFT replicas verify every signature of a committed block and skip a forged one;
    Raft followers trust the leader's admission (crash-fault model) and apply it, and
    ``grantchain verify --signatures`` is what finds it (tests/node/cli/test_cli_verify.py)."""
    genesis = dataclasses.replace(story().genesis, consensus=consensus)
    first, forged = _forged_second_block(genesis, tmp_path)
    with LmdbBlockStore.open(tmp_path / "follower") as store:
        follower = Ledger(store, genesis, signing.verify_batch)
        follower.ensure_genesis()
        assert follower.verifies_committed is (consensus == "pbft")
        assert follower.apply(first.to_bytes()).outcome is ApplyOutcome.APPLIED
        result = follower.apply(forged.to_bytes())
        if consensus == "pbft":
            assert result.outcome is ApplyOutcome.SKIPPED and "bad signature" in result.reason
            assert store.height == 1
        else:
            assert result.outcome is ApplyOutcome.APPLIED
            assert store.head() == forged.header


def test_a_block_that_re_executes_differently_stops_the_node(
    pair: tuple[Ledger, Ledger, list[list[bytes]]],
) -> None:
    leader, follower, blocks = pair
    block = _build(leader, blocks[0], story().blocks[0].timestamp_ms)
    lying = dataclasses.replace(block.header, state_root=b"\x01" * 32)
    with pytest.raises(InvariantViolation, match="re-execution"):
        follower.apply(Block(lying, block.txs, block.results).to_bytes())
    assert follower.store.height == 0  # nothing written


def test_a_gap_stops_the_node(pair: tuple[Ledger, Ledger, list[list[bytes]]]) -> None:
    leader, follower, blocks = pair
    ts = story().blocks[0].timestamp_ms
    leader.apply(_build(leader, blocks[0], ts).to_bytes())
    second = _build(leader, blocks[1], ts + 3_600_000)
    with pytest.raises(InvariantViolation, match="gap"):
        follower.apply(second.to_bytes())


def test_txs_already_in_the_chain_are_left_out_of_new_blocks(
    pair: tuple[Ledger, Ledger, list[list[bytes]]],
) -> None:
    leader, _, blocks = pair
    ts = story().blocks[0].timestamp_ms
    leader.apply(_build(leader, blocks[0], ts).to_bytes())
    block, stored = leader.build(blocks[0], timestamp_ms=ts, proposer="n1", round=1)
    assert block is None and len(stored) == len(blocks[0])
    block, stored = leader.build(
        blocks[0][:1] + blocks[1], timestamp_ms=ts + 3_600_000, proposer="n1", round=1
    )
    assert block is not None and block.txs == tuple(blocks[1]) and len(stored) == 1


def test_blocks_built_in_flight_commit_as_built(
    pair: tuple[Ledger, Ledger, list[list[bytes]]],
) -> None:
    """The leader builds every block of the story before any commits, each on the
    speculative state of the ones before (the story's later blocks use the datasets,
    grants and models of its earlier ones); a follower re-executes each one on its
    committed state and agrees."""
    leader, follower, blocks = pair
    ts = story().blocks[0].timestamp_ms
    built = [_build(leader, raws, ts + i * 3_600_000) for i, raws in enumerate(blocks)]
    assert leader.in_flight == len(blocks) and leader.store.height == 0
    assert [b.header.height for b in built] == list(range(1, len(blocks) + 1))
    for block in built:
        data = block.to_bytes()
        assert follower.apply(data).outcome is ApplyOutcome.APPLIED  # no InvariantViolation
        assert leader.apply(data).outcome is ApplyOutcome.APPLIED
    assert leader.in_flight == 0
    assert leader.store.head() == follower.store.head() == built[-1].header
    results = [r for b in built for r in b.results]
    assert results.count(1) == 2  # the same two no_grant events as when built one by one


def test_when_another_block_commits_first_the_ones_in_flight_are_skipped(
    pair: tuple[Ledger, Ledger, list[list[bytes]]],
) -> None:
    leader, follower, blocks = pair
    ts = story().blocks[0].timestamp_ms
    theirs = _build(follower, blocks[0], ts)  # another leader's block 1
    ours = [_build(leader, blocks[0], ts + 1), _build(leader, blocks[1], ts + 2)]
    assert leader.apply(theirs.to_bytes()).outcome is ApplyOutcome.APPLIED
    assert leader.in_flight == 0  # what was built on our block 1 can no longer commit
    for block in ours:
        assert leader.apply(block.to_bytes()).outcome is ApplyOutcome.SKIPPED
    again = _build(leader, blocks[1], ts + 3)  # built on the committed head now
    assert again.header.prev_hash == theirs.header.hash
    assert leader.apply(again.to_bytes()).outcome is ApplyOutcome.APPLIED


def test_ids_handed_in_by_the_mempool_give_the_same_block(
    pair: tuple[Ledger, Ledger, list[list[bytes]]],
) -> None:
    leader, follower, blocks = pair
    ts = story().blocks[0].timestamp_ms
    plain = _build(leader, blocks[0], ts)
    given, stored = follower.build(
        blocks[0], tx_ids=leaf_hashes(blocks[0]), timestamp_ms=ts, proposer="n1", round=1
    )
    assert given == plain and not stored
    with pytest.raises(ValueError, match="tx ids"):
        assemble_block(
            chain_id="c",
            prev=None,
            anchor=b"\0" * 32,
            frontier=Frontier(),
            txs=blocks[0],
            results=[0] * len(blocks[0]),
            state_root=b"\0" * 32,
            timestamp_ms=ts,
            proposer="n1",
            round=1,
            tx_ids=leaf_hashes(blocks[0])[1:],
        )


def _state(led: Ledger) -> list[tuple[bytes, bytes]]:
    return list(led.store.state().range(b"", None))


def test_followers_apply_the_change_set_the_leader_ships(
    pair: tuple[Ledger, Ledger, list[list[bytes]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Raft follower applies each entry's change set without decoding or executing a
    tx; an auditing node (``reexecute``) re-executes and agrees; all end equal."""
    leader, follower, blocks = pair
    ts = story().blocks[0].timestamp_ms
    entries = []
    for i, raws in enumerate(blocks):  # the whole story in flight, then committed
        entries.append(leader.entry(_build(leader, raws, ts + i * 3_600_000)))
    assert all(decode_entry(e)[1] for e in entries), "every entry ships its change set"
    with LmdbBlockStore.open(tmp_path / "auditor") as store:
        auditor = Ledger(store, story().genesis, signing.verify_batch, reexecute=True)
        auditor.ensure_genesis()
        for data in entries:
            assert auditor.apply(data).source == "executed"
        with monkeypatch.context() as m:
            for name in ("apply_block", "decode_tx", "decode_txs"):
                m.setattr(f"node.pipeline.ledger.{name}", _must_not_run)
            for data in entries:
                assert follower.apply(data).source == "change_set"
                assert leader.apply(data).source == "built"  # reuses its own execution
                assert follower.apply(data).outcome is ApplyOutcome.ALREADY_APPLIED
        assert leader.store.head() == follower.store.head() == store.head()
        assert _state(leader) == _state(follower) == list(store.state().range(b"", None))


def _must_not_run(*args: object, **kwargs: object) -> None:
    raise AssertionError("a follower re-executed a block that came with its change set")


def _with_change_set(entry: bytes, change_set: bytes) -> bytes:
    block, _ = decode_entry(entry)
    return codec.encode([block, change_set])


def test_a_change_set_the_header_does_not_bind_stops_the_node(
    pair: tuple[Ledger, Ledger, list[list[bytes]]],
) -> None:
    leader, follower, blocks = pair
    entry = leader.entry(_build(leader, blocks[0], story().blocks[0].timestamp_ms))
    writes = changeset.decode(decode_entry(entry)[1] or b"")
    key = next(k for k, v in writes if v and not k.startswith(b"\x00"))  # not a meta key
    lying = changeset.encode([(k, b"forged" if k == key else v) for k, v in writes])
    with pytest.raises(InvariantViolation, match="change set that gives another state root"):
        follower.apply(_with_change_set(entry, lying))
    assert follower.store.height == 0  # nothing written


def test_a_malformed_change_set_is_re_executed(
    pair: tuple[Ledger, Ledger, list[list[bytes]]],
) -> None:
    leader, follower, blocks = pair
    entry = leader.entry(_build(leader, blocks[0], story().blocks[0].timestamp_ms))
    assert follower.apply(_with_change_set(entry, b"\x00")).outcome is ApplyOutcome.APPLIED
    assert leader.apply(entry).outcome is ApplyOutcome.APPLIED
    assert _state(follower) == _state(leader)
    assert follower.apply(b"\x92\xc4\x01x\x01").outcome is ApplyOutcome.SKIPPED  # no pair


def test_a_vouched_block_with_a_tx_of_another_chain(
    pair: tuple[Ledger, Ledger, list[list[bytes]]], tmp_path: Path
) -> None:
    """A leader that puts a tx of another chain in a block and ships its change set: the
    followers that replay apply it, so an auditing node stops rather than skip it; the
    bare block (no change set: catch-up) is skipped by every node alike."""
    leader, follower, blocks = pair
    fields = codec.decode(blocks[0][0])
    fields[1] = "another-chain"
    foreign = [codec.encode(fields), *blocks[0][1:]]
    block = _build(leader, foreign, story().blocks[0].timestamp_ms)
    entry = leader.entry(block)
    with LmdbBlockStore.open(tmp_path / "auditor") as store:
        auditor = Ledger(store, story().genesis, signing.verify_batch, reexecute=True)
        auditor.ensure_genesis()
        assert auditor.apply(block.to_bytes()).outcome is ApplyOutcome.SKIPPED
        assert follower.apply(block.to_bytes()).outcome is ApplyOutcome.SKIPPED
        with pytest.raises(InvariantViolation, match="vouched"):
            auditor.apply(entry)
        assert follower.apply(entry).outcome is ApplyOutcome.APPLIED


def test_an_entry_too_big_to_ship_its_change_set_carries_the_bare_block() -> None:
    block = b"\x93" + bytes(100)
    assert decode_entry(encode_entry(block, b"cs")) == (block, b"cs")
    assert decode_entry(encode_entry(block, None)) == (block, None)
    big = bytes(ENTRY_BYTES_MAX - len(block))
    assert encode_entry(block, big) == block
    with pytest.raises(EntryError, match="trailing"):
        decode_entry(encode_entry(block, b"cs") + b"\x00")
    with pytest.raises(EntryError, match="block bytes, change set bytes"):
        decode_entry(codec.encode(["block", b"cs"]))


def test_a_committed_block_with_a_tx_the_chain_has_is_skipped_by_every_node(
    pair: tuple[Ledger, Ledger, list[list[bytes]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The proposer, a follower replaying the change set (whose store finds the
    duplicate as it appends) and an auditor re-executing (which looks first) agree."""
    leader, follower, blocks = pair
    ts = story().blocks[0].timestamp_ms
    first = leader.entry(_build(leader, blocks[0], ts))
    with LmdbBlockStore.open(tmp_path / "auditor") as store:
        auditor = Ledger(store, story().genesis, signing.verify_batch, reexecute=True)
        auditor.ensure_genesis()
        for led in (leader, follower, auditor):
            assert led.apply(first).outcome is ApplyOutcome.APPLIED
        state = _state(follower)
        with monkeypatch.context() as m:  # a proposer that does not look (a bug, a race)
            m.setattr("storage.lmdb_store.LmdbSnapshot.tx_location", lambda self, t: None)
            dup = leader.entry(_build(leader, blocks[0][:1] + blocks[1], ts + 3_600_000))
        for led in (follower, auditor, leader):
            applied = led.apply(dup)
            assert applied.outcome is ApplyOutcome.SKIPPED
            assert applied.reason == "holds a tx the chain already has"
            assert led.store.height == 1
        assert _state(follower) == _state(leader) == list(store.state().range(b"", None)) == state
        # The chain goes on: the next block (without the duplicate) applies everywhere.
        nxt = leader.entry(_build(leader, blocks[1], ts + 3_600_000))
        for led in (leader, follower, auditor):
            assert led.apply(nxt).outcome is ApplyOutcome.APPLIED
