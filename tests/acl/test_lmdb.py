"""The machine on the real LMDB store: the store's state reader passes the shared
conformance checks, and the story applied through ``store.append`` gives the same results,
state root and answers as in memory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acl import queries as q
from acl import samples
from acl.machine import apply_block, genesis_state
from acl.state_conformance import check_reader
from chain.assemble import assemble_block
from chain.block import BlockHeader
from chain.merkle import Frontier
from storage.lmdb_store import LmdbBlockStore
from tests.acl.helpers import LocalChain


def test_the_lmdb_state_readers_conform(tmp_path: Path) -> None:
    stores: list[LmdbBlockStore] = []
    views: list[Any] = []

    def filled(items: Sequence[tuple[bytes, bytes]]) -> LmdbBlockStore:
        store = LmdbBlockStore.open(tmp_path / f"s{len(stores)}")
        stores.append(store)
        store.initialize(b"\x01" * 32, list(items))
        return store

    def snapshot(items: Sequence[tuple[bytes, bytes]]) -> Any:
        views.append(filled(items).snapshot())
        return views[-1]

    try:
        check_reader(lambda items: filled(items).state())
        check_reader(snapshot)
    finally:
        for view in views:
            view.close()
        for store in stores:
            store.close()


def test_the_story_on_lmdb_matches_memory(tmp_path: Path) -> None:
    story = samples.story()
    memory = LocalChain(story.genesis)
    head: BlockHeader | None = None
    frontier = Frontier()
    with LmdbBlockStore.open(tmp_path / "chain") as store:
        store.initialize(story.genesis.hash, genesis_state(story.genesis).writes)
        for height, block in enumerate(story.blocks, 1):
            with store.snapshot() as view:
                outcome = apply_block(
                    view,
                    genesis=story.genesis,
                    height=height,
                    timestamp_ms=block.timestamp_ms,
                    txs=block.txs,
                )
            assembled, frontier = assemble_block(
                chain_id=story.genesis.chain_id,
                prev=head,
                anchor=story.genesis.hash,
                frontier=frontier,
                txs=[tx.to_bytes() for tx in block.txs],
                results=outcome.results,
                state_root=outcome.state_root,
                timestamp_ms=block.timestamp_ms,
                proposer="node-1",
                round=1,
            )
            store.append(assembled, outcome.writes)
            head = assembled.header
            assert memory.apply(block.txs, block.timestamp_ms) == list(outcome.results)
            assert memory.root == outcome.state_root
        state = store.state()
        assert q.state_root(state) == (len(story.blocks), memory.root)
        window = (story.genesis.timestamp_ms, story.revoke_ms + 10**8)
        assert (
            q.audit_report(state, *window).to_json()
            == q.audit_report(memory.state, *window).to_json()
        )
        assert (
            q.model_lineage(state, story.model_name, 1).to_json()
            == q.model_lineage(memory.state, story.model_name, 1).to_json()
        )
        assert list(state.range(b"", None)) == memory.state.items()
