"""The interface every consensus core shares (docs/architecture.md §4), after etcd's ``RawNode``.

A core is a sans-IO state machine. Its inputs are peer messages (``step``), clock ticks
(``tick``) and local requests (``propose`` and friends); its only output is a ``Ready``
that the driver executes in the order persist -> send -> apply -> advance. Keeping every
effect in ``Ready`` is what lets the simulator run the real core over a fake network and
disk, and crash it between any two effects.

Entries carry opaque payloads. An entry's ``data`` is the block bytes; its digest is
derived (``Entry.digest`` = SHA-256 of ``data``) rather than stored, so the two can never
disagree. A configuration change is an entry of kind ``EntryKind.CONF_CHANGE`` whose
``data`` is ``ConfChange.encode()``: it names the whole voter set after the change, so a
node that never saw the earlier configuration still learns the right one.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from typing import Protocol


class EntryKind(enum.IntEnum):
    """Stored as an int so a log store can persist it without knowing this enum."""

    NORMAL = 0
    CONF_CHANGE = 1
    #: Appended by each new leader (Raft §8); appliers skip it.
    NOOP = 2


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry. ``index`` travels with it so a store can truncate a conflicting
    suffix from the first entry's index without being told separately."""

    index: int
    term: int
    data: bytes
    kind: EntryKind = EntryKind.NORMAL

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.data).digest()


class ConfOp(enum.Enum):
    ADD = "add"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class ConfChange:
    """A single-server membership change (Raft thesis §4.1). ``voters`` is the full set
    after the change, sorted, so the entry is self-describing."""

    op: ConfOp
    node_id: str
    voters: tuple[str, ...]

    def encode(self) -> bytes:
        body = {"op": self.op.value, "node": self.node_id, "voters": list(self.voters)}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @staticmethod
    def decode(data: bytes) -> ConfChange:
        body = json.loads(data)
        return ConfChange(ConfOp(body["op"]), body["node"], tuple(body["voters"]))


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be durable before any message that depends on it is sent (Raft §5.1,
    Figure 2 "persistent state"). ``commit`` is kept too, so a restarted node can apply
    without waiting for a leader."""

    term: int = 0
    vote: str | None = None
    commit: int = 0


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Last index and term the snapshot covers, and the voters as of that index."""

    index: int
    term: int
    voters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Application state as of ``meta.index``; ``data`` is opaque to the core."""

    meta: SnapshotMeta
    data: bytes


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state worth reporting (status pages, client redirects); never persisted."""

    role: Role
    leader: str | None


@dataclass(frozen=True, slots=True)
class Status:
    node_id: str
    role: Role
    term: int
    leader: str | None
    commit_index: int
    applied_index: int
    last_index: int
    voters: tuple[str, ...]


# --- Messages. Every message names its sender, receiver and the sender's term. --------


@dataclass(frozen=True, slots=True)
class RequestVote:
    """Raft §5.2; with ``pre_vote`` the thesis §9.6 pre-vote, which asks "would you vote
    for me at ``term``?" without anyone changing term. ``transfer`` marks a campaign
    started by leader transfer (thesis §3.10), which voters honour even inside the
    leader lease."""

    frm: str
    to: str
    term: int
    last_log_index: int
    last_log_term: int
    pre_vote: bool = False
    transfer: bool = False


@dataclass(frozen=True, slots=True)
class RequestVoteResponse:
    frm: str
    to: str
    term: int
    granted: bool
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class AppendEntries:
    """Raft §5.3. An empty ``entries`` still carries ``leader_commit``."""

    frm: str
    to: str
    term: int
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    leader_commit: int


@dataclass(frozen=True, slots=True)
class AppendEntriesResponse:
    """On success ``index`` is the last index now known to match the leader. On reject
    ``index`` is the ``prev_log_index`` that failed, and ``hint_index``/``hint_term``
    point at where the follower's log may still agree (the thesis §5.3 optimisation of
    skipping a whole conflicting term per round trip). An ``InstallSnapshot`` is
    answered with a success at the snapshot's index."""

    frm: str
    to: str
    term: int
    success: bool
    index: int
    hint_index: int = 0
    hint_term: int = 0


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Leader liveness (Raft §5.2). ``commit`` is capped at what the receiver is known to
    hold, so a follower may commit it without a log consistency check (as in etcd)."""

    frm: str
    to: str
    term: int
    commit: int


@dataclass(frozen=True, slots=True)
class HeartbeatResponse:
    frm: str
    to: str
    term: int


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    """Raft §7: sent whole (no chunking), answered by an ``AppendEntriesResponse``."""

    frm: str
    to: str
    term: int
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class TimeoutNow:
    """Leader transfer (thesis §3.10): "start an election now", skipping pre-vote."""

    frm: str
    to: str
    term: int


Message = (
    RequestVote
    | RequestVoteResponse
    | AppendEntries
    | AppendEntriesResponse
    | Heartbeat
    | HeartbeatResponse
    | InstallSnapshot
    | TimeoutNow
)


@dataclass(frozen=True, slots=True)
class Ready:
    """Everything the core wants done, to be executed strictly in this order:

    1. **persist**: ``snapshot`` (if any), then ``entries``, then ``hard_state`` (if any),
       atomically and durably (fsync before returning). ``entries`` may start at or
       below the store's last index: the store truncates everything from
       ``entries[0].index`` onwards first (a conflicting suffix, Raft §5.3). A
       ``snapshot`` replaces the log prefix up to its index (Raft §7).
    2. **send**: ``messages``, each to ``msg.to``. They may depend on step 1 (a vote, an
       append acknowledgement), which is why they come after it.
    3. **apply**: restore the state machine from ``snapshot`` if any, then apply
       ``committed`` in order. They are committed cluster-wide, and persisted locally
       once step 1 is done.
    4. **advance**: ``core.advance(ready)``, so the core learns what is now durable and
       applied. Only one ``Ready`` may be outstanding at a time.

    ``soft_state`` is set when role or leader changed, for status and redirects.
    """

    hard_state: HardState | None
    entries: tuple[Entry, ...]
    snapshot: Snapshot | None
    messages: tuple[Message, ...]
    committed: tuple[Entry, ...]
    soft_state: SoftState | None


class ConsensusCore(Protocol):
    """What the driver and the node need from a core, Raft or PBFT."""

    @property
    def node_id(self) -> str: ...

    def step(self, msg: Message) -> None: ...

    def tick(self) -> None: ...

    def has_ready(self) -> bool: ...

    def ready(self) -> Ready: ...

    def advance(self, ready: Ready) -> None: ...

    def propose(self, data: bytes) -> bool: ...

    def compact(self, index: int, data: bytes) -> Snapshot: ...

    def status(self) -> Status: ...


class InvariantViolation(Exception):
    """A safety invariant failed inside the core. The node must stop rather than write
    or acknowledge anything further (docs/architecture.md §8)."""
