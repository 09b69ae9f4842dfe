"""The audit log: the events recorded in a time range, the event a tx recorded, and
where an applied tx is with its result.
"""

from __future__ import annotations

from collections.abc import Iterator

from acl import keys as K
from acl.evidence import TxRef
from acl.state import StateReader
from acl.views import EventView


def encode_time_bound(value: int) -> bytes:
    """A time bound as a key part, clamped to the u64 range (callers pass user input)."""
    return K.u64(min(max(int(value), 0), 2**64 - 1))


def events(state: StateReader, from_ms: int, until_ms: int) -> Iterator[EventView]:
    """Audit events recorded in blocks with ``from_ms <= block time < until_ms``, in chain order."""
    for key, raw in state.range(
        K.LOG + encode_time_bound(from_ms), K.LOG + encode_time_bound(until_ms)
    ):
        yield EventView.from_entry(key, raw)


def event(state: StateReader, tx_id: bytes, tx_timestamp_ms: int) -> EventView | None:
    """The audit event a tx (its id and its own ``timestamp_ms``) recorded, or None (not
    applied, or not an audit event)."""
    raw = state.get(K.tx_key(tx_timestamp_ms, tx_id))
    if raw is None:
        return None
    height, index, _result, ms = K.TX_RECORD.unpack(raw)
    key = K.LOG + K.time_position(ms, height, index)
    value = state.get(key)
    return None if value is None else EventView.from_entry(key, value)


def tx_result(state: StateReader, tx_id: bytes, tx_timestamp_ms: int) -> tuple[TxRef, int] | None:
    """Where an applied tx (its id and its own ``timestamp_ms``) is and its result
    (rejected txs are in the block store's tx index only)."""
    raw = state.get(K.tx_key(tx_timestamp_ms, tx_id))
    if raw is None:
        return None
    height, index, result, _ms = K.TX_RECORD.unpack(raw)
    return TxRef(height, index, tx_id), result
