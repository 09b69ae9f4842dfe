"""Assembling a block from its parts: the one place that fills in a header's roots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from chain import limits, merkle
from chain.block import Block, BlockHeader, results_root
from chain.hashing import leaf_hashes
from chain.kernels import backend
from chain.kernels.hasharray import split_hashes
from chain.merkle import Frontier

if TYPE_CHECKING:  # the kernels load numba: only where the backend is numba
    from chain.kernels.blockroots import BodyArrays


def _ids_and_roots(
    txs: Sequence[bytes], results: Sequence[int]
) -> tuple[list[bytes], bytes, bytes, bytes, BodyArrays] | None:
    """(tx ids, the ids end to end, tx root, results root, the body's arrays) from one
    call that frees the GIL, where the kernel backend has it (``Backend.body_roots``) and
    it applies; else None. The store's writer thread commits the block before while this
    runs."""
    roots = backend.active().body_roots
    got = roots(txs, results) if roots is not None else None
    if got is None:
        return None
    ids, tx_root, res_root, arrays = got
    return split_hashes(ids), ids, tx_root, res_root, arrays


def assemble_block(
    *,
    chain_id: str,
    prev: BlockHeader | None,
    anchor: bytes,
    frontier: Frontier,
    txs: Sequence[bytes],
    results: Sequence[int],
    state_root: bytes,
    timestamp_ms: int,
    proposer: str,
    round: int,
    tx_ids: Sequence[bytes] | None = None,
) -> tuple[Block, Frontier]:
    """The block after ``prev`` (``anchor`` — the genesis hash — links block 1) and the
    log frontier after it. ``frontier`` itself is left unchanged. ``tx_ids``, when the
    caller has them, are the txs' leaf hashes (the store re-derives them on append).

    The block remembers what was computed here (``Block._remember_assembly``), so a store
    in this process does not hash the txs or the log's new nodes a second time."""
    fast = _ids_and_roots(txs, results) if tx_ids is None else None
    joined: bytes | None = None  # the ids end to end, as the kernel gave them
    arrays: BodyArrays | None = None
    if fast is not None:
        ids, joined, tx_root, res_root, arrays = fast
    else:
        ids = list(tx_ids) if tx_ids is not None else leaf_hashes(txs)
        if len(ids) != len(txs):
            raise ValueError(f"{len(ids)} tx ids for {len(txs)} txs")
        tx_root, res_root = merkle.root(ids), results_root(ids, results)
    after = frontier.copy()
    levels = after.extend_levels(ids, joined=joined)
    header = BlockHeader(
        version=limits.HEADER_VERSION,
        chain_id=chain_id,
        height=1 if prev is None else prev.height + 1,
        prev_hash=anchor if prev is None else prev.hash,
        tx_root=tx_root,
        tx_count=len(txs),
        log_root=after.root(),
        log_size=after.size,
        results_root=res_root,
        state_root=state_root,
        timestamp_ms=max(timestamp_ms, prev.timestamp_ms if prev else 0),
        proposer=proposer,
        round=round,
    )
    block = Block(header, tuple(txs), tuple(results))
    # The ids are the txs' leaf hashes when computed here (never when a caller gave them:
    # the store must then derive them), and the log's new nodes are the ids' alone.
    block._remember_assembly(ids if tx_ids is None else None, frontier, levels, after, arrays)
    return block, after
