"""A tiny chain for ACL tests: genesis + blocks applied to a MemoryState.

Every block is also replayed from its change set onto a replica state (what a Raft
follower does): each ACL test that applies a block checks that replaying gives the
outcome and state that executing gave."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from acl.machine import BlockOutcome, apply_block, genesis_state, replay_block
from acl.results import Result
from acl.state import MemoryState
from chain.genesis import Genesis
from chain.tx import Tx


@dataclass
class LocalChain:
    genesis: Genesis
    state: MemoryState = field(default_factory=MemoryState)
    replica: MemoryState = field(default_factory=MemoryState)
    height: int = 0
    timestamp_ms: int = 0
    outcomes: list[BlockOutcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        outcome = genesis_state(self.genesis)
        self.state.apply(outcome.writes)
        self.replica.apply(outcome.writes)
        self.timestamp_ms = self.genesis.timestamp_ms
        self.outcomes.append(outcome)

    def apply(self, txs: Sequence[Tx], timestamp_ms: int | None = None) -> list[Result]:
        ts = self.timestamp_ms if timestamp_ms is None else timestamp_ms
        outcome = apply_block(
            self.state, genesis=self.genesis, height=self.height + 1, timestamp_ms=ts, txs=txs
        )
        # Exact ints: a block's encoding and results root have a fast path only for them.
        assert all(type(r) is int for r in outcome.results), "results are not plain ints"
        self.state.apply(outcome.writes)
        replayed = replay_block(
            self.replica,
            genesis=self.genesis,
            height=self.height + 1,
            timestamp_ms=ts,
            results=outcome.results,
            change_set=outcome.change_set,
        )
        assert replayed == outcome, "replaying the change set differs from executing"
        self.replica.apply(replayed.writes)
        assert self.replica.items() == self.state.items()
        self.height += 1
        self.timestamp_ms = ts
        self.outcomes.append(outcome)
        return [Result(r) for r in outcome.results]

    def one(self, tx: Tx, timestamp_ms: int | None = None) -> Result:
        return self.apply([tx], timestamp_ms)[0]

    @property
    def root(self) -> bytes:
        return self.outcomes[-1].state_root


def domain_items(state: MemoryState) -> list[tuple[bytes, bytes]]:
    """The state without its meta keys (height, time, root), which every block moves."""
    return [(k, v) for k, v in state.items() if not k.startswith(b"\x00")]
