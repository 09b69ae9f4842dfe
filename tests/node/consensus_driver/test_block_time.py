"""Block time cannot run away (issue 15 §5): a follower does not take a leader's block
whose time is more than ``block_time_skew_ms_max`` ahead of its own clock, and drops
that leader's messages for the rest of its term, so its election timer runs out and a
leader with a right clock is elected. Seen before: the leader's clock became block time
unchecked (``max(clock, prev)``), and one clock a day ahead made every later tx stale."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.assemble import assemble_block
from chain.merkle import Frontier
from consensus.types import AppendEntries, Entry, EntryKind, Heartbeat
from node.consensus_driver.loop import ConsensusLoop
from node.pipeline.entry import block_timestamp_ms, encode_entry
from tests.node.consensus_driver.story_loop import GENESIS, story_loop

NOW_MS = GENESIS.timestamp_ms + 3_600_000
SKEW_MS = 10_000


def _block(timestamp_ms: int) -> bytes:
    block, _ = assemble_block(
        chain_id=GENESIS.chain_id,
        prev=None,
        anchor=GENESIS.hash,
        frontier=Frontier(),
        txs=[],
        results=[],
        state_root=b"\x00" * 32,
        timestamp_ms=timestamp_ms,
        proposer="lab-node",
        round=2,
    )
    return block.to_bytes()


def test_an_entrys_block_time_is_read_from_its_first_bytes() -> None:
    raw = _block(NOW_MS + 5)
    assert block_timestamp_ms(raw) == NOW_MS + 5
    assert block_timestamp_ms(encode_entry(raw, b"\x01" * 300)) == NOW_MS + 5
    for junk in (b"", b"\x92", b"\x92\xc4", b"\x93\x01\x02\x03", b"\xc1" * 40):
        assert block_timestamp_ms(junk) is None


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[ConsensusLoop]:
    with story_loop(tmp_path, now_ms=NOW_MS, block_time_skew_ms_max=SKEW_MS) as made:
        yield made


def _append(term: int, timestamp_ms: int) -> AppendEntries:
    entry = Entry(1, term, encode_entry(_block(timestamp_ms), b"\x90"), EntryKind.NORMAL)
    return AppendEntries("lab-node", "hospital-node", term, 0, 0, (entry,), 0)


def test_a_block_within_the_skew_is_taken(loop: ConsensusLoop) -> None:
    loop._handle(_append(2, NOW_MS + SKEW_MS))
    assert loop.core.status().leader == "lab-node" and loop.core.status().last_index == 1
    assert loop.metrics.blocks_refused_future._value.get() == 0


def test_a_block_ahead_of_the_skew_is_refused_and_its_leader_ignored_for_its_term(
    loop: ConsensusLoop,
) -> None:
    loop._handle(_append(2, NOW_MS + SKEW_MS + 1))
    st = loop.core.status()
    assert st.last_index == 0 and st.leader is None  # not taken: the core never saw it
    assert loop.metrics.blocks_refused_future._value.get() == 1
    loop._handle(Heartbeat("lab-node", "hospital-node", 2, 0))
    assert loop.core.status().leader is None  # its heartbeats keep nobody waiting
    loop._handle(_append(3, NOW_MS))  # a later term (a new election): taken again
    assert loop.core.status().leader == "lab-node" and loop.core.status().last_index == 1
