"""The consensus thread: one Raft core, its driver and the ledger, off the event loop.

The core is single-threaded by design, and executing a ``Ready`` means fsyncs (Raft log,
blocks); running all of it on one dedicated thread keeps the asyncio loop free for RPC
and peers. The loop thread talks to it through a queue (``post``); the thread talks back
only through the thread-safe callbacks it was given.

The leader pipelines: it keeps up to ``PIPELINE_BLOCKS`` blocks of its own in flight,
each built (and executed) on the one before it (``node.pipeline.speculation``), so building the
next block overlaps replicating and storing the last ones. It builds only when every
unapplied entry in its log is one of those, so a new leader first applies what its
predecessors left. A block built on one that was not committed as built is stale, and
``Ledger.apply`` skips it everywhere alike; its txs go back to the mempool.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from acl import validator_history
from consensus.config import RaftConfig
from consensus.raft import Raft
from consensus.types import (
    AppendEntries,
    ConfOp,
    Entry,
    EntryKind,
    Heartbeat,
    InstallSnapshot,
    InvariantViolation,
    Message,
    Role,
    Snapshot,
    Status,
)
from node.consensus_driver import snapshot_data
from node.consensus_driver.block_cut import BlockCutting
from node.consensus_driver.driver import Driver
from node.consensus_driver.raft_storage import LmdbRaftStorage
from node.pipeline.entry import block_timestamp_ms
from node.pipeline.ledger import Applied, ApplyOutcome, Ledger
from node.pipeline.mempool import Mempool
from node.pipeline.validator_proofs import set_changes
from node.runtime.metrics import NodeMetrics
from node.transport.messages import BlockResponse
from storage.blockstore import StoreError

log = logging.getLogger("grantchain.consensus")

INBOX_MESSAGES_MAX = 10_000
COMPACT_EVERY_ENTRIES = 256
"""Log entries (blocks) kept beyond the last snapshot; the core holds them in memory."""
COMPACT_EVERY_BYTES = 64 * 1024 * 1024
"""...or fewer, when applied entries since the last snapshot hold this many bytes (an
entry of 4,000 txs with its change set is ~2 MB: 256 of them would be 0.5 GB of RAM). A
follower that falls further behind catches up by fetching blocks."""
PIPELINE_BLOCKS = 3
"""The leader's own blocks in flight at once (proposed, not yet applied)."""
CATCH_UP_TIMEOUT_S = 5.0
CATCH_UP_ATTEMPTS = 6


def should_compact(applied_index: int, snapshot_index: int, applied_bytes: int) -> bool:
    """Whether to snapshot at ``applied_index``, given the last snapshot's index and the
    bytes of the entries applied since."""
    return applied_index > snapshot_index and (
        applied_index - snapshot_index > COMPACT_EVERY_ENTRIES
        or applied_bytes > COMPACT_EVERY_BYTES
    )


@dataclass(frozen=True, slots=True)
class CatchUpRequest:
    """Sent through ``request_blocks``: fetch committed blocks from a peer."""

    to: str
    start_height: int
    end_height: int


def next_conf_change(
    voters: tuple[str, ...], validators: tuple[str, ...], reachable: Callable[[str], bool]
) -> tuple[ConfOp, str] | None:
    """The next single-server change that brings the Raft ``voters`` to the governance
    ``validators``: an addition first (of a validator this node reaches: one it cannot
    reach yet would grow the quorum with a voter that cannot vote), then a removal."""
    for node in validators:
        if node not in voters and reachable(node):
            return ConfOp.ADD, node
    for node in voters:
        if node not in validators:
            return ConfOp.REMOVE, node
    return None


