"""The checks every store runs before it appends a block: a store never holds a chain
that does not verify, whatever its caller does."""

from __future__ import annotations

from chain.block import Block, BlockError, BlockHeader
from chain.merkle import Frontier
from storage.blockstore import AppendError


def check_and_extend(
    block: Block, head: BlockHeader | None, frontier: Frontier
) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Check ``block`` continues ``head``; return its tx ids and the completed log nodes.

    ``frontier`` is advanced only on success (the caller passes a copy it can drop).
    """
    ids, levels = check_and_extend_levels(block, head, frontier)
    return ids, [(lvl, s + i, h) for lvl, s, hashes in levels for i, h in enumerate(hashes)]


def check_and_extend_levels(
    block: Block, head: BlockHeader | None, frontier: Frontier
) -> tuple[list[bytes], list[tuple[int, int, list[bytes]]]]:
    """``check_and_extend`` with the completed nodes grouped by level, as
    ``Frontier.extend_levels`` gives them: ``(level, first index, hashes)``."""
    h = block.header
    expected_height = 1 if head is None else head.height + 1
    if h.height != expected_height:
        raise AppendError(f"block height {h.height}, expected {expected_height}")
    if head is not None:
        if h.prev_hash != head.hash:
            raise AppendError(f"block {h.height}: prev_hash does not match block {head.height}")
        if h.chain_id != head.chain_id:
            raise AppendError(f"block {h.height}: chain_id {h.chain_id!r} != {head.chain_id!r}")
        if h.timestamp_ms < head.timestamp_ms:
            raise AppendError(f"block {h.height}: timestamp goes backwards")
    if h.log_size != frontier.size + h.tx_count:
        raise AppendError(
            f"block {h.height}: log_size {h.log_size}, expected {frontier.size + h.tx_count}"
        )
    try:
        ids = block.check_body()
    except BlockError as exc:
        raise AppendError(f"block {h.height}: {exc}") from None
    if len(set(ids)) != len(ids):
        raise AppendError(f"block {h.height}: the same tx appears twice")
    known = block.log_extension(frontier)  # sound: check_body has passed
    if known is None:
        levels = frontier.extend_levels(ids)
    else:
        levels, after = known
        frontier.set_to(after)
    if frontier.root() != h.log_root:
        raise AppendError(f"block {h.height}: log_root does not match the log")
    return ids, levels
