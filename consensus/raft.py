"""The Raft core: a sans-IO state machine after the Raft paper (Ongaro & Ousterhout,
2014, cited "§N") and Ongaro's thesis (2014, cited "thesis §N").

Everything it wants done leaves through ``ready()``; see ``consensus.types.Ready`` for
the order the driver must follow. Two rules carry the crash safety:

- term, vote and log reach ``Ready.hard_state``/``Ready.entries`` in the same ``Ready``
  as any message that depends on them, and the driver persists before it sends;
- the leader counts itself towards a commit quorum only for entries the driver has
  reported durable (``advance``), never for entries merely appended in memory.
"""

from __future__ import annotations

import random

from consensus.config import RaftConfig
from consensus.log import RaftLog
from consensus.progress import Progress, ProgressState
from consensus.storage import RaftStorage
from consensus.types import (
    AppendEntries,
    AppendEntriesResponse,
    ConfChange,
    ConfOp,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    Ready,
    RequestVote,
    RequestVoteResponse,
    Role,
    Snapshot,
    SoftState,
    Status,
    TimeoutNow,
)

_LEADER_MESSAGES = (AppendEntries, Heartbeat, InstallSnapshot, TimeoutNow)


class Raft:
    """One Raft node. Construct it from its storage (a fresh node or a restart are the
    same thing); ``applied`` is the index the state machine already holds if the
    application persists it, otherwise entries after the snapshot are re-delivered."""

    def __init__(
        self,
        node_id: str,
        storage: RaftStorage,
        rng: random.Random,
        config: RaftConfig | None = None,
        applied: int | None = None,
    ) -> None:
        self._id = node_id
        self.cfg = config or RaftConfig()
        self._rng = rng
        hs = storage.hard_state()
        self.log = RaftLog(storage.snapshot(), storage.entries(), hs.commit)
        if applied is not None:
            self.log.applied = max(self.log.applied, min(applied, self.log.commit))
        self.term = hs.term
        self.vote = hs.vote
        self.role = Role.FOLLOWER
        self.leader: str | None = None
        self._prev_hard_state = hs
        self._prev_soft_state = SoftState(self.role, None)
        self._msgs: list[Message] = []
        self._pending_snapshot: Snapshot | None = None
        self._progress: dict[str, Progress] = {}
        self._votes: dict[str, bool] = {}
        self._voters: tuple[str, ...] = self.log.voters
        self._election_elapsed_ticks = 0
        self._heartbeat_elapsed_ticks = 0
        self._randomized_timeout_ticks = self._random_timeout()
        self._transferee: str | None = None
        self._transfer_campaign = False
        self._broadcast_pending = False
        #: Follower: heartbeats in a row whose commit lies past our log with no append
        #: in between (``_on_heartbeat``).
        self._behind_heartbeats = 0

    # --- the core interface ----------------------------------------------------------

    @property
    def node_id(self) -> str:
        return self._id

    def status(self) -> Status:
        return Status(
            node_id=self._id,
            role=self.role,
            term=self.term,
            leader=self.leader,
            commit_index=self.log.commit,
            applied_index=self.log.applied,
            last_index=self.log.last_index,
            voters=self._voters,
        )

    def tick(self) -> None:
        if self.role is Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def has_ready(self) -> bool:
        """Proposals are only batched into appends here and in ``ready``: everything
        proposed between two ``Ready``s leaves as one AppendEntries per follower."""
        self._flush_broadcast()
        log = self.log
        return bool(
            self._msgs
            or log.stable < log.last_index
            or log.applied < log.commit
            or self._pending_snapshot is not None
            or self._hard_state() != self._prev_hard_state
            or self._soft_state() != self._prev_soft_state
        )

    def ready(self) -> Ready:
        self._flush_broadcast()
        hs = self._hard_state()
        ss = self._soft_state()
        rd = Ready(
            hard_state=hs if hs != self._prev_hard_state else None,
            entries=self.log.unstable(),
            snapshot=self._pending_snapshot,
            messages=tuple(self._msgs),
            committed=self.log.to_apply(),
            soft_state=ss if ss != self._prev_soft_state else None,
        )
        self._msgs = []
        self._prev_soft_state = ss
        return rd

    def advance(self, rd: Ready) -> None:
        log = self.log
        if rd.hard_state is not None:
            self._prev_hard_state = rd.hard_state
        if rd.snapshot is not None and rd.snapshot is self._pending_snapshot:
            self._pending_snapshot = None
        if rd.entries:
            last = rd.entries[-1]
            log.stable_to(last.index, last.term)
        if rd.committed:
            log.applied = max(log.applied, rd.committed[-1].index)
        if self.role is Role.LEADER and self._maybe_commit():
            self._broadcast_pending = True

    def step(self, msg: Message) -> None:
        if msg.term > self.term:
            if isinstance(msg, RequestVote) and not msg.transfer and self._in_lease():
                return  # Thesis §4.2.3: a live leader exists; do not be disrupted.
            if isinstance(msg, RequestVote) and msg.pre_vote:
                self._on_request_vote(msg)
                return
            if isinstance(msg, RequestVoteResponse) and msg.pre_vote and msg.granted:
                pass  # Granted pre-votes carry the proposed term; nobody changes term.
            elif isinstance(msg, _LEADER_MESSAGES):
                self._become_follower(msg.term, msg.frm)
            else:
                # Raft Figure 2: only a leader's message or a granted vote resets the
                # election timer. Seeing a higher term does not, or a candidate whose
                # log cannot win would keep the one that can from ever timing out.
                elapsed = self._election_elapsed_ticks
                timeout = self._randomized_timeout_ticks
                self._become_follower(msg.term, None)
                self._election_elapsed_ticks = elapsed
                self._randomized_timeout_ticks = timeout
        elif msg.term < self.term:
            self._on_stale_term(msg)
            return
        self._dispatch(msg)

    # --- local requests -------------------------------------------------------------

    def propose(self, data: bytes) -> bool:
        """Append ``data`` if we lead, no transfer is under way and the uncommitted tail
        is below its bound; False otherwise (the node then forwards the write to
        ``status().leader``, or retries later)."""
        if not data or len(data) > self.cfg.max_entry_bytes:
            raise ValueError(f"proposal of {len(data)} bytes (1..{self.cfg.max_entry_bytes})")
        if self.role is not Role.LEADER or self._transferee is not None:
            return False
        if self.log.last_index - self.log.commit >= self.cfg.max_uncommitted_entries:
            return False
        self._append(data, EntryKind.NORMAL)
        return True

    def propose_conf_change(self, op: ConfOp, node_id: str) -> bool:
        """Single-server change (thesis §4.1): one at a time, effective once appended.
        Refused until this leader has committed an entry of its own term, the fix for
        the single-server change bug Ongaro described on raft-dev in 2015."""
        if self.role is not Role.LEADER or self._transferee is not None:
            return False
        if self.log.last_conf_index > self.log.commit:
            return False
        if self.log.term(self.log.commit) != self.term:
            return False
        voters = set(self._voters)
        if op is ConfOp.ADD:
            voters.add(node_id)
        else:
            voters.discard(node_id)
        new = tuple(sorted(voters))
        if new == self._voters or not new:
            return False
        self._append(ConfChange(op, node_id, new).encode(), EntryKind.CONF_CHANGE)
        return True

    def transfer_leadership(self, to: str) -> bool:
        """Thesis §3.10: bring ``to`` up to date, then tell it to campaign at once.
        Proposals are refused meanwhile; the attempt lapses after an election timeout."""
        if self.role is not Role.LEADER or to == self._id or to not in self._voters:
            return False
        if self._transferee == to:
            return True
        self._transferee = to
        self._election_elapsed_ticks = 0
        if self._progress[to].match == self.log.last_index:
            self._send(TimeoutNow(self._id, to, self.term))
        else:
            self._send_append(to, allow_empty=True)
        return True

    def compact(self, index: int, data: bytes) -> Snapshot:
        """The application's state as of ``index`` (<= applied) is ``data``: drop the log
        up to there. The caller persists the returned snapshot (``storage.compact``)."""
        return self.log.compact(index, data)

    # --- state snapshots --------------------------------------------------------------

    def _hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.commit)

    def _soft_state(self) -> SoftState:
        return SoftState(self.role, self.leader)

    # --- roles ----------------------------------------------------------------------

    def _random_timeout(self) -> int:
        t = self.cfg.election_timeout_ticks
        return t + self._rng.randrange(t)

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = None
        self.leader = None
        self._election_elapsed_ticks = 0
        self._heartbeat_elapsed_ticks = 0
        self._randomized_timeout_ticks = self._random_timeout()
        self._votes = {}
        self._progress = {}
        self._transferee = None
        self._broadcast_pending = False

    def _become_follower(self, term: int, leader: str | None) -> None:
        self._reset(term)
        self.role = Role.FOLLOWER
        self.leader = leader

    def _become_leader(self) -> None:
        self.role = Role.LEADER
        self.leader = self._id
        self._transferee = None
        self._votes = {}
        last = self.log.last_index
        self._progress = {v: Progress(next=last + 1) for v in self._voters if v != self._id}
        # Thesis §6.4 / Raft §8: a no-op of the new term lets earlier entries commit.
        self._append(b"", EntryKind.NOOP)

    def _promotable(self) -> bool:
        return self._id in self._voters

    def _in_lease(self) -> bool:
        """Thesis §4.2.3: within an election timeout of hearing from a leader, ignore
        RequestVote. Unconditional (etcd ties it to check-quorum): without it a removed
        server that never learned of its removal disrupts the cluster forever."""
        return (
            self.leader is not None
            and self._election_elapsed_ticks < self.cfg.election_timeout_ticks
        )

    def _campaign(self, pre_vote: bool, transfer: bool = False) -> None:
        if pre_vote:
            self._reset(self.term)
            self.role = Role.PRE_CANDIDATE  # Asks about term+1 without adopting it (§9.6).
        else:
            self._reset(self.term + 1)
            self.role = Role.CANDIDATE
            self.vote = self._id
        self._votes = {self._id: True}
        self._transfer_campaign = transfer
        if self._poll() == 1:
            self._on_won(pre_vote)
            return
        self._request_votes(pre_vote, transfer)

    def _request_votes(self, pre_vote: bool, transfer: bool) -> None:
        """Ask every voter that has not answered yet. Called again on heartbeat ticks:
        Raft §5.1 has servers retry RPCs that get no response."""
        term = self.term + 1 if pre_vote else self.term
        for v in self._voters:
            if v != self._id and v not in self._votes:
                self._send(
                    RequestVote(
                        self._id,
                        v,
                        term,
                        self.log.last_index,
                        self.log.last_term,
                        pre_vote=pre_vote,
                        transfer=transfer,
                    )
                )

    def _poll(self) -> int:
        """1 if a quorum granted, -1 if a quorum refused, 0 while undecided."""
        granted = sum(1 for v in self._voters if self._votes.get(v) is True)
        refused = sum(1 for v in self._voters if self._votes.get(v) is False)
        quorum = len(self._voters) // 2 + 1
        if granted >= quorum:
            return 1
        if refused >= quorum:
            return -1
        return 0

    def _on_won(self, pre_vote: bool) -> None:
        if pre_vote:
            self._campaign(pre_vote=False)
        else:
            self._become_leader()

    # --- ticks ----------------------------------------------------------------------

    def _tick_election(self) -> None:
        self._election_elapsed_ticks += 1
        if (
            self.role in (Role.PRE_CANDIDATE, Role.CANDIDATE)
            and self._election_elapsed_ticks % self.cfg.heartbeat_ticks == 0
        ):
            self._request_votes(self.role is Role.PRE_CANDIDATE, self._transfer_campaign)
        # A non-voter keeps counting, so its leader lease lapses and it answers votes.
        if self._promotable() and self._election_elapsed_ticks >= self._randomized_timeout_ticks:
            self._election_elapsed_ticks = 0
            self._campaign(pre_vote=self.cfg.pre_vote)

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed_ticks += 1
        self._election_elapsed_ticks += 1
        if self._election_elapsed_ticks >= self.cfg.election_timeout_ticks:
            self._election_elapsed_ticks = 0
            if self.cfg.check_quorum and not self._quorum_active():
                # Thesis §6.2: a leader cut off from a quorum stops acting as one.
                self._become_follower(self.term, None)
                return
            for p in self._progress.values():
                p.recent_active = False
            self._transferee = None  # Thesis §3.10: abort a transfer that stalled.
        for to in sorted(self._progress):
            pr = self._progress[to]
            if pr.state is ProgressState.SNAPSHOT:
                pr.snapshot_elapsed_ticks += 1
                if pr.snapshot_elapsed_ticks >= self.cfg.snapshot_retry_ticks:
                    pr.become_probe()
        if self._heartbeat_elapsed_ticks >= self.cfg.heartbeat_ticks:
            self._heartbeat_elapsed_ticks = 0
            for to in sorted(self._progress):
                pr = self._progress[to]
                self._send(Heartbeat(self._id, to, self.term, min(pr.match, self.log.commit)))

    def _quorum_active(self) -> bool:
        active = sum(
            1
            for v in self._voters
            if v == self._id or (v in self._progress and self._progress[v].recent_active)
        )
        return active >= len(self._voters) // 2 + 1

    # --- replication (leader) --------------------------------------------------------

    def _append(self, data: bytes, kind: EntryKind) -> None:
        self.log.append([Entry(self.log.last_index + 1, self.term, data, kind)])
        if kind is EntryKind.CONF_CHANGE:
            self._sync_config()
        self._broadcast_pending = True

    def _flush_broadcast(self) -> None:
        if self._broadcast_pending:
            self._broadcast_pending = False
            if self.role is Role.LEADER:
                for to in sorted(self._progress):
                    if self._send_append(to, allow_empty=True):
                        while self._send_append(to, allow_empty=False):
                            pass  # Fill the pipeline (thesis §10.2.2).

    def _send_append(self, to: str, allow_empty: bool) -> bool:
        pr = self._progress[to]
        if pr.paused(self.cfg.max_inflight_msgs):
            return False
        log = self.log
        prev = pr.next - 1
        prev_term = log.term(prev)
        if prev_term is None:
            # Raft §7: what the follower needs next was compacted away.
            snap = log.snapshot
            self._send(InstallSnapshot(self._id, to, self.term, snap))
            pr.become_snapshot(snap.meta.index)
            return False
        entries: tuple[Entry, ...] = ()
        if pr.next <= log.last_index:
            entries = log.batch(pr.next, self.cfg.max_batch_entries, self.cfg.max_batch_bytes)
        if not entries and not allow_empty:
            return False
        self._send(AppendEntries(self._id, to, self.term, prev, prev_term, entries, log.commit))
        if pr.state is ProgressState.REPLICATE:
            if entries:
                pr.next = entries[-1].index + 1
                pr.inflight.append(pr.next - 1)
        else:
            pr.probe_sent = True
        return True

    def _commit_candidate(self) -> int:
        """The highest index a quorum of voters holds durably (the leader's own share
        is what the driver has persisted)."""
        matches = sorted(
            (self.log.stable if v == self._id else self._progress[v].match)
            for v in self._voters
            if v == self._id or v in self._progress
        )
        if len(matches) < len(self._voters):
            matches = [0] * (len(self._voters) - len(matches)) + matches
        return matches[(len(matches) - 1) // 2]

    def _maybe_commit(self) -> bool:
        if not self._voters:
            return False
        n = self._commit_candidate()
        # Raft §5.4.2: only an entry of the current term commits by counting replicas.
        if n <= self.log.commit or self.log.term(n) != self.term:
            return False
        self.log.commit_to(n)
        if self._id not in self._voters and self.log.last_conf_index <= self.log.commit:
            # Thesis §4.2.2: a leader removed from the configuration steps down once
            # the change is committed.
            self._become_follower(self.term, None)
        return True

    def _sync_config(self) -> None:
        """Adopt the latest configuration in the log (thesis §4.1)."""
        voters = self.log.voters
        if voters == self._voters:
            return
        self._voters = voters
        if self.role is Role.LEADER:
            last = self.log.last_index
            for v in voters:
                if v != self._id and v not in self._progress:
                    self._progress[v] = Progress(next=last + 1)
            for v in [p for p in self._progress if p not in voters]:
                del self._progress[v]
            if self._transferee is not None and self._transferee not in voters:
                self._transferee = None

    # --- message handlers -----------------------------------------------------------

    def _send(self, msg: Message) -> None:
        self._msgs.append(msg)

    def _on_stale_term(self, msg: Message) -> None:
        """Answer a deposed leader so it learns the new term; with pre-vote and
        check-quorum it might otherwise never hear it (etcd issue 5451's deadlock).
        Answer a candidate of an older term too (Raft Figure 2: "reply false if term <
        currentTerm", with our term): a candidate whose log can win must learn the term
        to campaign above it. Without the answer, a candidate that no voter of a higher
        term ever sends to (they hold configurations without it) campaigns below them
        for ever while they cannot win without it (simulator seed 677849478: n3 with the
        longest log among the voters at term 39, n1 at 50 asking only n2, n2 removed by
        its own log's configuration)."""
        if isinstance(msg, AppendEntries | Heartbeat):
            self._send(AppendEntriesResponse(self._id, msg.frm, self.term, False, 0))
        elif isinstance(msg, RequestVote):
            self._send(
                RequestVoteResponse(self._id, msg.frm, self.term, False, pre_vote=msg.pre_vote)
            )

    def _dispatch(self, msg: Message) -> None:
        if isinstance(msg, AppendEntries):
            self._on_append_entries(msg)
        elif isinstance(msg, AppendEntriesResponse):
            self._on_append_response(msg)
        elif isinstance(msg, Heartbeat):
            self._on_heartbeat(msg)
        elif isinstance(msg, HeartbeatResponse):
            self._on_heartbeat_response(msg)
        elif isinstance(msg, RequestVote):
            self._on_request_vote(msg)
        elif isinstance(msg, RequestVoteResponse):
            self._on_vote_response(msg)
        elif isinstance(msg, InstallSnapshot):
            self._on_install_snapshot(msg)
        elif isinstance(msg, TimeoutNow):
            self._on_timeout_now(msg)
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"unknown message {msg!r}")

    def _follow(self, leader: str) -> bool:
        """A message from this term's leader: follow it. False if we lead this term
        ourselves, which election safety (Raft §5.2) says cannot happen."""
        if self.role is Role.LEADER:
            return False
        if self.role is not Role.FOLLOWER:
            self._become_follower(self.term, leader)
        self.leader = leader
        self._election_elapsed_ticks = 0
        return True

    def _on_append_entries(self, m: AppendEntries) -> None:
        if m.entries and (
            m.entries[0].index != m.prev_log_index + 1
            or m.entries[-1].index != m.prev_log_index + len(m.entries)
            or m.entries[-1].term > m.term
        ):
            return  # Malformed: no correct leader sends it; never let it touch the log.
        if not self._follow(m.frm):
            return
        self._behind_heartbeats = 0
        log = self.log
        if m.prev_log_index < log.commit:
            # Everything up to our commit already matches any leader (§5.4 leader
            # completeness); say so instead of re-checking compacted history.
            self._send(AppendEntriesResponse(self._id, m.frm, self.term, True, log.commit))
            return
        if log.matches(m.prev_log_index, m.prev_log_term):
            # Raft §5.3: consistency check passed; merge, then commit what we now hold.
            if m.entries:
                cut = log.merge(m.entries)
                if cut is not None:
                    self._retract_acks_from(cut)
                self._sync_config()
            last_new = m.prev_log_index + len(m.entries)
            log.commit_to(min(m.leader_commit, last_new))
            self._send(AppendEntriesResponse(self._id, m.frm, self.term, True, last_new))
            return
        hint_index, hint_term = log.conflict_hint(m.prev_log_index, m.prev_log_term)
        self._send(
            AppendEntriesResponse(
                self._id, m.frm, self.term, False, m.prev_log_index, hint_index, hint_term
            )
        )

    def _on_append_response(self, m: AppendEntriesResponse) -> None:
        if self.role is not Role.LEADER or m.frm not in self._progress:
            return
        pr = self._progress[m.frm]
        pr.recent_active = True
        if not m.success:
            probe = m.hint_index
            if m.hint_term > 0:
                probe, _ = self.log.conflict_hint(m.hint_index, m.hint_term)
            if pr.maybe_decrease(m.index, probe):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self._send_append(m.frm, allow_empty=True)
            return
        if not pr.update(m.index):
            return
        caught_up = pr.state is ProgressState.SNAPSHOT and pr.match >= pr.pending_snapshot
        if pr.state is ProgressState.PROBE or caught_up:
            pr.become_replicate()
        if self._maybe_commit():
            self._broadcast_pending = True
        if self.role is not Role.LEADER:
            return
        while self._send_append(m.frm, allow_empty=False):
            pass  # Fill the pipeline (thesis §10.2.1).
        if self._transferee == m.frm and pr.match == self.log.last_index:
            self._send(TimeoutNow(self._id, m.frm, self.term))

    def _on_heartbeat(self, m: Heartbeat) -> None:
        if not self._follow(m.frm):
            return
        log = self.log
        log.commit_to(min(m.commit, log.last_index))
        self._send(HeartbeatResponse(self._id, m.frm, self.term))
        if m.commit <= log.last_index:
            self._behind_heartbeats = 0
            return
        # The leader committed past our log. Normally appends are on their way; if two
        # heartbeats come and no append between them, the leader believes we hold what
        # we do not (a log lost to a restore): tell it where our log ends, as a
        # rejection of the append at its commit (``Progress.maybe_decrease``).
        self._behind_heartbeats += 1
        if self._behind_heartbeats >= 2:
            self._behind_heartbeats = 0
            last = log.last_index
            self._send(
                AppendEntriesResponse(
                    self._id, m.frm, self.term, False, m.commit, last, log.term(last) or 0
                )
            )

    def _on_heartbeat_response(self, m: HeartbeatResponse) -> None:
        if self.role is not Role.LEADER or m.frm not in self._progress:
            return
        pr = self._progress[m.frm]
        pr.recent_active = True
        last = self.log.last_index
        if pr.state is ProgressState.PROBE:
            pr.probe_sent = False
            self._send_append(m.frm, allow_empty=True)
        elif pr.state is ProgressState.REPLICATE and pr.match < last:
            # Appends were lost if the follower has not moved for two heartbeats.
            if pr.match == pr.match_at_heartbeat:
                pr.stalled_heartbeats += 1
            else:
                pr.match_at_heartbeat = pr.match
                pr.stalled_heartbeats = 0
            if pr.stalled_heartbeats >= 2:
                pr.become_probe()
                self._send_append(m.frm, allow_empty=True)

    def _on_request_vote(self, m: RequestVote) -> None:
        if m.pre_vote:
            # Thesis §9.6: would we vote for this term? Only if it is newer and the log
            # is up to date; nothing is recorded.
            can_vote = m.term > self.term
        else:
            can_vote = self.vote == m.frm or (self.vote is None and self.leader is None)
        if can_vote and self.log.is_up_to_date(m.last_log_index, m.last_log_term):
            if not m.pre_vote:
                # Raft §5.2: one vote per term, persisted before the reply is sent.
                self.vote = m.frm
                self._election_elapsed_ticks = 0
            term = m.term if m.pre_vote else self.term
            self._send(RequestVoteResponse(self._id, m.frm, term, True, m.pre_vote))
        else:
            self._send(RequestVoteResponse(self._id, m.frm, self.term, False, m.pre_vote))

    def _on_vote_response(self, m: RequestVoteResponse) -> None:
        if m.pre_vote != (self.role is Role.PRE_CANDIDATE):
            return
        if self.role not in (Role.PRE_CANDIDATE, Role.CANDIDATE):
            return
        if m.pre_vote and m.granted and m.term != self.term + 1:
            return  # A grant from an earlier pre-campaign, for another term.
        self._votes.setdefault(m.frm, m.granted)
        result = self._poll()
        if result == 1:
            self._on_won(m.pre_vote)
        elif result == -1:
            self._become_follower(self.term, None)

    def _on_install_snapshot(self, m: InstallSnapshot) -> None:
        if not self._follow(m.frm):
            return
        meta = m.snapshot.meta
        log = self.log
        if meta.index <= log.commit:
            self._send(AppendEntriesResponse(self._id, m.frm, self.term, True, log.commit))
            return
        if log.matches(meta.index, meta.term):
            log.commit_to(meta.index)  # We hold the entries; fast-forward instead.
        else:
            if log.restore(m.snapshot):
                self._retract_acks_from(meta.index + 1)
            self._pending_snapshot = m.snapshot
            self._sync_config()
        self._send(AppendEntriesResponse(self._id, m.frm, self.term, True, meta.index))

    def _retract_acks_from(self, index: int) -> None:
        """Entries from ``index`` on were just replaced before reaching the disk, so an
        acknowledgement of them still waiting in ``_msgs`` (an earlier message of this
        batch, from an older leader) would promise what is no longer true (Raft §5.3:
        acknowledge only what is persisted). Found by seed 3203."""
        self._msgs = [
            m
            for m in self._msgs
            if not (isinstance(m, AppendEntriesResponse) and m.success and m.index >= index)
        ]

    def _on_timeout_now(self, m: TimeoutNow) -> None:
        if self._promotable() and self._follow(m.frm):
            self._campaign(pre_vote=False, transfer=True)
