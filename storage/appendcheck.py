"""The checks every store runs before it appends a block: a store never holds a chain
that does not verify, whatever its caller does."""

from __future__ import annotations

from chain.block import Block, BlockError, BlockHeader
from chain.kernels import backend
from chain.kernels.hasharray import HASH_BYTES
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


def _repeats(ids: list[bytes], joined_ids: bytes | None) -> bool:
    """Whether ``ids`` hold one id twice: in a kernel that frees the GIL where the backend
    has one (``Backend.has_repeat``, on ``joined_ids`` if they are ``ids`` end to end),
    else with a set (~50 us of the writer's GIL a block of 1,000)."""
    kernel = backend.active().has_repeat
    if kernel is None or len(ids) < 2:
        return len(set(ids)) != len(ids)
    if joined_ids is None or len(joined_ids) != HASH_BYTES * len(ids):
        joined_ids = b"".join(ids)
    return kernel(joined_ids)


def check_and_extend_levels(
    block: Block,
    head: BlockHeader | None,
    frontier: Frontier,
    joined_ids: bytes | None = None,
) -> tuple[list[bytes], list[tuple[int, int, list[bytes]]]]:
    """``check_and_extend`` with the completed nodes grouped by level, as
    ``Frontier.extend_levels`` gives them: ``(level, first index, hashes)``.
    ``joined_ids``: the block's tx ids end to end, where the caller has them from the
    same block (joined from ``block.check_body()``), so the repeat check need not join
    them."""
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
    if _repeats(ids, joined_ids):
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
