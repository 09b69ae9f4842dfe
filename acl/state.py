"""The key-value state the ACL machine reads and writes, behind a small Protocol.

The same machine code runs on LMDB (the storage layer hands it a reader over committed
state and persists the block's writes in the block's own write transaction) and in memory
(tests, the simulator, benchmarks). Keys and values are bytes; keys order bytewise.

- ``StateReader``: ``get`` and an ascending ``range`` scan — all the machine and the
  queries need.
- ``State``: a reader that also takes ``put`` and ``delete``.
- ``MemoryState``: the in-memory ``State``.
- ``Overlay``: records a block's writes on top of a reader without touching it, reads
  its own writes, and hands them back sorted — what ``apply_block`` returns.

``acl.state_conformance`` holds the shared conformance checks every implementation passes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

_UNSET = object()

Write = tuple[bytes, bytes | None]
"""One state change: (key, value), value None = delete."""


class StateError(RuntimeError):
    """An invariant of the state or of the block sequence is broken (a height gap, time
    going backwards, state from another genesis). The node must stop, not write."""


@runtime_checkable
class StateReader(Protocol):
    def get(self, key: bytes) -> bytes | None:
        """The value stored under ``key``, or None."""
        ...

    def range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) with ``start <= key < end`` (``end`` None: no upper bound),
        in ascending key order."""
        ...


@runtime_checkable
class State(StateReader, Protocol):
    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None:
        """Remove ``key``; removing a missing key is not an error."""
        ...


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound),
    so that ``range(prefix, prefix_end(prefix))`` is a prefix scan."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def scan_prefix(state: StateReader, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every entry whose key starts with ``prefix``, ascending."""
    return state.range(prefix, prefix_end(prefix))


class MemoryState:
    """An in-memory ``State``: a dict plus a sorted key list rebuilt lazily for scans.

    Writes are O(1); the first scan after new keys arrive sorts once (Timsort is linear on
    the mostly-sorted key lists this sees), so bulk application stays cheap.
    """

    __slots__ = ("_data", "_sorted")

    def __init__(self, items: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._data: dict[bytes, bytes] = {}
        self._sorted: list[bytes] | None = None
        for key, value in items:
            self.put(key, value)

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        _check_key(key)
        if not isinstance(value, bytes):
            raise TypeError(f"state values are bytes, got {type(value).__name__}")
        if key not in self._data:
            self._sorted = None
        self._data[key] = value

    def delete(self, key: bytes) -> None:
        if self._data.pop(key, None) is not None:
            self._sorted = None

    def apply(self, writes: Iterable[Write]) -> None:
        """Apply a block's writes (what ``apply_block`` returned)."""
        for key, value in writes:
            if value is None:
                self.delete(key)
            else:
                self.put(key, value)

    def range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        if self._sorted is None:
            self._sorted = sorted(self._data)
        keys = self._sorted
        data = self._data
        i = bisect.bisect_left(keys, start)
        stop = len(keys) if end is None else bisect.bisect_left(keys, end)
        # A snapshot of the slice: writes during iteration do not disturb the scan.
        for key in keys[i:stop]:
            value = data.get(key)
            if value is not None:
                yield key, value

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> list[tuple[bytes, bytes]]:
        """All entries, ascending (for tests and dumps)."""
        return list(self.range(b"", None))


class Overlay:
    """A ``State`` that records writes over a base reader and leaves the base untouched.

    Reads see the overlay's own writes first. ``writes()`` returns them sorted by key, one
    per key (the last one wins), deletes of keys the base never had included — the block's
    change set, deterministic whatever order the machine wrote in.
    """

    __slots__ = ("_base", "_writes")

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._writes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        own = self._writes.get(key, _UNSET)
        if own is not _UNSET:
            return own  # type: ignore[return-value]
        return self._base.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        _check_key(key)
        if not isinstance(value, bytes):
            raise TypeError(f"state values are bytes, got {type(value).__name__}")
        self._writes[key] = value

    def delete(self, key: bytes) -> None:
        self._writes[key] = None

    def put_trusted(self, key: bytes, value: bytes | None) -> None:
        """``put`` (or, with None, ``delete``) without the argument checks: for the
        machine's hot path, whose keys come from ``acl.keys`` and values from encoders."""
        self._writes[key] = value

    def range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        mine = sorted(k for k in self._writes if k >= start and (end is None or k < end))
        return merge_writes(self._base.range(start, end), mine, self._writes)

    def writes(self) -> tuple[Write, ...]:
        """The recorded changes, sorted by key."""
        writes = self._writes
        return tuple([(key, writes[key]) for key in sorted(writes)])

    def __len__(self) -> int:
        return len(self._writes)


def merge_writes(
    base: Iterable[tuple[bytes, bytes]],
    keys: Sequence[bytes],
    writes: Mapping[bytes, bytes | None],
) -> Iterator[tuple[bytes, bytes]]:
    """A scan of ``base`` (sorted by key) as it reads after ``writes``: ``keys`` are the
    written keys inside the scanned range, sorted; a ``None`` write hides the key."""
    j = 0
    for key, value in base:
        while j < len(keys) and keys[j] < key:
            own = writes[keys[j]]
            if own is not None:
                yield keys[j], own
            j += 1
        if j < len(keys) and keys[j] == key:
            own = writes[key]
            if own is not None:
                yield key, own
            j += 1
        else:
            yield key, value
    for k in keys[j:]:
        own = writes[k]
        if own is not None:
            yield k, own


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or not 0 < len(key) <= 511:
        raise ValueError("state keys are 1..511 bytes (LMDB's default key limit)")
