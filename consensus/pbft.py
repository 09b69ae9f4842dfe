"""The PBFT core: a sans-IO state machine after Castro & Liskov, "Practical Byzantine
Fault Tolerance and Proactive Recovery", TOCS 20(4), 2002 (cited "CL §N"; the OSDI '99
paper has the same protocol).

n = 3f+1 replicas order opaque request batches (``propose``); every message is signed
(``pbft_signing``) over its view and sequence number. Normal case (CL §4.2): the primary
pre-prepares (v, n, d), backups prepare, a replica that holds a pre-prepare and 2f
matching prepares is *prepared* and commits, and one with 2f+1 matching commits has the
entry committed and executes it once everything before it has executed. Several
sequence numbers are in flight inside the watermarks (h, h+L] (CL §4.3); every K
executed entries a replica signs a checkpoint, and 2f+1 matching ones make it stable:
h moves up and the log below it is dropped. A replica that finds a stable checkpoint
above what it executed fetches the entries from a peer and checks them against the
checkpoint's digest (CL §5.3). With ``PbftConfig.app_checkpoints`` a checkpoint also
signs the application's digest of its state, given once the application applied the
entry (``app_checkpoint``), so a replica whose missing entries every peer dropped
installs that certified state instead (``StableState``, a snapshot in the Ready) and
goes on from the checkpoint. A backup whose requests do not execute in time starts a
view change (CL §4.4, §4.5.2); the new primary proves its pre-prepares with 2f+1
view-change messages, and backups recompute them.

Everything leaves through ``ready()`` (a ``PbftReady``): the votes a message depends on
are records in the same Ready as the message, so the driver persists them before it
sends it, and a restarted replica never votes twice for one slot (CL §4.6); one whose
store was lost (``lost_store``) and that finds the others past a stable checkpoint
abstains up to that checkpoint + L, in case it voted there before (BFT-PR §4).

Membership follows the application (``follow_membership``; docs/architecture.md §9).
The driver reports each executed entry (``note_executed``), with the new replica set
when the entry changed it. A change executed at sequence number s orders from c+1,
where c is the first checkpoint (a multiple of K) with c >= s + L: every sequence
number inside any correct replica's window before it executed s is at most s-1+L <= c,
so nothing above c was ever assigned, prepared or committed under the old set. Each
*epoch* (the sequence numbers one set orders) is a CL configuration of its own:

- The window never crosses an epoch's end: a replica whose stable checkpoint is below
  c takes no sequence number above c (``window_top``), and nothing above what it can
  know (a change it has not executed yet starts after ``note_executed``'s seq + L + 1).
  So every vote a replica counts is for a sequence number of the epoch of its stable
  checkpoint + 1, checked and counted with that epoch's set (``members``): its primary
  is view mod n of that set, its quorum n - f of that set.
- Checkpoint c is signed by the set that ordered up to c; once stable it moves the
  replica into the next epoch: an added replica starts voting, a removed one stops
  (it keeps executing what others commit if it still hears them, but never signs).
- A view change is judged by the set of the epoch after its checkpoint (CL §4.4 with
  that set): a VIEW-CHANGE whose stable checkpoint is in another epoch than ours is
  not counted (one in a later epoch first moves us there, its checkpoint being a valid
  stable-checkpoint proof, CL §4.3). Safety (CL §4.4's argument, per epoch): a request
  committed at seq t > c was prepared by 2f+1 of the new set, all with stable
  checkpoints >= c; any 2f+1 view changes of the new set share a correct replica with
  them, whose VIEW-CHANGE carries the prepared certificate (or a checkpoint above t),
  so O keeps it. A view change among the old set (stable checkpoints < c) can carry
  prepared certificates only for t <= c (nothing above c was prepared by a correct
  old-set replica), so its O reaches no further than c, where CL's argument within the
  old set holds; the two sets never decide the same sequence number.
- Epochs are certified facts. An epoch's digest (``epoch_digest``) covers its start,
  its set with the public keys (``keys``) and the digest of the epoch before, so the
  digests chain back to the first set. A following replica's checkpoint c signs the
  state digest together with the digest of the epoch in force at c+1
  (``epoch_checkpoint_digest``): that set is fixed by the entries up to c - L, so
  correct replicas sign it alike, and a checkpoint is signed only once the driver
  noted its entry (``note_executed``, or ``app_checkpoint`` after it). The stable
  checkpoint at an epoch's boundary, with the new set and the state digest, is thus
  the old set's 2f+1 certificate of the new epoch: an ``EpochProof``, the analogue of
  a receipt's ``validator_sets`` step. Replicas keep each proof (a record, never
  collected; read back and linked at a restart) and send those from what a peer
  executed (or its stable checkpoint, if lower) - L - K on (``EpochChanges``) with
  their answer to its status, and with a state they offer. A replica checks a proof link by link from an epoch it knows
  (``Membership.epoch_proof_ok``: ``prev`` is that epoch's digest, the certificate a
  quorum of its set at the checkpoint just before the new start, signing that
  epoch), and takes it only after its last epoch, or in place of a last epoch that a
  later change in its bucket could still replace: never against what it executed
  (a start within ``known_top``), nor as another successor of an epoch whose
  successor it knows (an old set's replayed or forked proof). Then it judges the
  later epoch's checkpoints, view changes, new views and offered states by the
  right set: a replica behind across a change of the set's size catches up.
- A replica that installs a certified state at c (``StableState``) skipped the
  entries up to c: the checkpoint certifies its epochs up to the one at c+1, but a
  change in the last L + K entries skipped starts an epoch it does not know. Until
  a proof of it comes, or a stable checkpoint it agrees with certifies its epochs up
  to c + L + K (``_certain``), it signs no checkpoint and its window stops at what is
  certain; a proof may then put the epoch it missed before the ones it noted since.
- Safety rests, as for receipts, on each set having at most f faulty replicas also
  after it stops ordering: a quorum of a past set that colludes could certify another
  successor to a replica that knows no later epoch (a long-range attack).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from consensus.pbft_certs import Membership
from consensus.pbft_config import PbftConfig
from consensus.pbft_messages import (
    GENESIS_EPOCH_PREV,
    NULL_DIGEST,
    Body,
    Checkpoint,
    CheckpointCert,
    Commit,
    CommitCert,
    CommitProof,
    Envelope,
    EpochChanges,
    EpochProof,
    Kind,
    NewView,
    Prepare,
    PreparedCert,
    PrePrepare,
    Signed,
    StableState,
    StateReply,
    StateRequest,
    Status,
    ViewChange,
    chain_digest,
    checkpoint_digest,
    epoch_checkpoint_digest,
    epoch_digest,
    payload_digest,
    statement_bytes,
)
from consensus.pbft_signing import Ed25519Verifier, Signer, Verifier
from consensus.pbft_storage import (
    Decision,
    PbftHardState,
    PbftReady,
    PbftRecord,
    PbftStorage,
)
from consensus.pbft_viewchange import plan_new_view
from consensus.types import (
    Entry,
    EntryKind,
    InvariantViolation,
    Role,
    Snapshot,
    SnapshotMeta,
    SoftState,
)
from consensus.types import Status as CoreStatus


@dataclass(slots=True)
class _Instance:
    """One (view, seq) slot of the message log (CL §4.2)."""

    pre_prepare: PrePrepare | None = None
    prepares: dict[str, Prepare] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    prepared: bool = False
    committed: bool = False


class Pbft:
    """One replica. ``applied`` is how far the application already holds the committed
    entries (the rest up to what was executed is delivered again from storage)."""

    def __init__(
        self,
        node_id: str,
        replicas: Sequence[str],
        storage: PbftStorage,
        signer: Signer,
        verifier: Verifier,
        config: PbftConfig | None = None,
        applied: int = 0,
        *,
        follow_membership: bool = False,
        keys: Sequence[bytes] | None = None,
    ) -> None:
        self._id = node_id
        self.cfg = config or PbftConfig()
        bugs = self.cfg.bugs
        first = Membership(
            replicas, verifier, self.cfg.log_window, cover_view=not bugs.unsigned_view
        )
        if node_id not in first.replicas and not follow_membership:
            raise ValueError(f"{node_id} is not a replica")
        self.members = first
        """The set of this replica's epoch (the one in force at stable + 1)."""
        self._follow = follow_membership
        #: (first sequence number, set) of each epoch known, in order.
        self._epochs: list[tuple[int, Membership]] = [(1, first)]
        #: Each epoch's public keys (in its replicas' order; empty when the driver gave
        #: none) and ``epoch_digest``, chained from the first (module doc).
        self._epoch_keys: list[tuple[bytes, ...]] = [_sorted_keys(replicas, keys)]
        self._epoch_digests: list[bytes] = []
        self._rechain()
        #: The proof of each epoch after the first that this replica holds, by start:
        #: served to replicas behind it (``EpochChanges``) and persisted.
        self._proofs: dict[int, EpochProof] = {}
        #: Proofs read back at a restart, linked once the epochs before them are back.
        self._stored_proofs: list[EpochProof] = []
        #: The state digest (``checkpoint_digest``) of each own checkpoint above stable.
        self._bases: dict[int, bytes] = {}
        #: After installing a certified state at c (which certifies the epochs up to
        #: the one at c + 1), changes in the entries skipped may start epochs up to
        #: ``_blind_end`` = c + L + K that this replica learns only by proof, or by a
        #: stable checkpoint whose epoch it finds it signs too: it is sure of the sets
        #: up to ``_certain`` (module doc).
        self._blind_end = 0
        self._certain = 0
        #: The last entry whose membership effects the driver reported (following):
        #: after a restart, the entries above ``applied`` are delivered (and noted) again.
        self._noted = applied
        self._signer = signer
        self._storage = storage
        hs = PbftHardState() if bugs.forget_votes else storage.hard_state()
        self.view = hs.view
        self.active = hs.view_change is None
        self._vc_msg = hs.view_change
        self.stable = hs.stable
        self.executed = hs.executed
        self.history = hs.history
        self._prev_hard_state = hs
        self._instances: dict[tuple[int, int], _Instance] = {}
        self._prepared: dict[int, PreparedCert] = {}
        self._committed: dict[int, CommitCert] = {}
        self._checkpoints: dict[int, dict[str, Checkpoint]] = {}
        self._own_checkpoints: dict[int, bytes] = {}
        self._view_changes: dict[int, dict[str, ViewChange]] = {}
        self._new_view: NewView | None = None
        self._requests: OrderedDict[bytes, bytes] = OrderedDict()
        self._recent: OrderedDict[bytes, None] = OrderedDict()
        self._assigned: set[bytes] = set()
        self._next_seq = self.stable.seq
        self._msgs: list[Envelope] = []
        self._records: list[PbftRecord] = []
        self._committed_out: list[Entry] = []
        self._decisions: list[Decision] = []
        self._serve: list[Envelope] = []
        self._vc_elapsed_ticks = 0
        self._vc_attempts = 0
        self._status_elapsed_ticks = 0
        self._transfer: CheckpointCert | None = None
        self._transfer_from = 0
        self._transfer_elapsed_ticks = 0
        self._transfer_tries = 0
        #: App checkpoints: the history at each checkpoint's sequence number delivered
        #: in this run, until the application gives its state there (``app_checkpoint``).
        self._history_at: dict[int, bytes] = {}
        #: The (history, application state) each own checkpoint above ``stable`` signed.
        self._own_state: dict[int, tuple[bytes, bytes]] = {}
        #: The stable checkpoint's state in the clear, served to a replica whose missing
        #: entries are gone; and the best one offered to us during a transfer.
        self._stable_state: StableState | None = None
        self._offer: StableState | None = None
        self._snapshot_out: Snapshot | None = None
        #: A replica whose store was lost (``lost_store``) may have voted before, up to
        #: its stable checkpoint then + L; if it learns of a stable checkpoint before it
        #: votes, it abstains up to that checkpoint + L (BFT-PR §4: it never votes twice
        #: for one slot). Set in ``_advance_stable``.
        self._abstain_through = 0
        #: What each peer last said it executed: retransmit only to a peer that is stuck.
        self._peer_executed: dict[str, int] = {}
        #: Requests wait outside the core (a node's mempool): the view-change timer runs.
        self._external_waiting = False
        self._prev_soft_state = self._soft_state()
        self._refresh_members()
        if not bugs.forget_votes:
            snap = storage.snapshot()
            if follow_membership and snap.data:
                # An installed state (a compaction's has no data): blind after it.
                self._install_blind(snap.meta.index)
            self._restore(storage, applied)
            self._link_stored()
        self._empty = not bugs.forget_votes and hs == PbftHardState() and not self._stored()
        self._fresh = False
        if self.executed < self.stable.seq:
            # Crashed in the middle of a state transfer: resume it.
            self._transfer = self.stable
            self._request_state()

    def _restore(self, storage: PbftStorage, applied: int) -> None:
        """Rebuild the log from the persisted records (CL §4.6): the pre-prepares this
        replica accepted and the votes it sent bind it after a restart too."""
        for r in storage.records():
            if isinstance(r, CommitCert):
                seq = r.entry.index
                if seq > self.stable.seq:
                    self._committed[seq] = r
                continue
            if isinstance(r, PreparedCert):
                self._prepared[r.pre_prepare.seq] = r
                continue
            if isinstance(r, StableState):
                self._stable_state = r
                continue
            if isinstance(r, EpochProof):
                self._stored_proofs.append(r)
                continue
            if isinstance(r, Checkpoint):
                if r.seq > self.stable.seq:
                    self._checkpoints.setdefault(r.seq, {})[self._id] = r
                    self._own_checkpoints[r.seq] = r.digest
                continue
            inst = self._instance(r.view, r.seq)
            if isinstance(r, PrePrepare):
                inst.pre_prepare = r
                if r.view == self.view and r.replica == self._id:
                    self._next_seq = max(self._next_seq, r.seq)
                    self._assigned.add(r.digest)
            elif isinstance(r, Prepare):
                inst.prepares[self._id] = r
            else:
                inst.commits[self._id] = r
        if self._vc_msg is not None:
            self._view_changes[self.view] = {self._id: self._vc_msg}
        if applied < self.executed:
            for cert in storage.committed(applied + 1, self.executed):
                self._deliver_out(cert.entry, cert.commits, "replay")

    # --- the core interface ----------------------------------------------------------

    @property
    def node_id(self) -> str:
        return self._id

    @property
    def primary(self) -> str:
        return self.members.primary(self.view)

    @property
    def is_primary(self) -> bool:
        return self.active and self.primary == self._id

    @property
    def is_member(self) -> bool:
        """Whether this replica votes in its epoch (an added replica catching up, or a
        removed one, does not)."""
        return self._id in self.members.replicas

    # --- membership (module doc) -----------------------------------------------------

    def note_executed(
        self,
        seq: int,
        replicas: Sequence[str] | None = None,
        verifier: Verifier | None = None,
        *,
        keys: Sequence[bytes] | None = None,
    ) -> int | None:
        """The driver applied entry ``seq``; ``replicas`` (with their ``verifier``, and
        their public ``keys`` in the same order, which the epoch's digest covers and
        its proof carries) when it changed the replica set. Returns the first sequence
        number the new set orders (None when nothing changed). Reports come in order,
        each once; one already noted is ignored (a replay after a restart). Following,
        a checkpoint is signed once its entry is noted (it signs the epoch after it)."""
        if seq <= self._noted:
            return None
        self._noted = seq
        start = None
        if replicas is not None:
            if verifier is None:
                raise ValueError("a new replica set needs its verifier")
            k = self.cfg.checkpoint_interval
            start = -(-(seq + self.cfg.log_window) // k) * k + 1
            self.restore_epoch(start, replicas, verifier, keys=keys)
        if self._follow and not self.cfg.app_checkpoints:
            history = self._history_at.pop(seq, None)
            if history is not None:
                self._make_checkpoint((seq, history))
        return start

    def restore_epoch(
        self,
        start: int,
        replicas: Sequence[str],
        verifier: Verifier,
        *,
        keys: Sequence[bytes] | None = None,
    ) -> None:
        """An epoch from ``start`` on (``note_executed``; and at a restart, before any
        step, the epochs it returned before, which the driver persists). Two changes
        whose epochs start at one checkpoint make one epoch, of the later set; an
        epoch before the last one is already known (a replay) and kept."""
        last_start, last = self._epochs[-1]
        if start < last_start or (start == last_start and last.replicas == tuple(sorted(replicas))):
            return
        new = Membership(replicas, verifier, self.cfg.log_window, last.cover_view)
        ks = _sorted_keys(replicas, keys)
        if start == last_start:
            if len(self._epochs) == 1:
                raise InvariantViolation("the first epoch cannot change")
            self._epochs[-1] = (start, new)
            self._epoch_keys[-1] = ks
        else:
            self._epochs.append((start, new))
            self._epoch_keys.append(ks)
        self._rechain()
        self._link_stored()
        self._refresh_members()

    # --- epochs as certified facts (module doc) --------------------------------------

    def _rechain(self) -> None:
        prev = GENESIS_EPOCH_PREV
        digests = []
        for (start, m), ks in zip(self._epochs, self._epoch_keys, strict=True):
            prev = epoch_digest(start, m.replicas, ks, prev)
            digests.append(prev)
        self._epoch_digests = digests

    def _epoch_index(self, seq: int) -> int:
        found = 0
        for i, (start, _) in enumerate(self._epochs):
            if start > seq:
                break
            found = i
        return found

    def _signed_digest(self, seq: int, base: bytes) -> bytes:
        """What checkpoint ``seq`` of state digest ``base`` signs: following, with the
        epoch in force after it (so a stable checkpoint certifies it)."""
        if not self._follow:
            return base
        return epoch_checkpoint_digest(base, self._epoch_digests[self._epoch_index(seq + 1)])

    def epoch_proofs(self, after: int) -> tuple[EpochProof, ...]:
        """The proofs this replica holds of the epochs starting above ``after``, oldest
        first (each still one of its epochs), at most ``EPOCH_PROOFS_MAX``."""
        out = []
        for start in sorted(self._proofs):
            p = self._proofs[start]
            if start > after and p.digest in self._epoch_digests:
                out.append(p)
        return tuple(out[:EPOCH_PROOFS_MAX])

    def _prove(self, cert: CheckpointCert, base: bytes) -> None:
        """Keep the proof of the epoch after ``cert`` when it starts one: ``cert`` is
        stable and ``base`` the state digest it signs with the epoch."""
        if not self._follow or cert.seq + 1 in self._proofs:
            return
        i = self._epoch_index(cert.seq + 1)
        start, m = self._epochs[i]
        if i == 0 or start != cert.seq + 1:
            return
        p = EpochProof(
            start, m.replicas, self._epoch_keys[i], self._epoch_digests[i - 1], base, cert
        )
        if cert.digest != epoch_checkpoint_digest(base, p.digest):
            return
        self._proofs[start] = p
        self._records.append(p)

    def _learn(self, p: EpochProof, *, stored: bool = False) -> bool:
        """Take the epoch ``p`` proves if it follows one of ours (module doc); True when
        our epochs changed. A proof of an epoch we know is kept (to serve); one that
        contradicts what we executed, forks from an epoch we know the successor of,
        or is not certified by a quorum of the set before, is refused."""
        if not self._follow:
            return False
        digests = self._epoch_digests
        d = p.digest
        if d in digests:
            i = digests.index(d)
            if i > 0 and p.start not in self._proofs and self._epochs[i][0] == p.start:
                prev_start, prev = self._epochs[i - 1]
                if prev.epoch_proof_ok(p, digests[i - 1], prev_start):
                    self._proofs[p.start] = p
                    if not stored:
                        self._records.append(p)
            return False
        if p.prev not in digests:
            return False
        i = digests.index(p.prev)
        after = [start for start, _ in self._epochs[i + 1 :]]
        if not stored:
            # What follows epoch i in our list and starts at or before ``p.start`` is
            # what we executed, unless we may not know it yet: the last epoch, whose
            # bucket a later change may still replace, or any after an installed state
            # (entries skipped). A proof against what we know is refused.
            if p.start <= self.known_top or any(s < p.start for s in after):
                return False
            if len(after) > 1 and not self._blind:
                return False
            if after and after[0] > p.start and not self._blind:
                return False
        start, before = self._epochs[i]
        if not before.epoch_proof_ok(p, p.prev, start):
            return False
        verifier = (
            Ed25519Verifier(dict(zip(p.replicas, p.keys, strict=True)))
            if p.keys
            else self._epochs[-1][1].verifier
        )
        new = Membership(p.replicas, verifier, self.cfg.log_window, before.cover_view)
        at = i + 1
        if after and after[0] == p.start:
            self._epochs[at] = (p.start, new)  # the same bucket: the later set's
            self._epoch_keys[at] = p.keys
        else:
            self._epochs.insert(at, (p.start, new))
            self._epoch_keys.insert(at, p.keys)
        self._rechain()
        self._proofs[p.start] = p
        if self._blind:
            self._certain = max(self._certain, p.start)
        if not stored:
            self._records.append(p)
        return True

    def _link_stored(self) -> None:
        """Link the proofs read back at a restart to the epochs known now."""
        progress = bool(self._stored_proofs)
        while progress:
            progress = False
            for p in sorted(self._stored_proofs, key=_by_start):
                if self._learn(p, stored=True):
                    progress = True
        self._refresh_members()

    def _on_epoch_changes(self, m: EpochChanges) -> None:
        changed = False
        for p in m.proofs[:EPOCH_PROOFS_MAX]:
            changed = self._learn(p) or changed
        if not changed:
            return
        self._refresh_members()
        for seq in sorted(self._checkpoints):
            self._check_stable(seq)  # checkpoints now judged by the set they came from

    @property
    def epochs(self) -> tuple[tuple[int, tuple[str, ...]], ...]:
        """(first sequence number, replicas) of each epoch this replica knows, in order."""
        return tuple((start, m.replicas) for start, m in self._epochs)

    def members_at(self, seq: int) -> Membership:
        """The set that orders ``seq``, as far as this replica knows."""
        found = self._epochs[0][1]
        for start, m in self._epochs:
            if start > seq:
                break
            found = m
        return found

    @property
    def known_top(self) -> int:
        """The highest sequence number whose set this replica surely knows: a change
        it has not been told of yet starts above it."""
        if not self._follow:
            return 1 << 62
        top = self._noted + self.cfg.log_window + 1
        return min(top, self._certain) if self._blind else top

    @property
    def _blind(self) -> bool:
        return self._certain < self._blind_end

    def _install_blind(self, seq: int) -> None:
        self._blind_end = max(
            self._blind_end, seq + self.cfg.log_window + self.cfg.checkpoint_interval
        )
        self._certain = max(self._certain, seq + 1)

    def _judge(self, seq: int) -> Membership:
        """The set that judges signed proofs about ``seq``: beyond ``known_top``, the
        latest set this replica knows (module doc)."""
        return self.members_at(seq)

    def _epoch_end(self) -> int:
        """The last sequence number of this replica's epoch (unbounded: a large int)."""
        low = self.stable.seq + 1
        for start, _ in self._epochs:
            if start > low:
                return start - 1
        return 1 << 62

    def _audience(self) -> tuple[str, ...]:
        """Who this replica's messages go to: the sets of its epoch and later ones (a
        replica about to join follows the protocol before it votes)."""
        low = self.stable.seq + 1
        names: set[str] = set()
        current = self.members_at(low)
        for start, m in self._epochs:
            if start > low or m is current:
                names.update(m.replicas)
        return tuple(sorted(names))

    def _known_peer(self, r: str) -> bool:
        return any(r in m.replicas for _, m in self._epochs)

    def _refresh_members(self) -> None:
        new = self.members_at(self.stable.seq + 1)
        if new is self.members:
            return
        self.members = new
        self._view_changes = {
            v: {r: m for r, m in got.items() if r in new.replicas and self._same_epoch(m)}
            for v, got in self._view_changes.items()
        }
        if self.active:
            return
        if self.is_member:
            # Our VIEW-CHANGE was of the old epoch: the same view, from the new stable
            # checkpoint (CL §4.4: a later checkpoint proves what the dropped prepared
            # certificates below it said).
            self._send_view_change()
        else:
            self.active = True  # not ours to change: the members' NEW-VIEW tells
            self._vc_msg = None

    def _same_epoch(self, v: ViewChange) -> bool:
        return self.members_at(v.checkpoint.seq + 1) is self.members

    def status(self) -> CoreStatus:
        top = max(self._committed, default=self.executed)
        return CoreStatus(
            node_id=self._id,
            role=self._role(),
            term=self.view,
            leader=self.primary if self.active else None,
            commit_index=max(top, self.executed),
            applied_index=self.executed,
            last_index=max(top, self.executed),
            voters=self.members.replicas,
        )

    def has_ready(self) -> bool:
        return bool(
            self._msgs
            or self._records
            or self._committed_out
            or self._serve
            or self._snapshot_out is not None
            or self._hard_state() != self._prev_hard_state
            or self._soft_state() != self._prev_soft_state
        )

    def ready(self) -> PbftReady:
        hs = self._hard_state()
        ss = self._soft_state()
        rd = PbftReady(
            hard_state=hs if hs != self._prev_hard_state else None,
            entries=tuple(self._records),
            snapshot=self._snapshot_out,
            messages=tuple(self._msgs),
            committed=tuple(self._committed_out),
            soft_state=ss if ss != self._prev_soft_state else None,
            decisions=tuple(self._decisions),
            serve=tuple(self._serve),
        )
        self._msgs = []
        self._records = []
        self._committed_out = []
        self._decisions = []
        self._serve = []
        self._snapshot_out = None
        self._prev_soft_state = ss
        return rd

    def advance(self, rd: PbftReady) -> None:
        if rd.hard_state is not None:
            self._prev_hard_state = rd.hard_state

    def propose(self, data: bytes) -> bool:
        """Take a client request (a batch). Every replica takes it (CL §4.5.2: backups
        watch for it to execute and change view if it does not); the primary also
        orders it. False when the pending queue is full (back-pressure)."""
        if not data or len(data) > self.cfg.max_entry_bytes:
            raise ValueError(f"proposal of {len(data)} bytes (1..{self.cfg.max_entry_bytes})")
        d = payload_digest(data)
        if d in self._requests or d in self._recent:
            return True
        if len(self._requests) >= self.cfg.max_pending_requests:
            return False
        self._requests[d] = data
        self._assign()
        return True

    # --- what a node's loop asks beside the core interface ---------------------------

    def set_waiting(self, waiting: bool) -> None:
        """Whether client requests wait outside the core (in a node's mempool, where a
        backup holds every client tx too): while they do, the CL §4.5.2 timer runs, and
        a primary that orders nothing is replaced. Executing an entry resets the timer."""
        self._external_waiting = waiting

    def drop_requests(self) -> None:
        """Forget the proposals this replica made and that have not executed (it
        stopped being the primary: what it pre-prepared and got prepared comes back in
        the next view's O set; the rest is rebuilt by the next primary)."""
        self._requests.clear()

    def pre_prepared(self, view: int, seq: int) -> bool:
        """Whether this replica holds a pre-prepare for (view, seq) already (a second
        one for the slot is ignored, CL §4.2)."""
        inst = self._instances.get((view, seq))
        return inst is not None and inst.pre_prepare is not None

    @property
    def last_assigned(self) -> int:
        """The highest sequence number assigned in this view (by a primary's
        pre-prepare or a new view's O set); nothing above it is ordered yet."""
        return self._next_seq

    @property
    def window_top(self) -> int:
        """The high watermark H = h + L (CL §4.3): no sequence number above it; nor
        above this epoch's end or what this replica knows of the sets (module doc)."""
        return min(self.stable.seq + self.cfg.log_window, self._epoch_end(), self.known_top)

    def lost_store(self) -> None:
        """The driver knows this replica ran before (its application holds state) while
        the store it was built from holds nothing: the store, and the votes in it, were
        lost. It abstains as the module doc says; no effect if anything was stored."""
        self._fresh = self._empty

    def app_checkpoint(self, seq: int, app_state: bytes) -> None:
        """The application applied every entry up to ``seq`` (a multiple of the
        checkpoint interval) and ``app_state`` digests its state now: sign the
        checkpoint of the history and that state (``PbftConfig.app_checkpoints``).
        Ignored for an entry delivered before a restart (replayed: the application's
        state then is not the one at ``seq``), and for any other sequence number."""
        history = self._history_at.pop(seq, None)
        if history is not None:
            self._make_checkpoint((seq, history), app_state)

    @property
    def stable_state(self) -> StableState | None:
        """The state of this replica's stable checkpoint (or an older one), in the clear,
        when it knows it (app checkpoints)."""
        return self._stable_state

    def compact(self, index: int, data: bytes) -> Snapshot:
        if index > self.executed:
            raise ValueError(f"compact at {index} beyond executed {self.executed}")
        return Snapshot(SnapshotMeta(index, self.view, self.members.replicas), data)

    def tick(self) -> None:
        cfg = self.cfg
        self._status_elapsed_ticks += 1
        if self._status_elapsed_ticks >= cfg.status_interval_ticks:
            self._status_elapsed_ticks = 0
            self._broadcast(Status(self.view, self.active, self.executed, self.stable.seq))
            if not self.active and self._vc_msg is not None:
                self._broadcast(self._vc_msg)
        if self._transfer is not None:
            self._transfer_elapsed_ticks += 1
            if self._transfer_elapsed_ticks >= cfg.state_retry_ticks:
                offer = self._offer
                if offer is not None and offer.cert.seq > self.executed:
                    self._install(offer)  # offered, and no entries came: they are gone
                else:
                    self._request_state()
        if self.active and not self._waiting():
            self._vc_elapsed_ticks = 0
            return
        self._vc_elapsed_ticks += 1
        timeout = cfg.view_change_timeout_ticks << min(self._vc_attempts, 5)
        if self._vc_elapsed_ticks < timeout:
            return
        if self.active:
            self._start_view_change(self.view + 1)
        elif len(self._view_changes.get(self.view, {})) >= self.members.quorum:
            # The view change had a quorum and still no NEW-VIEW: its primary is faulty.
            self._start_view_change(self.view + 1)
        else:
            # Without a quorum for this view, moving on would only leave the others
            # further behind (a lone replica cut off by a partition); keep asking.
            self._vc_elapsed_ticks = 0

    def step(self, msg: Envelope) -> None:
        body = msg.body
        if isinstance(body, StateRequest) and self.cfg.app_checkpoints:
            self._offer_state(msg.frm, body)
        elif isinstance(body, StableState):
            self._on_stable_state(body)
        if isinstance(body, PrePrepare):
            self._on_pre_prepare(body)
        elif isinstance(body, Prepare):
            self._on_prepare(body)
        elif isinstance(body, Commit):
            self._on_commit(body)
        elif isinstance(body, Checkpoint):
            self._on_checkpoint(body)
        elif isinstance(body, ViewChange):
            self._on_view_change(body)
        elif isinstance(body, NewView):
            self._on_new_view(body)
        elif isinstance(body, Status):
            self._on_status(msg.frm, body)
        elif isinstance(body, StateRequest):
            if self._known_peer(msg.frm) and msg.frm != self._id:
                self._serve.append(msg)
        elif isinstance(body, StateReply):
            self._on_state_reply(body)
        elif isinstance(body, CommitProof):
            self._on_commit_proof(body)
        elif isinstance(body, EpochChanges):
            self._on_epoch_changes(body)

    # --- helpers --------------------------------------------------------------------

    def _role(self) -> Role:
        if not self.active:
            return Role.CANDIDATE
        return Role.LEADER if self.primary == self._id else Role.FOLLOWER

    def _soft_state(self) -> SoftState:
        return SoftState(self._role(), self.primary if self.active else None)

    def _hard_state(self) -> PbftHardState:
        return PbftHardState(
            view=self.view,
            view_change=None if self.active else self._vc_msg,
            stable=self.stable,
            executed=self.executed,
            history=self.history,
        )

    def _stored(self) -> bool:
        """Whether ``_restore`` found anything stored."""
        held = self._instances or self._prepared or self._committed or self._checkpoints
        return bool(held) or self._stable_state is not None

    def _votes(self, seq: int) -> bool:
        """Whether this replica may pre-prepare, prepare or commit at ``seq``."""
        return seq > self._abstain_through

    def _sign(self, kind: Kind, view: int, seq: int, digest: bytes) -> bytes:
        if kind in (Kind.PRE_PREPARE, Kind.PREPARE, Kind.COMMIT):
            self._fresh = False  # it votes from its start: its store holds its votes
        stmt = statement_bytes(kind, view, seq, digest, self._id, self.members.cover_view)
        return self._signer.sign(stmt)

    def _send(self, to: str, body: Body) -> None:
        self._msgs.append(Envelope(self._id, to, body))

    def _broadcast(self, body: Body) -> None:
        for r in self._audience() if self._follow else self.members.replicas:
            if r != self._id:
                self._msgs.append(Envelope(self._id, r, body))

    def _instance(self, view: int, seq: int) -> _Instance:
        inst = self._instances.get((view, seq))
        if inst is None:
            inst = self._instances[(view, seq)] = _Instance()
        return inst

    def _in_window(self, seq: int) -> bool:
        return self.stable.seq < seq <= self.window_top

    def _current(self, m: Signed) -> bool:
        """A normal-case message of our view, inside the watermarks (CL §4.2)."""
        return self.active and m.view == self.view and self._in_window(m.seq)

    def _waiting(self) -> bool:
        """CL §4.5.2: a backup's timer runs while a request it knows of has not
        executed."""
        if self._requests or self._transfer is not None or self._external_waiting:
            return True
        return any(
            seq > self.executed and inst.pre_prepare is not None
            for (view, seq), inst in self._instances.items()
            if view == self.view
        )

    # --- normal case (CL §4.2) -----------------------------------------------------

    def _assign(self) -> None:
        if not self.is_primary or not self._votes(self._next_seq + 1):
            return
        top = self.window_top
        for d in list(self._requests):
            if self._next_seq + 1 > top:
                return
            if d in self._assigned:
                continue
            seq = self._next_seq + 1
            self._next_seq = seq
            self._assigned.add(d)
            payload = self._requests[d]
            pp = PrePrepare(
                self.view,
                seq,
                d,
                self._id,
                self._sign(Kind.PRE_PREPARE, self.view, seq, d),
                payload,
            )
            self._instance(self.view, seq).pre_prepare = pp
            self._records.append(pp)
            self._broadcast(pp)

    def _on_pre_prepare(self, m: PrePrepare) -> None:
        if not self._current(m) or m.replica != self.primary or m.replica == self._id:
            return
        if payload_digest(m.payload) != m.digest or not self.members.signed_ok(m):
            return
        self._accept_pre_prepare(m)

    def _accept_pre_prepare(self, m: PrePrepare) -> None:
        inst = self._instance(m.view, m.seq)
        if inst.pre_prepare is not None:
            return  # CL §4.2: never a second pre-prepare for one (view, seq).
        inst.pre_prepare = m
        self._records.append(m)
        votes = self._votes(m.seq)
        if m.replica != self._id and self._id not in inst.prepares and self.is_member and votes:
            p = Prepare(
                m.view, m.seq, m.digest, self._id, self._sign(Kind.PREPARE, m.view, m.seq, m.digest)
            )
            inst.prepares[self._id] = p
            self._records.append(p)
            self._broadcast(p)
        self._check(m.view, m.seq)

    def _on_prepare(self, m: Prepare) -> None:
        if not self._current(m) or m.replica == self.primary or m.replica == self._id:
            return
        inst = self._instance(m.view, m.seq)
        if m.replica in inst.prepares or not self.members.signed_ok(m):
            return
        inst.prepares[m.replica] = m
        self._check(m.view, m.seq)

    def _on_commit(self, m: Commit) -> None:
        if not self._current(m) or m.replica == self._id:
            return
        inst = self._instance(m.view, m.seq)
        if m.replica in inst.commits or not self.members.signed_ok(m):
            return
        inst.commits[m.replica] = m
        self._check(m.view, m.seq)

    def _check(self, view: int, seq: int) -> None:
        inst = self._instance(view, seq)
        pp = inst.pre_prepare
        if pp is None:
            return
        d = pp.digest
        q = self.members.quorum
        if not inst.prepared:
            matching = sorted(
                (p for p in inst.prepares.values() if p.digest == d), key=lambda p: p.replica
            )
            if len(matching) < q - 1:
                return
            inst.prepared = True
            cert = PreparedCert(pp, tuple(matching[: q - 1]))
            old = self._prepared.get(seq)
            if old is None or old.pre_prepare.view <= view:
                self._prepared[seq] = cert
                self._records.append(cert)
            if self._id not in inst.commits and self.is_member and self._votes(seq):
                c = Commit(view, seq, d, self._id, self._sign(Kind.COMMIT, view, seq, d))
                inst.commits[self._id] = c
                self._records.append(c)
                self._broadcast(c)
        if inst.committed:
            return
        need = q - 1 if self.cfg.bugs.commit_quorum_2f else q
        commits = sorted(
            (c for c in inst.commits.values() if c.digest == d), key=lambda c: c.replica
        )
        if len(commits) < need:
            return
        inst.committed = True
        if seq <= self.executed or seq in self._committed:
            return
        kind = EntryKind.NOOP if d == NULL_DIGEST and not pp.payload else EntryKind.NORMAL
        done = CommitCert(Entry(seq, view, pp.payload, kind), tuple(commits[:need]))
        self._committed[seq] = done
        self._records.append(done)
        self._execute()

    def _execute(self) -> None:
        while True:
            cert = self._committed.get(self.executed + 1)
            if cert is None:
                return
            self._deliver(cert.entry, cert.commits, "protocol", None)

    def _deliver(
        self,
        entry: Entry,
        commits: tuple[Commit, ...],
        source: str,
        via: CheckpointCert | None,
    ) -> None:
        if entry.index != self.executed + 1:
            raise InvariantViolation(f"{self._id} executes {entry.index} after {self.executed}")
        self.executed = max(self.executed, entry.index)
        self.history = chain_digest(self.history, entry.index, entry.digest)
        self._deliver_out(entry, commits, source, via)
        app = self.cfg.app_checkpoints  # then the application's state is checked too
        # Following, the checkpoint is checked once noted (it signs the epoch after it).
        later = app or self._follow
        if self.executed == self.stable.seq and not later and self.history != self.stable.digest:
            raise InvariantViolation(
                f"{self._id}: state at {self.executed} differs from the stable checkpoint"
            )
        if self._transfer is not None and self.executed >= self._transfer.seq:
            self._transfer = None  # The protocol caught up first.
            self._offer = None
        self._requests.pop(entry.digest, None)
        self._assigned.discard(entry.digest)
        self._recent[entry.digest] = None
        while len(self._recent) > 4 * self.cfg.max_pending_requests:
            self._recent.popitem(last=False)
        self._vc_elapsed_ticks = 0
        self._vc_attempts = 0
        if self.executed % self.cfg.checkpoint_interval == 0:
            if later:
                # app_checkpoint signs; following, note_executed (the epochs are known).
                self._history_at[self.executed] = self.history
            else:
                self._make_checkpoint()

    def _deliver_out(
        self,
        entry: Entry,
        commits: tuple[Commit, ...],
        source: str,
        via: CheckpointCert | None = None,
    ) -> None:
        self._committed_out.append(entry)
        self._decisions.append(Decision(entry, commits, source, via))

    # --- checkpoints and garbage collection (CL §4.3) -------------------------------

    def _make_checkpoint(self, at: tuple[int, bytes] | None = None, app_state: bytes = b"") -> None:
        """Sign the checkpoint of the history ``at`` (seq, history; the current one by
        default) and the application's ``app_state``."""
        seq, history = at if at is not None else (self.executed, self.history)
        base = checkpoint_digest(history, app_state)
        d = self._signed_digest(seq, base)
        if self._blind and seq + 1 > self._certain:
            # Installed across entries whose changes we never saw: a stable checkpoint
            # we agree with certifies our epochs up to the one after it; otherwise one
            # we missed comes by proof, and we sign nothing before we know (module doc).
            if seq == self.stable.seq and d == self.stable.digest:
                self._certain = seq + 1
            else:
                return
        if seq == self.stable.seq and (self.cfg.app_checkpoints or self._follow):
            # The application got there after the checkpoint became stable.
            if d != self.stable.digest:
                if self._follow and base == self.stable.digest:
                    return  # signed before checkpoints signed epochs (an upgraded store)
                raise InvariantViolation(
                    f"{self._id}: state at {seq} differs from the stable checkpoint"
                )
            if self.cfg.app_checkpoints:
                self._keep_stable_state(StableState(self.stable, history, app_state))
            self._prove(self.stable, base)
        if seq <= self.stable.seq:
            return
        self._bases[seq] = base
        if self._id not in self.members_at(seq).replicas:
            return
        self._own_checkpoints[seq] = d
        self._own_state[seq] = (history, app_state)
        c = Checkpoint(seq, d, self._id, self._sign(Kind.CHECKPOINT, 0, seq, d))
        self._checkpoints.setdefault(seq, {})[self._id] = c
        self._records.append(c)
        self._broadcast(c)
        self._check_stable(seq)

    def _on_checkpoint(self, m: Checkpoint) -> None:
        if m.seq <= self.stable.seq or m.seq % self.cfg.checkpoint_interval:
            return
        got = self._checkpoints.setdefault(m.seq, {})
        if m.replica in got or not self._judge(m.seq).signed_ok(m):
            return
        got[m.replica] = m
        # Bounded memory: only each replica's two highest checkpoints are kept.
        theirs = sorted(s for s, c in self._checkpoints.items() if m.replica in c)
        for s in theirs[:-2]:
            del self._checkpoints[s][m.replica]
        self._check_stable(m.seq)

    def _check_stable(self, seq: int) -> None:
        got = self._checkpoints.get(seq, {})
        by_digest: dict[bytes, list[Checkpoint]] = {}
        for r in sorted(got):
            by_digest.setdefault(got[r].digest, []).append(got[r])
        q = self._judge(seq).quorum
        for d in sorted(by_digest):
            proof = by_digest[d]
            if len(proof) >= q:
                self._advance_stable(CheckpointCert(seq, d, tuple(proof[:q])))
                return

    def _advance_stable(self, cert: CheckpointCert) -> None:
        if cert.seq <= self.stable.seq:
            return
        mine = self._own_checkpoints.get(cert.seq)
        if mine is not None and mine != cert.digest:
            raise InvariantViolation(
                f"{self._id}: state at {cert.seq} differs from the stable checkpoint"
            )
        self.stable = cert
        h = cert.seq
        self._instances = {k: v for k, v in self._instances.items() if k[1] > h}
        self._prepared = {s: p for s, p in self._prepared.items() if s > h}
        # Certificates just below h stay a while: they let a replica that is only a
        # little behind catch up without a state transfer, and serve such replicas.
        keep = min(h, self.executed) - self.cfg.log_window
        self._committed = {s: c for s, c in self._committed.items() if s > keep}
        self._checkpoints = {s: c for s, c in self._checkpoints.items() if s > h}
        self._own_checkpoints = {s: d for s, d in self._own_checkpoints.items() if s > h}
        base = self._bases.get(h)
        if base is not None:
            self._prove(cert, base)
        self._bases = {s: b for s, b in self._bases.items() if s > h}
        own = self._own_state.get(h)
        if own is not None and self.cfg.app_checkpoints:
            self._keep_stable_state(StableState(cert, *own))
        self._own_state = {s: o for s, o in self._own_state.items() if s > h}
        if self._fresh and self._id in self.members.replicas:
            self._fresh = False
            self._abstain_through = h + self.cfg.log_window
        self._history_at = {s: d for s, d in self._history_at.items() if s >= h}
        self._next_seq = max(self._next_seq, h)
        if self.executed < h:
            self._transfer = cert
            self._transfer_tries = 0
            self._request_state()
        self._refresh_members()
        self._assign()

    # --- state transfer (CL §5.3) ---------------------------------------------------

    def _request_state(self, *, next_piece: bool = False) -> None:
        """Ask a peer for the committed entries up to the stable checkpoint we are
        transferring to; ``next_piece``: the rest, after a piece arrived (the transfer
        goes on: it started where it started)."""
        cert = self._transfer
        if cert is None:
            return
        peers = [c.replica for c in cert.proof if c.replica != self._id]
        if not peers:
            peers = [r for r in self.members.replicas if r != self._id]
        to = peers[self._transfer_tries % len(peers)]
        self._transfer_tries += 1
        self._transfer_elapsed_ticks = 0
        if not next_piece:
            self._transfer_from = self.executed
        # A replica further behind than one request may span asks for the last part:
        # with app checkpoints the answer that helps it is the offered state.
        start = max(self.executed, cert.seq - STATE_REQUEST_SPAN_MAX)
        self._send(to, StateRequest(start, cert.seq))

    def _on_state_reply(self, m: StateReply) -> None:
        cert = self._transfer
        if cert is None:
            return
        start = self._transfer_from if self.cfg.bugs.double_delivery else self.executed
        fresh = [e for e in m.entries if e.index > self.executed]
        want = list(range(self.executed + 1, cert.seq + 1))
        if [e.index for e in fresh] != want:
            return
        d = self.history
        for e in fresh:
            if not _well_formed(e):
                return
            d = chain_digest(d, e.index, e.digest)
        if self.cfg.app_checkpoints:
            # The checkpoint signs the history with the application's state: the entries
            # must end at the history of a certified state offered for that checkpoint.
            offer = self._offer
            if offer is None or offer.cert.seq != cert.seq or offer.history != d:
                return
        elif self._signed_digest(cert.seq, d) != cert.digest:
            return  # Bad state from a faulty replica (or an epoch still unknown to us).
        deliver = [e for e in m.entries if e.index > start and e.index <= cert.seq]
        for e in deliver:
            if e.index <= self.executed:
                # Only reachable with the planted bug: delivered twice.
                self._deliver_out(e, (), "transfer", cert)
                continue
            self._records.append(CommitCert(e, ()))
            self._deliver(e, (), "transfer", cert)
        self._transfer = None
        self._offer = None
        self._execute()

    def _offer_state(self, to: str, req: StateRequest) -> None:
        """App checkpoints: beside the entries the driver serves (if this replica still
        holds them), offer the state of our stable checkpoint; the requester checks it
        and installs it if no entries come (CL §5.3)."""
        s = self._stable_state
        if to != self._id and s is not None and s.cert.seq > req.from_seq:
            proofs = self.epoch_proofs(req.from_seq)
            if proofs:
                self._send(to, EpochChanges(proofs))  # first: the state may need them
            self._send(to, s)

    def _on_stable_state(self, m: StableState) -> None:
        """Keep the highest valid offer above what we executed, while transferring: a
        checkpoint certificate of 2f+1 and the state its digest signs."""
        if not self.cfg.app_checkpoints or self._transfer is None:
            return
        best = self._offer
        if m.cert.seq <= self.executed or (best is not None and best.cert.seq >= m.cert.seq):
            return
        base = checkpoint_digest(m.history, m.app_state)
        if self._signed_digest(m.cert.seq, base) != m.cert.digest:
            return  # a false state, or one after an epoch we have yet to learn
        if not m.app_state or not self.members.checkpoint_cert_ok(m.cert):
            return
        self._offer = m

    def _install(self, s: StableState) -> None:
        """CL §5.3 without the entries: take the certified state. The application gets
        it as the Ready's snapshot (persisted with the hard state, then installed by
        the driver before anything later applies); no entry up to ``s.cert.seq`` is
        delivered by this replica, so none is delivered twice, and the votes this
        replica persisted above it stay (it never votes twice for one slot)."""
        seq = s.cert.seq
        self._offer = None
        self.executed, self.history = seq, s.history
        self._committed = {q: c for q, c in self._committed.items() if q > seq}
        self._history_at = {q: d for q, d in self._history_at.items() if q > seq}
        # Entries delivered earlier in this Ready are covered by the snapshot.
        self._committed_out = [e for e in self._committed_out if e.index > seq]
        meta = SnapshotMeta(seq, self.view, self.members.replicas)
        self._snapshot_out = Snapshot(meta, s.app_state)
        if self._follow:
            self._install_blind(seq)  # changes in the entries skipped (module doc)
        if seq >= self.stable.seq:
            self._advance_stable(s.cert)
            self._keep_stable_state(s)
            self._prove(s.cert, checkpoint_digest(s.history, s.app_state))
        self._vc_elapsed_ticks = 0
        if self._transfer is not None and self._transfer.seq <= seq:
            self._transfer = None
        elif self._transfer is not None:
            self._request_state()  # the stable checkpoint is further on still
        self._execute()

    def _keep_stable_state(self, s: StableState) -> None:
        if self._stable_state is None or self._stable_state.cert.seq < s.cert.seq:
            self._stable_state = s
            self._records.append(s)

    def _on_commit_proof(self, m: CommitProof) -> None:
        """Retransmitted commit certificates (CL §5.2): 2f+1 signed commits prove the
        entry committed whatever view we are in. During a state transfer they are also
        how a peer answers a range too large for one reply (CL §5.3 in pieces): each
        certificate proves its own entry, so each executes as it comes, and the rest of
        the range is asked for at once."""
        before = self.executed
        limit = len(m.certs) if self._transfer is not None else self.cfg.catch_up_batch
        for c in m.certs[:limit]:
            seq = c.entry.index
            if seq <= self.executed or seq in self._committed:
                continue
            if seq > self.stable.seq + self.cfg.log_window:
                continue
            if not self._judge(seq).commit_cert_ok(c):
                continue
            self._committed[seq] = c
            self._records.append(c)
        self._execute()
        if self._transfer is not None and self.executed > before:
            self._request_state(next_piece=True)

    # --- retransmission (CL §5.2) ---------------------------------------------------

    def _on_status(self, frm: str, s: Status) -> None:
        if not self._known_peer(frm) or frm == self._id:
            return
        if s.stable <= self.stable.seq:
            # The epochs after what it executed (it knows those it executed the changes
            # of) or its stable checkpoint, before anything judged by them, and those
            # of the L + K before (one that installed a state may have skipped the
            # changes that started them: module doc).
            span = self.cfg.log_window + self.cfg.checkpoint_interval
            proofs = self.epoch_proofs(min(s.stable, s.executed) - span)
            if proofs:
                self._send(frm, EpochChanges(proofs))
        if s.stable < self.stable.seq:
            for c in self.stable.proof:
                self._send(frm, c)
        # Checkpoint messages get lost too, and without them the window never moves.
        for seq in sorted(self._checkpoints):
            mine = self._checkpoints[seq].get(self._id)
            if mine is not None and seq > s.stable:
                self._send(frm, mine)
        if s.executed < self.executed:
            certs = [
                self._committed[seq]
                for seq in range(s.executed + 1, self.executed + 1)
                if seq in self._committed
            ][: self.cfg.catch_up_batch]
            if certs:
                self._send(frm, CommitProof(tuple(certs)))
        if self.active and (s.view < self.view or (s.view == self.view and not s.active)):
            if self._new_view is not None:
                self._send(frm, self._new_view)
        elif not self.active and self._vc_msg is not None and s.view <= self.view:
            self._send(frm, self._vc_msg)
        stuck = self._peer_executed.get(frm) == s.executed
        self._peer_executed[frm] = s.executed
        if stuck and self.active and s.active and s.view == self.view:
            top = s.executed + self.cfg.log_window
            for (view, seq), inst in sorted(self._instances.items()):
                if view != self.view or not s.executed < seq <= top:
                    continue
                if inst.pre_prepare is not None:
                    self._send(frm, inst.pre_prepare)
                mine_p = inst.prepares.get(self._id)
                if mine_p is not None:
                    self._send(frm, mine_p)
                mine_c = inst.commits.get(self._id)
                if mine_c is not None:
                    self._send(frm, mine_c)

    # --- view change (CL §4.4, §4.5) ------------------------------------------------

    def _start_view_change(self, view: int) -> None:
        if (view <= self.view and not self.active) or not self.is_member:
            return
        self._vc_attempts += 1
        self._vc_elapsed_ticks = 0
        self.view = view
        self.active = False
        self._new_view = None
        self._send_view_change()

    def _send_view_change(self) -> None:
        view = self.view
        low = self.stable.seq
        prepared = tuple(self._prepared[s] for s in sorted(self._prepared) if s > low)
        vc = ViewChange(view, self.stable, prepared, self._id, b"")
        vc = ViewChange(
            view,
            self.stable,
            prepared,
            self._id,
            self._sign(Kind.VIEW_CHANGE, view, low, vc.digest),
        )
        self._vc_msg = vc
        self._instances = {k: v for k, v in self._instances.items() if k[0] >= view}
        self._view_changes.setdefault(view, {})[self._id] = vc
        self._view_changes = {v: m for v, m in self._view_changes.items() if v >= view}
        self._broadcast(vc)
        self._maybe_new_view()

    def _on_view_change(self, m: ViewChange) -> None:
        if m.replica == self._id or m.view < self.view:
            return
        if m.view == self.view and self.active:
            if self._new_view is not None and m.replica in self.members.replicas:
                self._send(m.replica, self._new_view)  # It missed the NEW-VIEW.
            return
        if m.view > self.view + 4 * self.members.n:
            return  # Bounded memory; a real view change that far ahead retries.
        if self._follow and m.checkpoint.seq > self.stable.seq and self._adopt(m.checkpoint):
            return self._on_view_change(m)  # moved on to its checkpoint (and epoch)
        if not self._view_change_ok(m):
            return
        got = self._view_changes.setdefault(m.view, {})
        if m.replica in got:
            return
        got[m.replica] = m
        self._join_view_change()
        self._maybe_new_view()

    def _view_change_ok(self, v: ViewChange) -> bool:
        """CL §4.4, judged by this replica's epoch: the sender's stable checkpoint is in
        it and so are its prepared certificates (module doc)."""
        if not self._same_epoch(v):
            return False
        end = self._epoch_end()
        if any(p.pre_prepare.seq > end for p in v.prepared):
            return False
        return self.members.view_change_ok(v, self._judge(v.checkpoint.seq))

    def _adopt(self, cert: CheckpointCert) -> bool:
        """A stable-checkpoint proof above ours, from a view change (CL §4.3: it proves
        the state whoever sent it): move there. True when the epoch changed."""
        if cert.seq <= self.stable.seq or cert.seq % self.cfg.checkpoint_interval:
            return False
        if not self._judge(cert.seq).checkpoint_cert_ok(cert):
            return False
        before = self.members
        self._advance_stable(cert)
        return self.members is not before

    def _join_view_change(self) -> None:
        """CL §4.5.2: f+1 replicas asking for later views include a correct one; join
        the smallest of the views they are at rather than wait for our own timer."""
        latest: dict[str, int] = {}  # each replica's latest view change: where it is
        for view in sorted(self._view_changes):
            if view <= self.view:
                continue
            for r in self._view_changes[view]:
                if r != self._id:
                    latest[r] = view
        if len(latest) >= self.members.f + 1:
            self._start_view_change(min(latest.values()))

    def _maybe_new_view(self) -> None:
        view = self.view
        if self.active or self.members.primary(view) != self._id:
            return
        got = self._view_changes.get(view, {})
        if len(got) < self.members.quorum or self._id not in got:
            return
        others = [got[r] for r in sorted(got) if r != self._id]
        vcs = tuple(sorted([got[self._id], *others[: self.members.quorum - 1]], key=_by_replica))
        plan = plan_new_view(vcs, self.cfg.bugs.ignore_prepared_certs)
        pps = tuple(
            PrePrepare(
                view,
                s.seq,
                s.digest,
                self._id,
                self._sign(Kind.PRE_PREPARE, view, s.seq, s.digest),
                s.payload,
            )
            for s in plan.slots
        )
        nv = NewView(view, vcs, pps, self._id, b"")
        nv = NewView(view, vcs, pps, self._id, self._sign(Kind.NEW_VIEW, view, 0, nv.digest))
        self._broadcast(nv)
        self._enter_view(nv)

    def _on_new_view(self, m: NewView) -> None:
        if m.view < self.view or (m.view == self.view and self.active):
            return
        top = max((v.checkpoint for v in m.view_changes), key=_by_seq, default=None)
        if self._follow and top is not None and top.seq > self.stable.seq and self._adopt(top):
            return self._on_new_view(m)  # moved on to its checkpoint's epoch
        mm = self.members
        if m.replica != mm.primary(m.view) or m.replica == self._id or not mm.signed_ok(m):
            return
        senders = [v.replica for v in m.view_changes]
        if len(set(senders)) != len(senders) or len(senders) < mm.quorum:
            return
        if any(v.view != m.view or not self._view_change_ok(v) for v in m.view_changes):
            return
        plan = plan_new_view(m.view_changes, self.cfg.bugs.ignore_prepared_certs)
        if len(plan.slots) != len(m.pre_prepares):
            return
        for s, pp in zip(plan.slots, m.pre_prepares, strict=True):
            if (pp.view, pp.seq, pp.digest, pp.payload, pp.replica) != (
                m.view,
                s.seq,
                s.digest,
                s.payload,
                m.replica,
            ) or not mm.signed_ok(pp):
                return
        self._enter_view(m)

    def _enter_view(self, nv: NewView) -> None:
        self.view = nv.view
        self.active = True
        self._vc_msg = None
        self._new_view = nv
        self._vc_elapsed_ticks = 0
        self._view_changes = {v: m for v, m in self._view_changes.items() if v > nv.view}
        self._instances = {k: v for k, v in self._instances.items() if k[0] >= nv.view}
        plan = plan_new_view(nv.view_changes, self.cfg.bugs.ignore_prepared_certs)
        # O owns every sequence number up to max-s: set that before anything can assign.
        self._next_seq = max(self.stable.seq, plan.max_seq)
        self._assigned = {pp.digest for pp in nv.pre_prepares}
        self._advance_stable(plan.checkpoint)
        for pp in nv.pre_prepares:
            if self._in_window(pp.seq):
                self._accept_pre_prepare(pp)
        self._assign()


STATE_REQUEST_SPAN_MAX = 4096
"""The most entries one state request asks for (the peer wire's window)."""
EPOCH_PROOFS_MAX = 16
"""The most epoch proofs one ``EpochChanges`` carries (more come with the next status)."""


def _sorted_keys(replicas: Sequence[str], keys: Sequence[bytes] | None) -> tuple[bytes, ...]:
    """``keys`` (in ``replicas``' order) in the sorted order of a ``Membership``."""
    if not keys:
        return ()
    if len(keys) != len(replicas):
        raise ValueError("one key per replica")
    by_name = dict(zip(replicas, keys, strict=True))
    return tuple(by_name[r] for r in sorted(by_name))


def _by_start(p: EpochProof) -> int:
    return p.start


def _by_replica(v: ViewChange) -> str:
    return v.replica


def _by_seq(c: CheckpointCert) -> int:
    return c.seq


def _well_formed(e: Entry) -> bool:
    if e.kind is EntryKind.NOOP:
        return e.data == b""
    return e.kind is EntryKind.NORMAL and e.data != b""
