"""PBFT messages on the peer wire: every body round-trips inside its ``Envelope``, and a
frame of the wrong shape (sizes, counts, ranges, types) is a ``WireError`` that names
the problem, never an exception of another kind."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import codec
from consensus.pbft_messages import (
    Body,
    Checkpoint,
    CheckpointCert,
    Commit,
    CommitCert,
    CommitProof,
    Envelope,
    NewView,
    Prepare,
    PreparedCert,
    PrePrepare,
    StateReply,
    StateRequest,
    Status,
    ViewChange,
)
from consensus.types import Entry, EntryKind
from node.transport.messages import WIRE
from node.transport.pbft_wire import REPLICAS_MAX, WINDOW_MAX
from node.transport.wire import WireError

D, S = b"d" * 32, b"s" * 64
PP = PrePrepare(2, 9, D, "n3", S, b"a block")
P = Prepare(2, 9, D, "n1", S)
C = Commit(2, 9, D, "n2", S)
CK = Checkpoint(8, D, "n1", S)
CKC = CheckpointCert(8, D, (CK, dataclasses.replace(CK, replica="n2")))
VC = ViewChange(3, CKC, (PreparedCert(PP, (P,)),), "n1", S)
BODIES: list[Body] = [
    PP,
    P,
    C,
    CK,
    VC,
    NewView(3, (VC,), (dataclasses.replace(PP, view=3),), "n4", S),
    Status(3, False, 9, 8),
    StateRequest(8, 16),
    StateReply((Entry(9, 2, b"x"), Entry(10, 3, b"", EntryKind.NOOP))),
    CommitProof((CommitCert(Entry(9, 2, b"a block"), (C,)),)),
]


@pytest.mark.parametrize("body", BODIES, ids=lambda b: type(b).__name__)
def test_every_pbft_body_round_trips_in_an_envelope(body: Body) -> None:
    env = Envelope("n1", "n2", body)
    assert WIRE.decode(WIRE.encode(env)) == env


def _env(body: Any) -> Envelope:
    return Envelope("n1", "n2", body)


@pytest.mark.parametrize(
    ("msg", "problem"),
    [
        (_env(dataclasses.replace(P, digest=b"short")), "digest of 5 bytes"),
        (_env(dataclasses.replace(C, sig=b"s" * 65)), "signature of 65 bytes"),
        (_env(dataclasses.replace(P, replica="")), "replica id of 0 bytes"),
        (_env(dataclasses.replace(P, replica="r" * 200)), "replica id of 200 bytes"),
        (Envelope("", "n2", P), "frm: replica id"),
        (_env(dataclasses.replace(P, seq=-1)), "seq: -1 out of range"),
        (_env(dataclasses.replace(CK, seq=2**63)), "out of range"),
        (_env(StateRequest(16, 8)), "is not a request"),
        (_env(StateRequest(0, WINDOW_MAX + 1)), "is not a request"),
        (_env(StateReply((Entry(1, 1, b"c", EntryKind.CONF_CHANGE),))), "not a PBFT entry"),
        (_env(StateReply(tuple(Entry(i, 1, b"") for i in range(WINDOW_MAX + 1)))), "items"),
        (
            _env(CommitProof((CommitCert(Entry(9, 2, b"x"), (C,) * (REPLICAS_MAX + 1)),))),
            "commits: 257 items",
        ),
        (
            _env(dataclasses.replace(VC, checkpoint=dataclasses.replace(CKC, digest=b""))),
            "checkpoint.digest",
        ),
        (
            _env(
                dataclasses.replace(
                    VC, prepared=(PreparedCert(PP, (dataclasses.replace(P, sig=b""),)),)
                )
            ),
            r"prepared\[0\].prepares\[0\].sig",
        ),
    ],
)
def test_a_misshapen_pbft_message_names_its_problem(msg: Envelope, problem: str) -> None:
    raw = WIRE.encode(msg)  # encoding does not judge; decoding does
    with pytest.raises(WireError, match=problem):
        WIRE.decode(raw)


def test_a_body_of_another_type_is_refused() -> None:
    raw = WIRE.encode(Envelope("n1", "n2", P))
    value = codec.decode(raw)
    value[3] = WIRE._enc(Entry(1, 1, b"x"))  # an Entry where a PBFT body belongs
    with pytest.raises(WireError, match="matches none of"):
        WIRE.decode(codec.encode(value))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(BODIES), st.integers(0, 2000), st.integers(0, 255))
def test_corrupted_pbft_frames_raise_only_wire_error(body: Body, pos: int, byte: int) -> None:
    raw = bytearray(WIRE.encode(_env(body)))
    raw[pos % len(raw)] = byte
    with contextlib.suppress(WireError):
        WIRE.decode(bytes(raw))
