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
