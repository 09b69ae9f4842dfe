"""The leader's speculative state (``node.pipeline.speculation``) reads exactly like the store
will once the blocks in flight are applied."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acl.state import MemoryState
from node.pipeline.speculation import SpeculativeView, WriteLayer
from storage.blockstore import TxLocation

keys = st.binary(min_size=1, max_size=3)
values = st.binary(max_size=4)
layer_writes = st.dictionaries(keys, st.none() | values, max_size=12)


class _Base(MemoryState):
    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        return TxLocation(1, 0, 0, 0) if tx_id == b"committed" else None


def _range(view: SpeculativeView | MemoryState, start: bytes, end: bytes | None) -> list:
    out: Iterator[tuple[bytes, bytes]] = view.range(start, end)
    return list(out)


@settings(max_examples=300, deadline=None)
@given(
    base=st.dictionaries(keys, values, max_size=12),
    layers=st.lists(layer_writes, max_size=4),
    start=keys,
    end=st.none() | keys,
)
def test_reads_match_the_state_after_applying_every_layer(
    base: dict[bytes, bytes],
    layers: list[dict[bytes, bytes | None]],
    start: bytes,
    end: bytes | None,
) -> None:
    view = SpeculativeView(_Base(base.items()), [WriteLayer(sorted(w.items())) for w in layers])
    applied = MemoryState(base.items())
    for writes in layers:
        applied.apply(sorted(writes.items()))
    for key in {*base, *(k for w in layers for k in w), start}:
        assert view.get(key) == applied.get(key)
    assert _range(view, start, end) == _range(applied, start, end)
    assert _range(view, b"\x00", None) == _range(applied, b"\x00", None)


def test_only_committed_txs_are_found() -> None:
    view = SpeculativeView(_Base(), [WriteLayer([(b"k", b"v")])])
    assert view.tx_location(b"committed") is not None
    assert view.tx_location(b"in flight") is None


@pytest.mark.parametrize("writes", [[(b"b", b"1"), (b"a", b"2")], [(b"a", b"1"), (b"a", b"2")]])
def test_a_layer_needs_sorted_unique_keys(writes: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(ValueError, match="sorted"):
        WriteLayer(writes)
