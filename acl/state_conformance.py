"""Conformance checks for ``StateReader`` / ``State`` implementations, shared by every one.

Each check takes a factory and raises ``AssertionError`` naming what broke. The storage
layer runs ``check_reader`` against its LMDB reader the same way ``tests/acl`` runs it
against ``MemoryState`` and ``Overlay``:

    check_reader(lambda items: committed_lmdb_reader_holding(items))

- ``ReaderFactory(items)`` returns a reader whose committed content is exactly ``items``.
- ``StateFactory()`` returns an empty, writable ``State``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from acl.state import State, StateReader, prefix_end, scan_prefix

ReaderFactory = Callable[[Sequence[tuple[bytes, bytes]]], StateReader]
StateFactory = Callable[[], State]

SAMPLE: tuple[tuple[bytes, bytes], ...] = (
    (b"a", b"1"),
    (b"a\x00", b"2"),
    (b"a\xff", b"3"),
    (b"ab", b"4"),
    (b"b", b""),
    (b"b\x00\x01", b"5"),
    (b"\xff", b"6"),
    (b"\xff\xff", b"7"),
    (b"\x00", b"8"),
)


def _expect(reader: StateReader, start: bytes, end: bytes | None) -> list[tuple[bytes, bytes]]:
    got = list(reader.range(start, end))
    keys = [k for k, _ in got]
    assert keys == sorted(keys), f"range({start!r}, {end!r}) is not ascending: {keys!r}"
    assert len(set(keys)) == len(keys), f"range({start!r}, {end!r}) repeats keys"
    return got


def check_reader(factory: ReaderFactory) -> None:
    """``get`` and ``range`` semantics: bounds, order, prefixes, empty values, 0x00/0xff."""
    reader = factory(SAMPLE)
    want = dict(SAMPLE)
    for key, value in SAMPLE:
        got = reader.get(key)
        assert got == value, f"get({key!r}) = {got!r}, want {value!r}"
        assert isinstance(got, bytes), f"get({key!r}) returned {type(got).__name__}, not bytes"
    for missing in (b"c", b"a\x00\x00", b"\xfe", b"aa"):
        assert reader.get(missing) is None, f"get({missing!r}) should be None"
    everything = sorted(SAMPLE)
    assert _expect(reader, b"\x00", None) == everything
    assert _expect(reader, b"\x01", None) == everything[1:]
    assert _expect(reader, b"a", b"b") == [(k, v) for k, v in everything if b"a" <= k < b"b"]
    assert _expect(reader, b"a\x00", b"ab") == [(b"a\x00", b"2")], "0xff sorts after 'b'"
    assert _expect(reader, b"b", b"b") == [], "an empty range yields nothing"
    assert _expect(reader, b"c", b"a") == [], "an inverted range yields nothing"
    assert _expect(reader, b"\xff", None) == [(b"\xff", b"6"), (b"\xff\xff", b"7")]
    assert list(scan_prefix(reader, b"a")) == [
        (k, want[k]) for k in (b"a", b"a\x00", b"ab", b"a\xff")
    ]
    assert list(scan_prefix(reader, b"b")) == [(b"b", b""), (b"b\x00\x01", b"5")]
    assert list(scan_prefix(reader, b"\xff")) == [(b"\xff", b"6"), (b"\xff\xff", b"7")]
    # Stopping early and scanning twice must both work (generators over cursors).
    it = reader.range(b"a", None)
    assert next(it) == (b"a", b"1")
    assert list(reader.range(b"ab", b"b\x00\x02")) == [
        (b"ab", b"4"),
        (b"a\xff", b"3"),
        (b"b", b""),
        (b"b\x00\x01", b"5"),
    ]
    empty = factory(())
    assert empty.get(b"a") is None
    assert list(empty.range(b"", None)) == []


def check_state(factory: StateFactory) -> None:
    """``put``/``delete`` on top of the reader semantics: overwrite, delete, re-insert."""
    state = factory()
    for key, value in SAMPLE:
        state.put(key, value)
    check_reader(lambda items: _filled(factory, items))
    state.put(b"a", b"changed")
    assert state.get(b"a") == b"changed"
    state.delete(b"ab")
    state.delete(b"never-there")
    assert state.get(b"ab") is None
    assert [k for k, _ in state.range(b"a", b"b")] == [b"a", b"a\x00", b"a\xff"]
    state.put(b"ab", b"back")
    assert list(scan_prefix(state, b"ab")) == [(b"ab", b"back")]
    state.put(b"aa", b"new")
    assert [k for k, _ in state.range(b"a", b"b")] == [b"a", b"a\x00", b"aa", b"ab", b"a\xff"]


def _filled(factory: StateFactory, items: Sequence[tuple[bytes, bytes]]) -> State:
    state = factory()
    for key, value in items:
        state.put(key, value)
    return state


def check_prefix_end() -> None:
    assert prefix_end(b"a") == b"b"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") is None
    assert prefix_end(b"") is None
