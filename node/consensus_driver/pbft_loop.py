"""The consensus thread of a PBFT node: the ``Pbft`` core, its ``PbftDriver``, the LMDB
``PbftStorage`` and the ledger, off the event loop (as ``loop.ConsensusLoop`` for Raft,
with the same face to ``node.app``: ``post``, ``wake``, ``status``, ``start``/``stop``).

- Every replica holds every client tx in its mempool (the node forwards admitted txs
  to all replicas; the mempool deduplicates by tx id). While any waits, the core's
  view-change timer runs (``Pbft.set_waiting``, CL §4.5.2): a primary that orders
  nothing, or only blocks the backups refuse, is replaced.
- The primary builds blocks from its mempool, pipelined as Raft's leader does
  (``node.pipeline.speculation``), and proposes each as one request batch. It builds only
  once everything ordered before in its view has executed, so a new primary first
  applies what the last view's O set carried.
- A backup validates a pre-prepare's block (``pbft_validate``) before the core sees the
  pre-prepare: the core prepares only what was found valid. A block whose parent has
  not been validated yet waits (bounded) and is tried again after each step. The txs
  this node admitted itself (every client tx reaches every replica) are not decoded
  or verified again.
- The inbox is drained until empty before the driver runs (what arrives while a block
  is validated joins the same Ready, so one store transaction), in rounds of at most
  ``DRAIN_MESSAGES_MAX`` messages, each stepped in order after the vote signatures in
  it that the core would check (this view, inside the window, one per replica, kind
  and sequence number) are verified in one batch (``Membership.prime``): the core then
  finds the verdicts remembered.
- Committed entries are applied in order by the ledger, which re-executes and verifies
  every PBFT block (``node.pipeline.ledger``) unless this backup validated it: then the
  validation's execution is written (``BlockValidator.kept``); the header signatures
  each node then exchanges (``node.app``) are the block's certificate, 2f+1 of n
  (``chain.receipt``).
- The replica set follows governance (``Pbft.note_executed``, docs/architecture.md §9):
  every applied entry is reported to the core, with the new set when its block changed
  the active validators; the core orders with it from the checkpoint after the window.
  The epochs the core returns are kept in ``DATA_DIR/pbft-epochs.json`` (written before
  the next step) and given back at a restart; a change whose entry is replayed after a
  restart (the ledger holds the block already) is found by its height in the history
  the state keeps. A node outside the genesis starts as a non-voting replica, catches
  up from the peers of its config, and votes from the epoch that adds it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from acl import validator_history
from chain import signing
from chain.genesis import Genesis, Validator
from chain.tx import Tx
from consensus.pbft import Pbft
from consensus.pbft_config import PbftConfig
from consensus.pbft_messages import NULL_DIGEST, Checkpoint, Commit, Envelope, Prepare, PrePrepare
from consensus.pbft_signing import Ed25519Signer, Ed25519Verifier, Verifier
from consensus.pbft_storage import Decision
from consensus.types import Entry, EntryKind, Role, Snapshot, Status
from node.consensus_driver import snapshot_data
from node.consensus_driver.block_cut import BlockCutting
from node.consensus_driver.driver import PbftDriver
from node.consensus_driver.loop import INBOX_MESSAGES_MAX, PIPELINE_BLOCKS, CatchUpRequest
from node.consensus_driver.pbft_catch_up import CertifiedCatchUp
from node.consensus_driver.pbft_metrics import PbftMetrics
from node.consensus_driver.pbft_storage import LmdbPbftStorage
from node.consensus_driver.pbft_validate import BlockValidator, Verdict, VerifyBatch
from node.pipeline.entry import encode_entry
from node.pipeline.ledger import Applied, ApplyOutcome, Ledger
from node.pipeline.mempool import Mempool
from node.runtime.metrics import NodeMetrics
from node.transport.messages import CertifiedBlocks

log = logging.getLogger("grantchain.pbft")

CHECKPOINT_INTERVAL = 4
KEEP_COMMITTED_ENTRIES = 1024
"""Committed entries the PBFT store keeps beyond what is applied: what state transfer
serves to a replica that fell behind (CL §5.3). A replica further behind installs the
state of a stable checkpoint instead (``pbft_catch_up``)."""
LATER_MAX = 64
"""Pre-prepares held while their block's parent is not validated yet."""
CHECKED_MAX = 1024
"""Verdicts remembered by digest (a retransmitted pre-prepare is not validated again)."""
DRAIN_MESSAGES_MAX = 1024
"""Messages taken from the inbox at once: their vote signatures are verified in one
batch, then each is stepped."""
EPOCHS_FILE = "pbft-epochs.json"
"""The replica sets governance gave the core, with the sequence number each orders from."""


