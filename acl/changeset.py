"""A block's change set as one byte string, the exact preimage the state root hashes.

Form: the block's state writes in strictly ascending key order, each
``len16(key) key len32(value) value`` or, for a delete, ``len16(key) key ffffffff``
(lengths big-endian). ``acl.machine`` chains ``SHA-256(change set)`` into the state root,
so a change set that gives the root a block header carries is, barring SHA-256
collisions, the change set that block's execution produced.

The proposer ships it with the block (``node.pipeline.entry``), so a Raft follower can apply the
block's writes after that root check instead of re-executing every tx
(``acl.machine.replay_block``). ``decode`` is strict: it trusts no length, and rejects
empty or over-long keys, keys out of order or repeated, and trailing bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

from acl.state import Write

KEY_BYTES_MAX = 511
"""LMDB's default key limit, as ``acl.state`` enforces on every put."""

_KEY_LEN = struct.Struct(">H")
_VALUE_LEN = struct.Struct(">I")
_DELETED = b"\xff\xff\xff\xff"
_DELETED_LEN = 0xFFFFFFFF


class ChangeSetError(ValueError):
    """Bytes that are not a well-formed change set; the message says where and why."""


def encode(writes: Sequence[Write]) -> bytes:
    """The change set of ``writes`` (sorted by key, one per key, as ``Overlay.writes``
    returns them; not re-checked here, the hot path of every block built)."""
    parts: list[bytes] = []
    key_len = _KEY_LEN.pack
    value_len = _VALUE_LEN.pack
    extend = parts.extend
    for key, value in writes:
        if value is None:
            extend((key_len(len(key)), key, _DELETED))
        else:
            extend((key_len(len(key)), key, value_len(len(value)), value))
    return b"".join(parts)


def digest(change_set: bytes) -> bytes:
    """``D`` of the state root: SHA-256 of the change set."""
    return hashlib.sha256(change_set).digest()


def decode(data: bytes) -> list[Write]:
    """The writes of a change set, in key order; ``ChangeSetError`` if malformed."""
    if not isinstance(data, bytes):
        raise ChangeSetError(f"expected bytes, got {type(data).__name__}")
    out: list[Write] = []
    append = out.append
    end = len(data)
    i = 0
    prev = b""
    while i < end:
        if i + 2 > end:
            raise ChangeSetError(f"at byte {i}: truncated key length")
        key_len = (data[i] << 8) | data[i + 1]
        k = i + 2 + key_len
        if not 0 < key_len <= KEY_BYTES_MAX:
            raise ChangeSetError(f"at byte {i}: key length {key_len} is not in 1..{KEY_BYTES_MAX}")
        if k + 4 > end:
            raise ChangeSetError(f"at byte {i}: truncated key or value length")
        key = data[i + 2 : k]
        if key <= prev:
            raise ChangeSetError(f"at byte {i}: keys are not in strictly ascending order")
        value_len = int.from_bytes(data[k : k + 4], "big")
        if value_len == _DELETED_LEN:
            append((key, None))
            i = k + 4
        else:
            i = k + 4 + value_len
            if i > end:
                raise ChangeSetError(f"at byte {k}: value of {value_len} bytes overruns the end")
            append((key, data[k + 4 : i]))
        prev = key
    return out
