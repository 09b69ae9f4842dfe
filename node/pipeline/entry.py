"""What a node's Raft entries carry: a block, and the change set the proposer's execution
of it produced (``acl.changeset``), so that followers may apply the block's writes
without re-executing it (``node.pipeline.ledger`` says who does which).

Two forms, both canonical msgpack, told apart by their first byte:

- ``[block, change_set]`` (``0x92``, two byte strings): what a leader proposes;
- a bare block (``chain.block``'s ``[header, txs, results]``, ``0x93``): what catch-up
  fetches from a peer's store, and what a leader proposes when block and change set
  together would exceed ``ENTRY_BYTES_MAX``. Appliers re-execute it.
"""

from __future__ import annotations

from chain import codec, limits

ENTRY_BYTES_MAX = limits.BLOCK_BYTES_MAX
"""The largest entry a leader proposes (the consensus core's ``max_entry_bytes``), so an
entry fits a peer frame (``node.runtime.config.FRAME_BYTES_MAX_DEFAULT``)."""

_PAIR = b"\x92"
_ENCODING_BYTES = 12
"""The array marker and two bin32 headers: the most a pair adds to its parts."""


class EntryError(ValueError):
    """An entry in neither form; the message says why."""


def encode_entry(block: bytes, change_set: bytes | None) -> bytes:
    """The entry proposing ``block`` (its bytes): with ``change_set`` when given and the
    two fit ``ENTRY_BYTES_MAX``, else the bare block."""
    if change_set is None or len(block) + len(change_set) + _ENCODING_BYTES > ENTRY_BYTES_MAX:
        return block
    return codec.encode([block, change_set])


def decode_entry(data: bytes) -> tuple[bytes, bytes | None]:
    """(block bytes, change set or None); the block itself is decoded by the caller."""
    if data[:1] != _PAIR:
        return data, None
    try:
        value = codec.decode(data, max_bytes=ENTRY_BYTES_MAX)
    except codec.DecodeError as exc:
        raise EntryError(f"entry encoding: {exc}") from None
    block, change_set = value  # a 2-array: the first byte said so
    if type(block) is not bytes or type(change_set) is not bytes:
        raise EntryError("an entry is [block bytes, change set bytes]")
    return block, change_set
