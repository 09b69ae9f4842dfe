"""A read-only sequence of 32-byte hashes stored in one contiguous buffer.

Why: a Python list of a million 32-byte ``bytes`` objects costs ~60 ns per element just
to gather into one buffer (a cache miss per object), which is more than the Merkle
kernel needs to hash it. Hashes that come out of a kernel are already contiguous; kept
in a ``HashArray`` they go back into a kernel with no copy. It is a ``Sequence[bytes]``,
so every API that takes leaf hashes accepts it and gets the same answer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import overload

HASH_BYTES = 32


@lru_cache(maxsize=64)
def _unpacker(count: int) -> struct.Struct:
    return struct.Struct(f"{HASH_BYTES}s" * count)


def split_hashes(raw: bytes) -> list[bytes]:
    """The 32-byte hashes laid end to end in ``raw``, as separate ``bytes``: one
    ``struct`` unpack (7x faster than slicing in a comprehension, for 1,000 hashes)."""
    n, rest = divmod(len(raw), HASH_BYTES)
    if rest:
        raise ValueError(f"{len(raw)} bytes are not whole {HASH_BYTES}-byte hashes")
    if n > 4096:  # a format string per size would be large: slice past this
        return [raw[i : i + HASH_BYTES] for i in range(0, len(raw), HASH_BYTES)]
    return list(_unpacker(n).unpack(raw)) if n else []


class HashArray(Sequence[bytes]):
    __slots__ = ("_buf",)

    def __init__(self, buf: bytes | memoryview) -> None:
        if len(buf) % HASH_BYTES:
            raise ValueError(f"a HashArray buffer is a multiple of {HASH_BYTES} bytes")
        # A read-only view over immutable bytes: slices share it instead of copying.
        view = memoryview(buf)
        if not view.readonly:
            view = memoryview(bytes(view))
        self._buf = view.cast("B")

    @classmethod
    def from_hashes(cls, hashes: Sequence[bytes]) -> HashArray:
        if any(len(h) != HASH_BYTES for h in hashes):
            raise ValueError(f"every hash must be {HASH_BYTES} bytes")
        return cls(b"".join(hashes))

    @property
    def buffer(self) -> memoryview:
        """The hashes back to back, read-only (no copy is needed to share it)."""
        return self._buf

    def __len__(self) -> int:
        return len(self._buf) // HASH_BYTES

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> HashArray: ...

    def __getitem__(self, index: int | slice) -> bytes | HashArray:
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step == 1:
                return HashArray(self._buf[start * HASH_BYTES : max(start, stop) * HASH_BYTES])
            return HashArray.from_hashes([self[i] for i in range(start, stop, step)])
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("HashArray index out of range")
        return self._buf[index * HASH_BYTES : (index + 1) * HASH_BYTES].tobytes()

    def __iter__(self) -> Iterator[bytes]:
        raw = self._buf.tobytes()
        return (raw[i : i + HASH_BYTES] for i in range(0, len(raw), HASH_BYTES))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HashArray):
            return self._buf == other._buf
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._buf)

    def __repr__(self) -> str:
        return f"HashArray(<{len(self)} hashes>)"
