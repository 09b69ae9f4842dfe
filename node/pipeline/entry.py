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

import msgpack

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


_BIN_HEADER_BYTES = {0xC4: 2, 0xC5: 3, 0xC6: 5}  # bin 8/16/32: marker and length
_HEADER_PEEK_BYTES = 1024
"""More than any header's encoding (13 fields: 5 hashes, two ids of at most 64 chars)."""
_TIMESTAMP_FIELD = 10  # chain.block.BlockHeader.fields()


def block_timestamp_ms(data: bytes) -> int | None:
    """The header timestamp of the block an entry carries, read from the entry's first
    bytes without decoding the rest (a follower checks it as entries arrive); None when
    the entry is not in a form that has one (it is then refused where it is applied)."""
    start = 0
    if data[:1] == _PAIR:
        skip = _BIN_HEADER_BYTES.get(data[1]) if len(data) > 1 else None
        if skip is None:
            return None
        start = 1 + skip
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=_HEADER_PEEK_BYTES)
    unpacker.feed(data[start : start + _HEADER_PEEK_BYTES])
    try:
        if unpacker.read_array_header() != 3:
            return None
        fields = unpacker.unpack()
    except Exception:  # msgpack's own: out of data, not an array, over a limit
        return None
    if not isinstance(fields, list) or len(fields) != 13:
        return None
    ts = fields[_TIMESTAMP_FIELD]
    return ts if type(ts) is int else None