class ConsensusLoop(BlockCutting):
    def __init__(
        self,
        *,
        node_id: str,
        voters: tuple[str, ...],
        ledger: Ledger,
        mempool: Mempool,
        mempool_lock: threading.Lock,
        raft_config: RaftConfig,
        tick_s: float,
        block_txs_max: int,
        block_interval_s: float,
        block_bytes_max: int,
        send: Callable[[Message], None],
        request_blocks: Callable[[CatchUpRequest], None],
        on_applied: Callable[[Applied], None],
        on_fatal: Callable[[BaseException], None],
        clock_ms: Callable[[], int],
        seed: int,
        metrics: NodeMetrics,
        block_time_skew_ms_max: int = 10_000,
        reachable: Callable[[str], bool] | None = None,
    ) -> None:
        self.node_id = node_id
        self._reachable = reachable or (lambda _node_id: True)
        """Whether this node's link to a peer is up: a validator added by governance
        becomes a Raft voter only once the leader reaches it (``_follow_governance``)."""
        self.ledger = ledger
        self.mempool = mempool
        self.mempool_lock = mempool_lock
        self.tick_s = tick_s
        self.block_txs_max = block_txs_max
        self.block_interval_s = block_interval_s
        self._next_cut = 0.0
        self._cut_waiting = False
        self._proposed_at = 0.0
        self.metrics = metrics
        self.block_bytes_max = block_bytes_max
        self._send = send
        self._request_blocks = request_blocks
        self._on_applied = on_applied
        self._on_fatal = on_fatal
        self._clock_ms = clock_ms
        self.block_time_skew_ms_max = block_time_skew_ms_max
        self._distrusted: tuple[str, int] | None = None
        """(leader, term) whose blocks ran ahead of this node's clock: its messages are
        dropped for the rest of that term (``_future_block``)."""
        # Bounded, like every queue of the node: when the core falls behind, peer messages
        # are dropped (Raft retransmits) rather than piling up without limit.
        self._inbox: queue.Queue[object] = queue.Queue(maxsize=INBOX_MESSAGES_MAX)
        self._blocks: queue.Queue[BlockResponse] = queue.Queue(maxsize=4)
        self.inbox_dropped = 0
        self._stop = threading.Event()
        self.storage = LmdbRaftStorage(ledger.store, voters)
        self.core = Raft(
            node_id,
            self.storage,
            random.Random(seed),
            raft_config,
            applied=None,
        )
        self.driver = Driver(self.core, self.storage, self, self)
        self.status: Status = self.core.status()
        # Digests and proposal times of our proposed, unapplied blocks, oldest first.
        self._in_flight: collections.deque[tuple[bytes, float]] = collections.deque()
        self._applied_bytes = 0
        """Bytes of the entries applied since the last snapshot (this process's share)."""
        self._thread = threading.Thread(target=self._run, name="consensus", daemon=True)
        self.stopped = threading.Event()

    # -- the loop thread's side ----------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def post(self, msg: Message) -> None:
        try:
            self._inbox.put_nowait(msg)
        except queue.Full:
            self.inbox_dropped += 1

    def wake(self) -> None:
        """New txs are waiting: look at the mempool now rather than at the next tick."""
        with contextlib.suppress(queue.Full):  # a full inbox wakes the thread anyway
            self._inbox.put_nowait(None)

    def post_blocks(self, resp: BlockResponse) -> None:
        with contextlib.suppress(queue.Full):  # a response nobody waits for any more
            self._blocks.put_nowait(resp)

    def stop(self) -> None:
        self._stop.set()
        self.wake()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # -- Transport and Applier for the driver (called on this thread) --------------
    def send(self, msg: Message) -> None:
        if isinstance(msg, InstallSnapshot):
            certified = self._certified_snapshot(msg)
            if certified is None:
                return  # as if lost: the core sends it again after snapshot_retry_ticks
            msg = certified
        self._send(msg)

    def _certified_snapshot(self, msg: InstallSnapshot) -> InstallSnapshot | None:
        """``msg`` with its block's certificate in the data (``snapshot_data``), or None
        while this node has no quorum of signatures for that block stored yet."""
        height, _ = snapshot_data.target(msg.snapshot.data)
        store = self.ledger.store
        cert = store.certificate(height)
        with store.snapshot() as view:  # rare: rebuilt from the state each time
            history = validator_history.history(view, self.ledger.genesis)
        if len(cert) < history.in_force(height).quorum(self.ledger.genesis.consensus):
            log.info("snapshot for %s waits for the certificate of block %d", msg.to, height)
            return None
        try:
            changes = set_changes(store, history, store.certificate, height)
        except StoreError as exc:
            log.warning("snapshot for %s: %s", msg.to, exc)
            return None
        data = snapshot_data.certified_data(msg.snapshot.data, cert, changes)
        return dataclasses.replace(msg, snapshot=Snapshot(msg.snapshot.meta, data))

    def apply(self, entry: Entry) -> None:
        self._applied_bytes += len(entry.data)
        if entry.kind is not EntryKind.NORMAL:
            return
        t0 = time.perf_counter()
        result = self.ledger.apply(entry.data)
        self.metrics.block_apply.observe(time.perf_counter() - t0)
        if result.outcome is ApplyOutcome.SKIPPED:
            log.warning("skipped committed entry %d: %s", entry.index, result.reason)
        if self._in_flight and entry.digest == self._in_flight[0][0]:
            _, proposed_at = self._in_flight.popleft()
            self.metrics.block_replicate.observe(time.perf_counter() - proposed_at)
            if result.outcome is not ApplyOutcome.APPLIED:
                self._abandon_in_flight()
        elif self._in_flight:
            self._abandon_in_flight()  # another entry committed where ours were expected
        if result.outcome is ApplyOutcome.APPLIED:
            self.metrics.blocks_applied_from.labels(result.source).inc()
            if result.block is not None:
                skew_ms = result.block.header.timestamp_ms - self._clock_ms()
                self.metrics.block_time_skew_ms.set(skew_ms)
            # Out of the mempool before announced: Node.wait_committed counts on it.
            with self.mempool_lock:
                self.mempool.remove(result.tx_ids)
            self._on_applied(result)

    def restore(self, snapshot: Snapshot) -> None:
        """Raft §7: the leader compacted past us. Our state is the block store, so
        "installing" the snapshot means fetching the committed blocks it covers."""
        target_height, target_hash = snapshot_data.target(snapshot.data)
        store = self.ledger.store
        failures = 0  # consecutive requests that brought nothing; progress resets it
        if store.height < target_height:
            log.info(
                "installing snapshot at log index %d: catch-up of blocks %d..%d from peers",
                snapshot.meta.index,
                store.height + 1,
                target_height,
            )
        while store.height < target_height:
            leader = self.core.status().leader
            peers = [leader] if leader and leader != self.node_id else []
            peers += [v for v in snapshot.meta.voters if v != self.node_id and v not in peers]
            if failures >= CATCH_UP_ATTEMPTS * max(1, len(peers)) or not peers:
                raise InvariantViolation(
                    f"could not fetch blocks {store.height + 1}..{target_height} to install a snapshot"
                )
            before = store.height
            self._request_blocks(
                CatchUpRequest(peers[failures % len(peers)], store.height + 1, target_height)
            )
            try:
                resp = self._blocks.get(timeout=CATCH_UP_TIMEOUT_S)
            except queue.Empty:
                resp = BlockResponse("", ())
            for raw in resp.blocks:
                result = self.ledger.apply(raw)
                if result.outcome is ApplyOutcome.SKIPPED:
                    log.warning("catch-up block from %s skipped: %s", resp.frm, result.reason)
                    break
                if result.outcome is ApplyOutcome.APPLIED:
                    self.metrics.blocks_applied_from.labels(result.source).inc()
                    with self.mempool_lock:  # before the announcement, as in apply
                        self.mempool.remove(result.tx_ids)
                    self._on_applied(result)
            failures = 0 if store.height > before else failures + 1
        head = store.header(target_height)
        if head is None or head.hash != target_hash:
            raise InvariantViolation(
                f"after catch-up, block {target_height} differs from the snapshot's"
            )
        log.info(
            "snapshot at log index %d installed: height %d", snapshot.meta.index, target_height
        )

    # -- the consensus thread --------------------------------------------------------
    def _run(self) -> None:
        try:
            # A snapshot persisted before a crash may be ahead of the block store (the
            # crash came during its catch-up): finish installing it before applying the
            # entries that follow it.
            snapshot = self.storage.snapshot()
            if snapshot.meta.index > 0:
                self.restore(snapshot)
            self._loop()
        except BaseException as exc:  # a violated invariant stops the node
            log.critical("consensus stopped: %s", exc, exc_info=True)
            self._on_fatal(exc)
        finally:
            self.storage.flush()
            self.stopped.set()

    def _loop(self) -> None:
        next_tick = time.monotonic() + self.tick_s
        while not self._stop.is_set():
            wake_at = min(next_tick, self._next_cut) if self._cut_waiting else next_tick
            timeout = max(0.0, wake_at - time.monotonic())
            try:
                item = self._inbox.get(timeout=timeout)
                self._handle(item)
                while True:  # drain what has arrived meanwhile
                    self._handle(self._inbox.get_nowait())
            except queue.Empty:
                pass
            now = time.monotonic()
            if now >= next_tick:
                self.core.tick()
                next_tick = max(next_tick + self.tick_s, now)
            self._follow_governance()
            self._maybe_propose()
            self.driver.process()
            self._after_process()

    def _handle(self, item: object) -> None:
        if item is None:
            return
        if isinstance(item, AppendEntries | Heartbeat) and self._from_distrusted(item):
            return
        if isinstance(item, AppendEntries) and self._future_block(item):
            return
        if isinstance(item, InstallSnapshot):
            try:
                snapshot_data.check_certified(item.snapshot.data, self.ledger.genesis)
            except snapshot_data.SnapshotDataError as exc:
                self.metrics.bad_peer_messages.inc()
                log.warning("snapshot from %s refused: %s", item.frm, exc)
                return
        self.core.step(item)  # type: ignore[arg-type]

    def _future_block(self, msg: AppendEntries) -> bool:
        """Whether ``msg`` carries a block whose time is more than
        ``block_time_skew_ms_max`` ahead of this node's clock. Such a message is not
        taken (so never acknowledged: the block cannot commit unless a majority's clocks
        agree with it), and the leader that sent it is distrusted for the rest of its
        term: its heartbeats are dropped too, so this follower's election timer runs out
        and, with the other followers, it elects a leader whose clock is right (the fast
        leader's extra entries were never committed, and are overwritten)."""
        limit = self._clock_ms() + self.block_time_skew_ms_max
        for entry in msg.entries:
            if entry.kind is not EntryKind.NORMAL:
                continue
            ts = block_timestamp_ms(entry.data)
            if ts is not None and ts > limit:
                self.metrics.blocks_refused_future.inc()
                log.warning(
                    "leader %s proposed a block %d ms ahead of this node's clock (limit %d "
                    "ms): not taken; its messages are dropped for the rest of term %d",
                    msg.frm,
                    ts - (limit - self.block_time_skew_ms_max),
                    self.block_time_skew_ms_max,
                    msg.term,
                )
                self._distrusted = (msg.frm, msg.term)
                return True
        return False

    def _from_distrusted(self, msg: AppendEntries | Heartbeat) -> bool:
        return self._distrusted is not None and self._distrusted == (msg.frm, msg.term)

    def _follow_governance(self) -> None:
        """Raft follows governance: while the voters differ from the active validators of
        the ACL state at the applied head, the leader proposes the next single-server
        change (additions first, each once this node reaches the added validator; the
        core takes one at a time and only once it has committed in its term). It waits
        for its blocks in flight to apply, so the change follows the block that made it."""
        st = self.core.status()
        if st.role is not Role.LEADER or self._in_flight or st.last_index != st.applied_index:
            return
        want = self.ledger.validator_ids()
        if want == st.voters:
            return
        change = next_conf_change(st.voters, want, self._reachable)
        if change is None:
            return
        op, node = change
        if self.core.propose_conf_change(op, node):
            log.info(
                "validator set by governance is %s: proposing Raft change %s %s",
                ", ".join(want),
                op.value,
                node,
            )

    def _maybe_propose(self) -> None:
        self._cut_waiting = False
        st = self.core.status()
        if st.role is not Role.LEADER:
            if self._in_flight:
                self._abandon_in_flight()
            return
        if self.ledger.in_flight != len(self._in_flight):
            self._abandon_in_flight()  # never expected; start again from the committed head
        if len(self._in_flight) >= PIPELINE_BLOCKS or st.last_index - st.applied_index != len(
            self._in_flight
        ):
            return
        cut = self._cut_block(st.term)
        if cut is None:
            return
        block, t0 = cut
        data = self.ledger.entry(block)
        self.metrics.block_build.observe(time.perf_counter() - t0)
        if self.core.propose(data):
            self._in_flight.append((Entry(0, 0, data).digest, time.perf_counter()))
            self.metrics.block_pipeline_depth.observe(len(self._in_flight))
        else:
            self._abandon_in_flight()

    def _abandon_in_flight(self) -> None:
        """Our blocks in flight will not all commit as built: forget them, and make their
        txs eligible again (a tx a block did commit leaves the mempool when applied)."""
        self._in_flight.clear()
        self.ledger.abandon()
        with self.mempool_lock:
            self.mempool.release()

    def _after_process(self) -> None:
        st = self.core.status()
        self.status = st
        snap_index = self.storage.snapshot().meta.index
        if should_compact(st.applied_index, snap_index, self._applied_bytes):
            head = self.ledger.store.head()
            data = snapshot_data.local_data(head.height if head else 0, head.hash if head else b"")
            self.driver.compact(st.applied_index, data)
            self._applied_bytes = 0
