"""The peer message codec: every message round-trips, and malformed frames of any shape
raise ``WireError`` (never anything else)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import codec
from consensus.types import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    EntryKind,
    InstallSnapshot,
    RequestVote,
    Snapshot,
    SnapshotMeta,
)
from node.transport.messages import WIRE, BlockResponse, ForwardTxs, HeaderSig
from node.transport.wire import WireError

SAMPLES: list[Any] = [
    RequestVote("n1", "n2", 3, 10, 2, pre_vote=True),
    AppendEntries(
        "n1", "n2", 4, 9, 3, (Entry(10, 4, b"block"), Entry(11, 4, b"", EntryKind.NOOP)), 9
    ),
    AppendEntriesResponse("n2", "n1", 4, False, 9, hint_index=5, hint_term=2),
    InstallSnapshot("n1", "n3", 5, Snapshot(SnapshotMeta(100, 4, ("n1", "n2", "n3")), b"state")),
    ForwardTxs("n2", (b"tx1", b"tx2")),
    HeaderSig("n3", 7, b"\x01" * 32, b"\x02" * 64),
    BlockResponse("n1", ()),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(msg: Any) -> None:
    assert WIRE.decode(WIRE.encode(msg)) == msg


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ([99, "x"], "unknown message tag"),
        ([0, "n1", "n2", 3, 10, 2, True], "fields"),
        ([0, "n1", "n2", "3", 10, 2, True, False], "expected an int"),
        ([0, "n1", "n2", True, 10, 2, True, False], "expected an int"),
        ([2, "n1", "n2", 4, 9, 3, [[8, 10, 4, b"x", 7]], 9], "is not a EntryKind"),
        ([2, "n1", "n2", 4, 9, 3, [[0, "n1", "n2", 3, 10, 2, True, False]], 9], "expected Entry"),
        ([11, "n2", [b"ok", "str"]], "expected bytes"),
        ("hello", "expected \\[tag"),
    ],
)
def test_malformed_messages_name_the_problem(value: Any, problem: str) -> None:
    with pytest.raises(WireError, match=problem):
        WIRE.decode(codec.encode(value))


@settings(max_examples=400)
@given(st.binary(max_size=200))
def test_garbage_raises_only_wire_error(data: bytes) -> None:
    with contextlib.suppress(WireError):
        WIRE.decode(data)


@settings(max_examples=300)
@given(st.sampled_from(SAMPLES), st.integers(0, 400), st.integers(0, 255))
def test_corrupted_frames_raise_only_wire_error(msg: Any, pos: int, byte: int) -> None:
    raw = bytearray(WIRE.encode(msg))
    raw[pos % len(raw)] = byte
    with contextlib.suppress(WireError):
        WIRE.decode(bytes(raw))


_ITEMS = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=8),
    st.integers(-(2**63), 2**64 - 1),
    st.booleans(),
    st.none(),
    st.lists(st.binary(max_size=4), max_size=2),
)


@settings(max_examples=400)
@given(st.text(max_size=8), st.lists(_ITEMS, max_size=12))
def test_tuple_fast_path_gives_the_checked_paths_verdict(frm: str, items: list[Any]) -> None:
    """A tuple whose items are all exactly of the declared type is taken whole
    (``wire._EXACT``); any frame decodes to the same message, or fails with the same
    message, as through the item-by-item path."""
    from node.transport import wire

    raw = codec.encode([11, frm, items])

    def outcome() -> Any:
        try:
            return WIRE.decode(raw)
        except WireError as exc:
            return f"WireError: {exc}"

    fast = outcome()
    exact, wire._EXACT = wire._EXACT, ()
    try:
        checked = outcome()
    finally:
        wire._EXACT = exact
    assert fast == checked
    if all(type(x) is bytes for x in items):
        assert fast == ForwardTxs(frm, tuple(items))


@settings(max_examples=200)
@given(st.text(max_size=8), st.lists(st.binary(max_size=40), max_size=12))
def test_forward_txs_encode_as_the_generic_array(frm: str, txs: list[bytes]) -> None:
    assert WIRE.encode(ForwardTxs(frm, tuple(txs))) == codec.encode([11, frm, txs])
