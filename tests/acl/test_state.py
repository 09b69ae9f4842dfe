"""The state Protocol: MemoryState and Overlay pass the shared conformance checks."""

from __future__ import annotations

from collections.abc import Sequence

from acl.state import MemoryState, Overlay, State, StateReader
from acl.state_conformance import SAMPLE, check_prefix_end, check_reader, check_state


def test_memory_state_conforms() -> None:
    check_reader(lambda items: MemoryState(items))
    check_state(MemoryState)
    assert isinstance(MemoryState(), State)


def _split_overlay(items: Sequence[tuple[bytes, bytes]]) -> StateReader:
    """Half the items in the base, half written on top, plus a masked base key."""
    base = MemoryState(items[::2])
    base.put(b"a\x00\x00", b"deleted above")
    ov = Overlay(base)
    for key, value in items[1::2]:
        ov.put(key, value)
    ov.delete(b"a\x00\x00")
    return ov


def test_overlay_conforms_over_a_base() -> None:
    check_reader(_split_overlay)
    check_state(lambda: Overlay(MemoryState()))


def test_overlay_shadows_and_reports_sorted_writes_without_touching_base() -> None:
    base = MemoryState(SAMPLE)
    before = base.items()
    ov = Overlay(base)
    ov.put(b"zz", b"new")
    ov.put(b"a", b"changed")
    ov.delete(b"b")
    ov.delete(b"never")
    assert ov.get(b"a") == b"changed" and ov.get(b"b") is None and base.get(b"b") == b""
    assert base.items() == before
    assert ov.writes() == ((b"a", b"changed"), (b"b", None), (b"never", None), (b"zz", b"new"))
    base.apply(ov.writes())
    assert base.get(b"zz") == b"new" and base.get(b"b") is None


def test_prefix_end() -> None:
    check_prefix_end()
