"""Builders of signed txs and valid chains for tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from chain import signing
from chain.assemble import assemble_block
from chain.block import Block, BlockHeader
from chain.hashing import leaf_hash
from chain.merkle import Frontier
from chain.tx import sign_tx

CHAIN_ID = "test-chain"
ANCHOR = b"\x42" * 32
KEYS = [signing.private_key_from_bytes(bytes([i + 1]) * 32) for i in range(4)]


def count_verify_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``chain.signing.verify_batch``, still verifying, records each call's batch size in
    the list returned."""
    sizes: list[int] = []
    real = signing.verify_batch

    def counting(pks: Any, msgs: Any, sigs: Any) -> Any:
        sizes.append(len(pks))
        return real(pks, msgs, sigs)

    monkeypatch.setattr(signing, "verify_batch", counting)
    return sizes


def txs(n: int, start: int = 0) -> list[bytes]:
    return [
        sign_tx(
            KEYS[i % len(KEYS)],
            chain_id=CHAIN_ID,
            kind="audit.data_access",
            nonce=i,
            timestamp_ms=1_000 + i,
            payload={"dataset": f"ds-{i % 7}", "purpose": "training"},
        ).to_bytes()
        for i in range(start, start + n)
    ]


class ChainBuilder:
    """Makes a valid chain block by block."""

    def __init__(self) -> None:
        self.head: BlockHeader | None = None
        self.frontier = Frontier()
        self.next_tx = 0

    def block(self, n_txs: int, *, results: list[int] | None = None) -> Block:
        batch = txs(n_txs, self.next_tx)
        self.next_tx += n_txs
        block, self.frontier = assemble_block(
            chain_id=CHAIN_ID,
            prev=self.head,
            anchor=ANCHOR,
            frontier=self.frontier,
            txs=batch,
            results=results if results is not None else [0] * n_txs,
            state_root=b"\x00" * 32,
            timestamp_ms=10_000 + (self.head.height if self.head else 0),
            proposer="n1",
            round=1,
        )
        self.head = block.header
        return block


def block_on(store: Any, raws: list[bytes] | tuple[bytes, ...]) -> Block:
    """A block of ``raws`` (results 0) on ``store``'s head and log frontier (any
    ``BlockStore``), not appended."""
    return block_after(store.head(), store.frontier(), raws)


def block_after(
    head: BlockHeader | None, frontier: Frontier, raws: list[bytes] | tuple[bytes, ...]
) -> Block:
    """A block of ``raws`` (results 0) after ``head`` on the log ``frontier`` (left as it
    is): e.g. on a ``ChainBuilder``'s head while the store has not committed it yet."""
    block, _ = assemble_block(
        chain_id=CHAIN_ID,
        prev=head,
        anchor=ANCHOR,
        frontier=frontier,
        txs=list(raws),
        results=[0] * len(raws),
        state_root=b"\x00" * 32,
        timestamp_ms=10_000_000,
        proposer="t",
        round=1,
    )
    return block


def assert_found(store: Any, blocks: Iterable[Block], context: object = None) -> None:
    """Every tx of ``blocks`` is found in ``store`` at its own height and position."""
    for blk in blocks:
        for pos, raw in enumerate(blk.txs):
            loc = store.tx_location(leaf_hash(raw))
            assert loc is not None and (loc.height, loc.position) == (
                blk.header.height,
                pos,
            ), (context, blk.header.height, pos)
