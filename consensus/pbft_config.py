"""PBFT tuning knobs, in ticks and counts, and the planted bugs the simulator must catch.

``PbftBugs`` exists so the simulator's tests can show that its checker fails when the
core is wrong (issue 14, item 4). Every flag is False by default and nothing outside
``tests/`` and ``node/sim`` may set one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PbftBugs:
    #: Accept a commit certificate with 2f commits instead of 2f+1 (CL §4.2).
    commit_quorum_2f: bool = False
    #: Sign and verify statements without their view number (CL §4.2, §4.4).
    unsigned_view: bool = False
    #: Build and check O from nothing but null requests: prepared certificates in the
    #: view-changes are ignored (CL §4.4).
    ignore_prepared_certs: bool = False
    #: Deliver every entry a state transfer fetched, even those the protocol delivered
    #: while the transfer was under way (CL §5.3).
    double_delivery: bool = False
    #: Restart with empty state: forget the persisted votes and view (CL §4.6 assumes
    #: they survive; BFT-PR §4 recovers them).
    forget_votes: bool = False


@dataclass(frozen=True, slots=True)
class PbftConfig:
    """CL §4.3: a checkpoint every ``checkpoint_interval`` sequence numbers (K), and the
    high watermark ``log_window`` (L) above the last stable checkpoint."""

    checkpoint_interval: int = 8
    log_window: int = 16
    #: A backup waiting this long for a request to execute starts a view change; each
    #: further view change without a new view doubles it (CL §4.5.2).
    view_change_timeout_ticks: int = 20
    #: Status hints and retransmissions (CL §5.2).
    status_interval_ticks: int = 4
    #: A state transfer with no answer asks the next replica after this long.
    state_retry_ticks: int = 6
    #: Requests a replica holds before ordering them (back-pressure: propose says no).
    max_pending_requests: int = 1024
    max_entry_bytes: int = 16 << 20
    #: Entries sent per CommitProof or StateReply.
    catch_up_batch: int = 32
    #: Checkpoints wait for the application: it calls ``Pbft.app_checkpoint`` with its
    #: state digest once it applied the checkpoint's entry, and the checkpoint signs
    #: both (``checkpoint_digest``); a replica whose missing entries every peer dropped
    #: then installs a certified application state (``StableState``, CL §5.3). Off:
    #: checkpoints sign the history alone, as each entry executes (the simulator).
    app_checkpoints: bool = False
    bugs: PbftBugs = field(default_factory=PbftBugs)

    def __post_init__(self) -> None:
        if self.checkpoint_interval < 1 or self.log_window < self.checkpoint_interval:
            raise ValueError("need 1 <= checkpoint_interval <= log_window")
        if self.view_change_timeout_ticks < 2 or self.status_interval_ticks < 1:
            raise ValueError("timeouts must be positive")
