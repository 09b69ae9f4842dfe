"""Node-to-node messages beside the consensus core's own, and the one wire codec for all.

Every message names its sender (``frm``); the transport checks it against the peer's
verified certificate before anything else looks at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus.pbft_messages import (
    Checkpoint,
    CheckpointCert,
    Commit,
    CommitCert,
    CommitProof,
    Envelope,
    EpochChanges,
    EpochProof,
    NewView,
    Prepare,
    PreparedCert,
    PrePrepare,
    StableState,
    StateReply,
    StateRequest,
    ViewChange,
)
from consensus.pbft_messages import Status as PbftStatus
from consensus.types import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
)
from node.transport.pbft_wire import shape_problem
from node.transport.wire import MessageCodec


@dataclass(frozen=True, slots=True)
class ForwardTxs:
    """A follower hands admitted txs to the leader (writes sent to a follower reach it)."""

    frm: str
    txs: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class HeaderSig:
    """A node's signature over a committed header: a quorum of them is the certificate."""

    frm: str
    height: int
    header_hash: bytes
    signature: bytes
    reply: bool = False
    """True when sent back to a node that announced its own signature: a node that was
    down or caught up late gets the signatures it missed, without a reply to a reply."""


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """Catch-up: send me committed blocks ``start_height..end_height`` (inclusive)."""

    frm: str
    start_height: int
    end_height: int


@dataclass(frozen=True, slots=True)
class BlockResponse:
    frm: str
    blocks: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class CertifiedBlocks:
    """A PBFT node's answer to a ``BlockRequest``: the blocks, each with the certificate
    its store holds (``[node id, signature]`` pairs; possibly short of a quorum for the
    newest blocks). The replica fetching them checks each certificate before it applies
    the block (``node.consensus_driver.pbft_catch_up``): no peer is trusted."""

    frm: str
    blocks: tuple[bytes, ...]
    certificates: tuple[tuple[tuple[str, bytes], ...], ...]


CONSENSUS_MESSAGES = (
    RequestVote,
    RequestVoteResponse,
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    TimeoutNow,
)

PBFT_MESSAGES = (Envelope,)
"""A PBFT replica's messages: each one a signed (or self-proving) body in an
``Envelope`` whose ``frm`` the transport checks like any other message's."""


def _shape_problem(msg: Any) -> str | None:
    return shape_problem(msg) if isinstance(msg, Envelope) else None


# Append only: a class's position is its tag on the wire.
WIRE = MessageCodec(
    [
        *CONSENSUS_MESSAGES,
        Entry,
        Snapshot,
        SnapshotMeta,
        ForwardTxs,
        HeaderSig,
        BlockRequest,
        BlockResponse,
        Envelope,
        PrePrepare,
        Prepare,
        Commit,
        Checkpoint,
        CheckpointCert,
        PreparedCert,
        ViewChange,
        NewView,
        PbftStatus,
        StateRequest,
        StateReply,
        CommitProof,
        CommitCert,
        StableState,
        CertifiedBlocks,
        EpochProof,
        EpochChanges,
    ],
    check=_shape_problem,
)