def _verifier(validators: Sequence[Validator]) -> Verifier:
    return Ed25519Verifier({v.node_id: v.public_key for v in validators})


def read_epochs(path: Path) -> list[tuple[int, tuple[Validator, ...]]]:
    """The epochs a node persisted (``EPOCHS_FILE``), in order; none if it has none."""
    if not path.exists():
        return []
    doc = json.loads(path.read_text())
    return [
        (
            int(e["start"]),
            tuple(Validator(v[0], v[1], bytes.fromhex(v[2])) for v in e["validators"]),
        )
        for e in doc
    ]


def write_epochs(path: Path, epochs: Sequence[tuple[int, Sequence[Validator]]]) -> None:
    """Replace ``path`` atomically and durably."""
    doc = [
        {"start": start, "validators": [[v.node_id, v.org_id, v.public_key.hex()] for v in vs]}
        for start, vs in epochs
    ]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def block_bytes_max(frame_bytes_max: int) -> int:
    """The largest block a PBFT primary builds: a view change's prepared entries (at most
    a checkpoint interval and the pipeline above the stable checkpoint, twice over for
    slack) must fit one peer frame."""
    return max(64 * 1024, frame_bytes_max // (2 * (CHECKPOINT_INTERVAL + PIPELINE_BLOCKS + 1)))


def pbft_config(*, election_timeout_ticks: int, heartbeat_ticks: int) -> PbftConfig:
    """The node's PBFT timers from its Raft ones (same ``tick_ms``): a view change after
    three election timeouts without progress, status hints every 5 heartbeats.

    Entries are whole blocks, and a view-change message carries every prepared entry
    above the stable checkpoint: a checkpoint every ``CHECKPOINT_INTERVAL`` blocks keeps
    that to a few blocks (see ``block_bytes_max``), and commit proofs go a few at a time."""
    return PbftConfig(
        checkpoint_interval=CHECKPOINT_INTERVAL,
        log_window=4 * CHECKPOINT_INTERVAL,
        catch_up_batch=2,
        view_change_timeout_ticks=max(2, 3 * election_timeout_ticks),
        # A status hint makes the peers that are ahead retransmit whole blocks to a
        # replica that looks stuck: not every heartbeat, or the retransmissions crowd
        # out the protocol's own messages while blocks take longer than a heartbeat.
        status_interval_ticks=max(1, 5 * heartbeat_ticks),
        state_retry_ticks=max(2, election_timeout_ticks // 2),
        max_pending_requests=4 * PIPELINE_BLOCKS,
        # Checkpoints sign the block store's head too (``apply``), so a replica whose
        # missing entries are gone installs a certified head (``restore``).
        app_checkpoints=True,
    )


class PbftConsensusLoop(BlockCutting):
    def __init__(
        self,
        *,
        node_id: str,
        genesis: Genesis,
        node_key: signing.PrivateKey,
        data_dir: Path,
        ledger: Ledger,
        mempool: Mempool,
        mempool_lock: threading.Lock,
        config: PbftConfig,
        tick_s: float,
        block_txs_max: int,
        block_interval_s: float,
        block_bytes_max: int,
        verify_batch: VerifyBatch,
        send: Callable[[Envelope], None],
        on_applied: Callable[[Applied], None],
        on_fatal: Callable[[BaseException], None],
        clock_ms: Callable[[], int],
        metrics: NodeMetrics,
        block_time_skew_ms_max: int = 10_000,
        reply_bytes_max: int | None = None,
        request_blocks: Callable[[CatchUpRequest], None] | None = None,
    ) -> None:
        self.node_id = node_id
        self.ledger = ledger
        self.mempool = mempool
        self.mempool_lock = mempool_lock
        self.tick_s = tick_s
        self.block_txs_max = block_txs_max
        self.block_interval_s = block_interval_s
        self.block_bytes_max = block_bytes_max
        self.metrics = metrics
        self.pbft_metrics = PbftMetrics(metrics.registry)
        self._send = send
        self._on_applied = on_applied
        self._on_fatal = on_fatal
        self._catch_up = CertifiedCatchUp(
            node_id=node_id,
            ledger=ledger,
            request_blocks=request_blocks or (lambda _req: None),
            on_applied=self._applied_by_catch_up,
            on_refused=self._catch_up_refused,
        )
        self._clock_ms = clock_ms
        self._next_cut = 0.0
        self._cut_waiting = False
        self._inbox: queue.Queue[Envelope | None] = queue.Queue(maxsize=INBOX_MESSAGES_MAX)
        self.inbox_dropped = 0
        self._stop = threading.Event()
        first = sorted(genesis.validators, key=lambda v: v.node_id)
        replicas = tuple(v.node_id for v in first)
        self.storage = LmdbPbftStorage(data_dir / "pbft", replicas)
        self.core = Pbft(
            node_id,
            replicas,
            self.storage,
            Ed25519Signer(node_key),
            _verifier(genesis.validators),
            config,
            applied=self.storage.snapshot().meta.index,
            follow_membership=True,
            keys=[v.public_key for v in first],
        )
        self._epochs_path = data_dir / EPOCHS_FILE
        self._epochs = read_epochs(self._epochs_path)
        for start, validators in self._epochs:
            self.core.restore_epoch(
                start,
                [v.node_id for v in validators],
                _verifier(validators),
                keys=[v.public_key for v in validators],
            )
        with ledger.store.snapshot() as view:
            history = validator_history.history(view, genesis)
        self._changes_by_height = {s.since_height: s.validators for s in history.changes()}
        """Changes the state made, by height: for a replayed entry after a restart."""
        if ledger.store.height > 0:
            # Blocks applied, and yet the PBFT store may be empty: then it was lost.
            self.core.lost_store()
        self.driver = PbftDriver(
            self.core,
            self.storage,
            self,
            self,
            on_decision=self._on_decision,
            reply_bytes_max=reply_bytes_max,
        )
        self.validator = BlockValidator(
            ledger.store,
            genesis,
            verify_batch,
            clock_ms=clock_ms,
            skew_ms_max=block_time_skew_ms_max,
            admitted=self._admitted,
        )
        self.status: Status = self.core.status()
        self._in_flight: collections.deque[tuple[bytes, float]] = collections.deque()
        self._later: dict[tuple[int, int], Envelope] = {}
        self._checked: collections.OrderedDict[bytes, Verdict] = collections.OrderedDict()
        self._was_primary = False
        self._view = self.core.view
        self._applied_seq = self.storage.snapshot().meta.index
        """The last sequence number the ledger applied (the core's ``executed`` runs
        ahead of it between a delivery and the driver's apply)."""
        self._stable = self.core.stable.seq
        self._thread = threading.Thread(target=self._run, name="consensus", daemon=True)
        self.stopped = threading.Event()

    # -- the event loop's side ---------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def post(self, msg: Envelope) -> None:
        try:
            self._inbox.put_nowait(msg)
        except queue.Full:
            self.inbox_dropped += 1

    def post_blocks(self, resp: CertifiedBlocks) -> None:
        """A peer's blocks for a state install (any thread)."""
        self._catch_up.post(resp)

    def wake(self) -> None:
        with contextlib.suppress(queue.Full):
            self._inbox.put_nowait(None)

    def stop(self) -> None:
        self._stop.set()
        self.wake()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # -- Transport and Applier for the driver (this thread) -----------------------------
    def send(self, msg: Envelope) -> None:
        self._send(msg)

    def apply(self, entry: Entry) -> None:
        self._apply_entry(entry)
        if entry.index % self.core.cfg.checkpoint_interval == 0:
            # The core signs its checkpoint with the state this entry left.
            self.core.app_checkpoint(entry.index, self._app_state())

    def _app_state(self) -> bytes:
        head = self.ledger.store.head()
        return snapshot_data.local_data(head.height if head else 0, head.hash if head else b"")

    def _apply_entry(self, entry: Entry) -> None:
        self._applied_seq = entry.index
        if entry.kind is not EntryKind.NORMAL:
            self.core.note_executed(entry.index)
            return
        t0 = time.perf_counter()
        result = self.ledger.apply(entry.data, kept=self.validator.kept)
        self.metrics.block_apply.observe(time.perf_counter() - t0)
        self._note_membership(entry.index, result)
        if result.outcome is ApplyOutcome.SKIPPED:
            log.warning("skipped committed entry %d: %s", entry.index, result.reason)
        if self._in_flight and entry.digest == self._in_flight[0][0]:
            _, proposed_at = self._in_flight.popleft()
            self.metrics.block_replicate.observe(time.perf_counter() - proposed_at)
            if result.outcome is not ApplyOutcome.APPLIED:
                self._abandon_in_flight()
        elif self._in_flight:
            self._abandon_in_flight()
        if result.outcome is ApplyOutcome.APPLIED:
            self.metrics.blocks_applied_from.labels(result.source).inc()
            with self.mempool_lock:
                self.mempool.remove(result.tx_ids)
            self._on_applied(result)

    def _note_membership(self, seq: int, result: Applied) -> None:
        """Tell the core what entry ``seq`` did to the replica set (module doc)."""
        validators = result.validators if result.outcome is ApplyOutcome.APPLIED else None
        if validators is None and result.outcome is ApplyOutcome.SKIPPED and result.block:
            # Replayed after a restart: this block was applied before (PBFT commits one
            # entry per sequence number, so a block at a taken height is that block).
            validators = self._changes_by_height.get(result.block.header.height)
        if validators is None:
            self.core.note_executed(seq)
            return
        members = tuple(sorted(validators, key=lambda v: v.node_id))
        start = self.core.note_executed(
            seq,
            [v.node_id for v in members],
            _verifier(members),
            keys=[v.public_key for v in members],
        )
        if start is None:
            return
        kept = [(s, vs) for s, vs in self._epochs if s < start]
        self._epochs = [*kept, (start, members)]
        write_epochs(self._epochs_path, self._epochs)
        log.info(
            "entry %d changes the replica set to %s: it orders from %d on",
            seq,
            ", ".join(v.node_id for v in members),
            start,
        )

    def _admitted(self, tx_ids: Sequence[bytes]) -> list[Tx | None]:
        """The txs of a proposed block that this node admitted (``BlockValidator``):
        every tx in the mempool was decoded and signature-checked as it came in."""
        with self.mempool_lock:
            decoded = self.mempool.decoded
            return [decoded(t) for t in tx_ids]

    def restore(self, snapshot: Snapshot) -> None:
        """Install the state of a stable checkpoint (the core checked its 2f+1
        certificate): fetch the blocks up to the head it names, each certified
        (``pbft_catch_up``). Entries after it apply once this returns."""
        self._abandon_in_flight()
        self._catch_up.run(snapshot.data, snapshot.meta.voters)
        self._applied_seq = max(self._applied_seq, snapshot.meta.index)
        self.pbft_metrics.state_installs.inc()

    def _applied_by_catch_up(self, result: Applied) -> None:
        self.metrics.blocks_applied_from.labels(result.source).inc()
        with self.mempool_lock:  # before the announcement, as in apply
            self.mempool.remove(result.tx_ids)
        self._on_applied(result)

    def _catch_up_refused(self, peer: str, why: str) -> None:
        self.pbft_metrics.catch_up_refused.inc()
        if why != "no answer":
            self.metrics.bad_peer_messages.inc()

    def _on_decision(self, d: Decision) -> None:
        self.pbft_metrics.decisions.labels(d.source).inc()

    # -- the consensus thread ------------------------------------------------------------
    def _run(self) -> None:
        try:
            snapshot = self.storage.snapshot()
            if snapshot.data:
                # An installed state (a compaction's snapshot has no data): the node may
                # have stopped before its blocks were all fetched.
                self.restore(snapshot)
            self._loop()
        except BaseException as exc:
            log.critical("consensus stopped: %s", exc, exc_info=True)
            self._on_fatal(exc)
        finally:
            self.storage.close()
            self.stopped.set()

    def _loop(self) -> None:
        next_tick = time.monotonic() + self.tick_s
        while not self._stop.is_set():
            wake_at = min(next_tick, self._next_cut) if self._cut_waiting else next_tick
            timeout = max(0.0, wake_at - time.monotonic())
            batch: list[Envelope | None] = []
            with contextlib.suppress(queue.Empty):
                batch.append(self._inbox.get(timeout=timeout))
            while batch:
                if len(batch) > 1:
                    self._prime(batch)
                for item in batch:
                    self._handle(item)
                # What came while these were stepped (a block's validation takes
                # milliseconds) joins the same Ready: one store transaction, not two.
                batch = self._take_waiting()
            now = time.monotonic()
            if now >= next_tick:
                self.core.set_waiting(self._requests_waiting())
                self.core.tick()
                next_tick = max(next_tick + self.tick_s, now)
            self._maybe_propose()
            self.driver.process()
            self._retry_later()
            self._after_process()

    def _take_waiting(self) -> list[Envelope | None]:
        """The messages in the inbox now, at most ``DRAIN_MESSAGES_MAX``."""
        batch: list[Envelope | None] = []
        with contextlib.suppress(queue.Empty):
            while len(batch) < DRAIN_MESSAGES_MAX:
                batch.append(self._inbox.get_nowait())
        return batch

    def _prime(self, batch: Sequence[Envelope | None]) -> None:
        """Verify in one batch the vote signatures of ``batch`` that stepping it would
        check one by one: of this view (checkpoints have none) and inside the window,
        from a peer, one per (kind, view, seq, replica), pre-prepares from the primary
        only. A message the core then ignores costs one signature in the batch; a
        replica can make it verify no more than its messages of the window."""
        core = self.core
        if not core.active:
            return
        view, low, high, primary = core.view, core.stable.seq, core.window_top, core.primary
        seen: set[tuple[int, int, int, str]] = set()
        votes: list[Prepare | Commit | PrePrepare | Checkpoint] = []
        for env in batch:
            if env is None:
                continue
            m = env.body
            if isinstance(m, (Prepare, Commit)):
                if m.view != view:
                    continue
            elif isinstance(m, PrePrepare):
                if m.view != view or m.replica != primary:
                    continue
            elif not isinstance(m, Checkpoint):
                continue
            if not low < m.seq <= high or m.replica == self.node_id:
                continue
            key = (int(m.kind), m.view, m.seq, m.replica)
            if key not in seen:
                seen.add(key)
                votes.append(m)
        primed = core.members.prime(votes)
        if primed:
            self.pbft_metrics.signatures_primed.inc(primed)

    def _requests_waiting(self) -> bool:
        with self.mempool_lock:
            return self.mempool.pending() > 0

    def _handle(self, item: Envelope | None) -> None:
        if item is None:
            return
        body = item.body
        if isinstance(body, PrePrepare) and not self._validated(item, body):
            return
        self.core.step(item)

    def _validated(self, env: Envelope, pp: PrePrepare) -> bool:
        """Whether ``pp`` may reach the core: a valid block, or a message the core will
        judge itself (not for this view, not from its primary, a null request)."""
        core = self.core
        if (
            not core.active
            or pp.view != core.view
            or pp.replica != core.primary
            or pp.replica == self.node_id
            or pp.seq <= core.executed
            or (pp.digest == NULL_DIGEST and not pp.payload)
            or core.pre_prepared(pp.view, pp.seq)  # a retransmission, or a new view's O
        ):
            return True
        known = self._checked.get(pp.digest)
        if known is Verdict.VALID:
            return True
        if known is Verdict.INVALID:
            return False
        if not core.members.signed_ok(pp):
            return False  # forged: not worth executing its block
        check = self.validator.check(pp.payload, primary=pp.replica, view=pp.view)
        if check.verdict is Verdict.LATER:
            if len(self._later) < LATER_MAX:
                self._later[(pp.view, pp.seq)] = env
            return False
        self._checked[pp.digest] = check.verdict
        while len(self._checked) > CHECKED_MAX:
            self._checked.popitem(last=False)
        if check.verdict is Verdict.INVALID:
            self.pbft_metrics.blocks_refused.inc()
            log.warning(
                "primary %s proposed an invalid block at view %d seq %d: %s",
                pp.replica,
                pp.view,
                pp.seq,
                check.reason,
            )
            return False
        return True

    def _retry_later(self) -> None:
        while self._later:
            progress = False
            for key in sorted(self._later):
                env = self._later.pop(key)
                before = len(self._later)
                self._handle(env)
                if len(self._later) == before:  # not put back: decided
                    progress = True
            if not progress:
                return
            self.driver.process()

    def _maybe_propose(self) -> None:
        self._cut_waiting = False
        core = self.core
        if not core.is_primary:
            if self._in_flight:
                self._abandon_in_flight()
            if self._was_primary:
                core.drop_requests()
                self._was_primary = False
            return
        self._was_primary = True
        if self.ledger.in_flight != len(self._in_flight):
            self._abandon_in_flight()
        if len(self._in_flight) >= PIPELINE_BLOCKS:
            return
        if core.last_assigned != self._applied_seq + len(self._in_flight):
            return  # entries ordered before ours still to apply (a new view's O set)
        if core.last_assigned + 1 > core.window_top:
            return
        cut = self._cut_block(core.view)
        if cut is None:
            return
        block, t0 = cut
        # No change set: every PBFT replica re-executes (node.pipeline.ledger), and the
        # entry travels in pre-prepares, view changes and catch-up many times over.
        data = encode_entry(block.to_bytes(), None)
        self.metrics.block_build.observe(time.perf_counter() - t0)
        if core.propose(data):
            self._in_flight.append((Entry(0, 0, data).digest, time.perf_counter()))
            self.metrics.block_pipeline_depth.observe(len(self._in_flight))
        else:
            self._abandon_in_flight()

    def _abandon_in_flight(self) -> None:
        self._in_flight.clear()
        self.ledger.abandon()
        with self.mempool_lock:
            self.mempool.release()

    def _after_process(self) -> None:
        core = self.core
        self.status = core.status()
        m = self.pbft_metrics
        m.view.set(core.view)
        m.executed.set(core.executed)
        m.replicas.set(core.members.n)
        m.member.set(1 if core.is_member else 0)
        if core.view > self._view:
            m.view_changes.inc(core.view - self._view)
            self._view = core.view
        if core.stable.seq > self._stable:
            m.checkpoints.inc()
            self._stable = core.stable.seq
            m.stable_checkpoint.set(self._stable)
        snap_index = self.storage.snapshot().meta.index
        keep_from = core.executed - KEEP_COMMITTED_ENTRIES
        if keep_from - snap_index >= KEEP_COMMITTED_ENTRIES // 4:
            self.driver.compact(keep_from, b"")

    def role(self) -> Role:
        return self.status.role
