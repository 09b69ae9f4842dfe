"""Re-checks a chain block by block, from genesis, holding only the log frontier.

What it checks: heights are consecutive, each header links to the previous one (block 1
to the anchor, the genesis hash), chain ids agree, timestamps never go backwards, each
body matches its header's ``tx_root``, ``results_root`` and ``tx_count``, the log's size
and root after every block match the header, no tx appears twice, and (optionally) every
tx decodes strictly, belongs to the chain and carries a valid signature.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from chain import merkle
from chain.block import Block, BlockError, BlockHeader, results_root
from chain.kernels import backend
from chain.kernels.hasharray import split_hashes
from chain.merkle import Frontier
from chain.signing import verify_batch
from chain.tx import TxError, decode_tx


class VerifyError(Exception):
    """The chain is not intact at ``height``; ``reason`` says what is wrong."""

    def __init__(self, height: int, reason: str) -> None:
        super().__init__(f"block {height}: {reason}")
        self.height = height
        self.reason = reason


class ChainVerifier:
    def __init__(self, *, anchor: bytes | None = None, check_signatures: bool = False) -> None:
        self.anchor = anchor
        self.check_signatures = check_signatures
        self.head: BlockHeader | None = None
        self.frontier = Frontier()
        self.txs_checked = 0
        self.signatures_checked = 0

    @property
    def height(self) -> int:
        return self.head.height if self.head else 0

    def feed(self, block: Block) -> list[bytes]:
        """Check the next block; return its tx ids. Raises ``VerifyError``."""
        h = block.header
        self._check_link(h)
        try:
            ids = block.check_body()
        except BlockError as exc:
            raise VerifyError(h.height, str(exc)) from None
        self._extend(h, ids)
        if self.check_signatures and block.txs:
            self._check_signatures(block)
        self._advance(h, ids)
        return ids

    def feed_packed(
        self, header: BlockHeader, txs: bytes, lengths: Any, results: Sequence[int]
    ) -> list[bytes]:
        """``feed`` of the block whose txs are given end to end (``txs``) with their
        ``lengths`` (int64 array), as ``LmdbBlockStore.iter_packed`` reads them: the ids
        and roots in one kernel call, no ``bytes`` object per tx. The same checks and
        errors as ``feed``; a block the kernel does not take (no txs, a bad result code,
        no kernel backend) is split into its txs and fed so."""
        roots = backend.active().packed_roots
        n = len(lengths)
        got = (
            roots(txs, lengths, results)
            if roots is not None and not self.check_signatures
            else None
        )
        if got is None or not n == len(results) == header.tx_count:
            bounds = itertools.accumulate(int(x) for x in lengths)
            split = [txs[a:b] for a, b in itertools.pairwise(itertools.chain((0,), bounds))]
            return self.feed(Block(header, tuple(split), tuple(results)))
        h = header
        self._check_link(h)
        joined, tx_root, res_root = got
        if tx_root != h.tx_root:
            raise VerifyError(h.height, "tx_root does not match the block's txs")
        if res_root != h.results_root:
            raise VerifyError(h.height, "results_root does not match the block's results")
        ids = split_hashes(joined)
        self._extend(h, ids, joined)
        self._advance(h, ids)
        return ids

    def feed_pruned(self, header: BlockHeader, ids: list[bytes], results: list[int]) -> None:
        """Check the next block, whose txs were pruned, from their ids (leaf hashes) and
        results: everything ``feed`` checks but the ids being the txs' hashes and the
        txs themselves (their signatures)."""
        self._check_link(header)
        if not len(ids) == len(results) == header.tx_count:
            raise VerifyError(
                header.height,
                f"header says {header.tx_count} txs; {len(ids)} ids and {len(results)} results kept",
            )
        if any(len(i) != 32 for i in ids) or merkle.root(ids) != header.tx_root:
            raise VerifyError(header.height, "tx_root does not match the ids kept")
        try:
            if results_root(ids, results) != header.results_root:
                raise VerifyError(header.height, "results_root does not match the results kept")
        except BlockError as exc:
            raise VerifyError(header.height, str(exc)) from None
        self._extend(header, ids)
        self._advance(header, ids)

    def _advance(self, h: BlockHeader, ids: list[bytes]) -> None:
        self.head = h
        self.txs_checked += len(ids)

    def _extend(self, h: BlockHeader, ids: list[bytes], joined: bytes | None = None) -> None:
        if h.log_size != self.frontier.size + h.tx_count:
            raise VerifyError(
                h.height, f"log_size {h.log_size}, expected {self.frontier.size + h.tx_count}"
            )
        self.frontier.extend_levels(ids, joined=joined)  # the nodes it returns are not kept
        if self.frontier.root() != h.log_root:
            raise VerifyError(h.height, "log_root does not match the txs since genesis")

    def _check_link(self, h: BlockHeader) -> None:
        expected = self.height + 1
        if h.height != expected:
            raise VerifyError(expected, f"found height {h.height} where {expected} belongs")
        if self.head is None:
            if self.anchor is not None and h.prev_hash != self.anchor:
                raise VerifyError(h.height, "prev_hash is not the genesis hash")
        else:
            if h.prev_hash != self.head.hash:
                raise VerifyError(h.height, f"prev_hash does not match block {self.head.height}")
            if h.chain_id != self.head.chain_id:
                raise VerifyError(h.height, f"chain_id {h.chain_id!r} differs from the chain's")
            if h.timestamp_ms < self.head.timestamp_ms:
                raise VerifyError(h.height, "timestamp goes backwards")

    def _check_signatures(self, block: Block) -> None:
        h = block.header
        keys, msgs, sigs = [], [], []
        for pos, raw in enumerate(block.txs):
            try:
                tx = decode_tx(raw)
            except TxError as exc:
                raise VerifyError(h.height, f"tx {pos}: {exc}") from None
            if tx.chain_id != h.chain_id:
                raise VerifyError(
                    h.height, f"tx {pos}: chain_id {tx.chain_id!r} is not this chain's"
                )
            keys.append(tx.sender)
            msgs.append(tx.signing_bytes())
            sigs.append(tx.signature)
        for pos, ok in enumerate(verify_batch(keys, msgs, sigs)):
            if not ok:
                raise VerifyError(h.height, f"tx {pos}: bad signature")
        self.signatures_checked += len(sigs)
