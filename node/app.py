"""The composition root: one node process, wired from its config.

Threads: the asyncio loop (uvloop) runs RPC, peers and waiters; the consensus thread
runs the core the genesis names (Raft, or PBFT: ``node.consensus_driver.pbft_loop``),
the driver and the ledger (LMDB writes happen on the store's own writer
thread); a small pool verifies signatures for admission. Every queue is bounded: the
mempool, each peer's send queue, and the commit waiters.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import signal
import threading
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from acl import validator_history
from acl.results import label
from chain import signing
from chain.block import Block, BlockHeader
from chain.genesis import Genesis
from chain.hashing import leaf_hash
from chain.kernels import backend, parallel
from chain.receipt import Receipt
from chain.validator_sets import ValidatorSet
from consensus.config import RaftConfig
from consensus.pbft_messages import Envelope
from consensus.types import Message, Role
from node.consensus_driver.loop import CatchUpRequest, ConsensusLoop
from node.consensus_driver.pbft_loop import PbftConsensusLoop, pbft_config
from node.consensus_driver.pbft_loop import block_bytes_max as pbft_block_bytes_max
from node.consensus_driver.verified import RememberingVerifier, VerifyBatch
from node.pipeline.admission import Admitted, Candidate, Status, screen
from node.pipeline.certificates import CertificateCollector
from node.pipeline.ledger import Applied, Ledger
from node.pipeline.mempool import AddOutcome, Mempool
from node.pipeline.sender_rate import SenderRates
from node.pipeline.signature_answers import SignatureAnswers
from node.pipeline.validator_proofs import with_validator_sets
from node.runtime.config import NodeConfig
from node.runtime.keys import load_private_key
from node.runtime.metrics import NodeMetrics
from node.runtime.waits import wait_done, wait_set
from node.transport import tls
from node.transport.messages import (
    CONSENSUS_MESSAGES,
    PBFT_MESSAGES,
    WIRE,
    BlockRequest,
    BlockResponse,
    CertifiedBlocks,
    ForwardTxs,
    HeaderSig,
)
from node.transport.peer import PeerNetwork, PeerOptions
from node.transport.wire import WireError
from storage.blockstore import TxLocation
from storage.lmdb_store import LmdbBlockStore
from storage.receipts import build_receipts

log = logging.getLogger("grantchain.node")

MEMPOOL_BYTES_MAX = 512 * 1024 * 1024
WAITERS_MAX = 200_000
MEMPOOL_FULL_ERROR = "the mempool is full; retry later"
SENDER_FULL_ERROR = (
    "sender_quota: this sender key holds its share of the mempool (mempool_sender_percent); "
    "retry later"
)
SENDER_RATE_ERROR = (
    "sender_rate: this sender key sent more than sender_txs_per_s_max txs a second; retry later"
)
CATCH_UP_BLOCKS_MAX = 64
CATCH_UP_BYTES_MAX = 32 * 1024 * 1024
RECERTIFY_HEIGHTS = 256
"""At start, the blocks this far below the head whose certificates are checked."""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class _CommitWait:
    """One ``?wait=commit`` request: the txs it still waits for, and one future that is
    resolved when none is missing (one future per request, not per tx)."""

    __slots__ = ("done", "found", "missing")

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.found: dict[bytes, TxLocation] = {}
        self.missing = 0

    def arrived(self, tx_id: bytes, loc: TxLocation) -> None:
        self.found[tx_id] = loc
        self.missing -= 1
        if not self.missing and not self.done.done():
            self.done.set_result(None)


class Node:
    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.node_id = cfg.node_id
        self.genesis = Genesis.from_json(Path(cfg.genesis).read_text())
        in_genesis = cfg.node_id in {v.node_id for v in self.genesis.validators}
        self.node_key = load_private_key(cfg.node_key)
        self.metrics = NodeMetrics()
        self.store = LmdbBlockStore.open(cfg.data_dir)
        self.kernels = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kernels")
        self.pbft = self.genesis.consensus == "pbft"
        # PBFT: a backup verifies a block's signatures as it validates the proposal, on
        # the consensus thread itself (the kernel pool is busy admitting the txs every
        # replica receives: a proposal must not queue behind them), and the ledger then
        # finds them remembered when the block commits.
        self._verify: VerifyBatch = (
            RememberingVerifier(signing.verify_batch) if self.pbft else self._verify_in_parallel
        )
        self.ledger = Ledger(self.store, self.genesis, self._verify, reexecute=cfg.reexecute_blocks)
        self.ledger.ensure_genesis()
        self.mempool = Mempool(
            txs_max=cfg.mempool_txs_max,
            bytes_max=MEMPOOL_BYTES_MAX,
            sender_txs_max=max(1, cfg.mempool_txs_max * cfg.mempool_sender_percent // 100),
        )
        self.mempool_lock = threading.Lock()
        self.sender_rates = SenderRates(cfg.sender_txs_per_s_max)
        self.io = ThreadPoolExecutor(max_workers=2, thread_name_prefix="io")
        with self.store.snapshot() as view:
            history = validator_history.history(view, self.genesis)
            active = validator_history.active_validators(view)
            addresses = validator_history.peer_addresses(view)
            applied_height = self.store.height
        if not history.latest.same_members(ValidatorSet.of(0, active)):
            raise ValueError(
                "the validator-set history rebuilt from the governance proposals ends in "
                f"{history.latest.node_ids}, the state's active validators are "
                f"{tuple(v.node_id for v in active)}"
            )
        # The node key is the one the validator set in force names: the genesis one until
        # governance rotates it (remove the validator, add it back with a new key: the
        # node then restarts with the new key, once it has applied the change).
        mine = {v.node_id: v.public_key for v in active}.get(self.node_id)
        if mine is not None and mine != signing.public_key_bytes(self.node_key):
            named = (
                "the genesis"
                if in_genesis and mine == self.genesis.validator(cfg.node_id).public_key
                else "governance"
            )
            raise ValueError(
                f"{cfg.node_key}: not the key {named} names for {cfg.node_id} as of height "
                f"{applied_height} (a rotated key: start with the old key until this node "
                "has applied the change that adds the new one)"
            )
        if not in_genesis and mine is None:
            log.warning(
                "node %s is not a validator of genesis %s nor, as far as this node has "
                "applied, added by governance: it follows the chain and takes part once a "
                "governance tx adds it",
                self.node_id,
                self.genesis.chain_id,
            )
        self.validator_history = history
        """Who certifies each height (``chain.validator_sets``): rebuilt from the state at
        start, then each applied block that changes the set adds a step."""
        self._peer_addresses = addresses
        """Peer addresses governance gave validators it added (``node_address``): this
        node dials them (``_dial_validators``) besides the peers of its config."""
        self.certs = CertificateCollector(
            history, self.node_id, self.node_key, applied_height=applied_height
        )
        self._answers = SignatureAnswers()
        self._waiters: dict[bytes, list[_CommitWait]] = {}
        self._waiter_count = 0
        self._cert_events: dict[int, asyncio.Event] = {}
        self._certified_height = 0
        self._head_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fatal: BaseException | None = None
        self._stopping = asyncio.Event()
        self.peers: PeerNetwork | None = None
        self.consensus: ConsensusLoop | PbftConsensusLoop | None = None
        self.warmup_s = 0.0

    def _verify_in_parallel(
        self, keys: Sequence[bytes], messages: Sequence[bytes], signatures: Sequence[bytes]
    ) -> list[bool]:
        """A block's signatures, split over the kernel threads (the kernels drop the GIL)."""
        # Several chunks per thread, so one thread's Python work overlaps the other's kernel.
        parts = 8 if len(keys) >= 256 else 2 if len(keys) >= 64 else 1
        return parallel.verify_batch(
            self.kernels, signing.verify_batch, keys, messages, signatures, parts
        )

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        kernels = backend.active()
        kernels.warmup()  # raises KernelMismatch on a machine where a kernel disagrees
        self.warmup_s = time.perf_counter() - t0
        log.info("kernels %s warmed up and self-checked in %.2f s", kernels.name, self.warmup_s)
        # The keys that sign most: the genesis identities and the validators.
        kernels.register_keys(
            [i.public_key for i in self.genesis.identities]
            + [v.public_key for v in self.genesis.validators]
        )
        cfg = self.cfg
        voters = tuple(sorted(v.node_id for v in self.genesis.validators))
        if self.pbft:
            self.consensus = PbftConsensusLoop(
                node_id=self.node_id,
                genesis=self.genesis,
                node_key=self.node_key,
                data_dir=Path(cfg.data_dir),
                ledger=self.ledger,
                mempool=self.mempool,
                mempool_lock=self.mempool_lock,
                config=pbft_config(
                    election_timeout_ticks=cfg.election_timeout_ticks,
                    heartbeat_ticks=cfg.heartbeat_ticks,
                ),
                tick_s=cfg.tick_ms / 1000,
                block_txs_max=cfg.block_txs_max,
                block_interval_s=cfg.block_interval_ms / 1000,
                block_bytes_max=pbft_block_bytes_max(cfg.peer_frame_bytes_max),
                verify_batch=self._verify,
                send=self._send_from_consensus,
                on_applied=self._applied_from_consensus,
                on_fatal=self._fatal_from_consensus,
                clock_ms=wall_clock_ms,
                block_time_skew_ms_max=cfg.block_time_skew_ms_max,
                metrics=self.metrics,
                reply_bytes_max=cfg.peer_frame_bytes_max // 2,
                request_blocks=self._request_blocks_from_consensus,
            )
        else:
            self.consensus = self._raft_loop(voters)
        self.peers = PeerNetwork(
            self.node_id,
            cfg.peer_host,
            cfg.peer_port,
            {p.node_id: (p.host, p.port) for p in cfg.peers},
            tls.server_context(ca_cert=cfg.ca_cert, cert=cfg.tls_cert, key=cfg.tls_key),
            tls.client_context(ca_cert=cfg.ca_cert, cert=cfg.tls_cert, key=cfg.tls_key),
            self._on_frame,
            rng=random.Random(f"peers/{self.node_id}"),
            options=PeerOptions(
                frame_bytes_max=cfg.peer_frame_bytes_max, queue_frames_max=cfg.peer_queue_frames_max
            ),
            on_link=self._on_link,
        )
        await self.peers.start()
        self._dial_validators()
        self._recertify_recent()
        self.consensus.start()

    def _raft_loop(self, voters: tuple[str, ...]) -> ConsensusLoop:
        cfg = self.cfg
        return ConsensusLoop(
            node_id=self.node_id,
            voters=voters,
            ledger=self.ledger,
            mempool=self.mempool,
            mempool_lock=self.mempool_lock,
            raft_config=RaftConfig(
                election_timeout_ticks=cfg.election_timeout_ticks,
                heartbeat_ticks=cfg.heartbeat_ticks,
            ),
            tick_s=cfg.tick_ms / 1000,
            block_txs_max=cfg.block_txs_max,
            block_interval_s=cfg.block_interval_ms / 1000,
            block_bytes_max=8 * 1024 * 1024,
            send=self._send_from_consensus,
            request_blocks=self._request_blocks_from_consensus,
            on_applied=self._applied_from_consensus,
            on_fatal=self._fatal_from_consensus,
            clock_ms=wall_clock_ms,
            block_time_skew_ms_max=cfg.block_time_skew_ms_max,
            metrics=self.metrics,
            seed=int.from_bytes(self.node_key.public_key().public_bytes_raw()[:8], "big"),
            reachable=self._reachable,
        )

    async def stop(self) -> None:
        if self.consensus is not None:
            self.consensus.stop()
            await asyncio.get_running_loop().run_in_executor(None, self.consensus.join, 10)
        if self.peers is not None:
            await self.peers.close()
        self.kernels.shutdown(wait=True)
        self.io.shutdown(wait=True)
        self.store.close()

    def request_stop(self) -> None:
        self._stopping.set()

    async def wait_stopped(self) -> None:
        await self._stopping.wait()

    @property
    def fatal(self) -> BaseException | None:
        return self._fatal

    # -- consensus thread -> loop ----------------------------------------------------
    def _call(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    def _send_from_consensus(self, msg: Message | Envelope) -> None:
        payload = WIRE.encode(msg)
        self._call(self._send_payload, msg.to, payload)

    def _send_payload(self, to: str, payload: bytes) -> None:
        if len(payload) > self.cfg.peer_frame_bytes_max:
            # A consensus message larger than a frame (a PBFT catch-up of many blocks):
            # never sent, as if lost; the protocol asks again or asks another peer.
            if isinstance(self.consensus, PbftConsensusLoop):
                self.consensus.pbft_metrics.messages_oversize.inc()
            log.warning(
                "message of %d bytes to %s is over the frame limit: dropped", len(payload), to
            )
            return
        if self.peers is not None:
            self.peers.send(to, payload)

    def _request_blocks_from_consensus(self, req: CatchUpRequest) -> None:
        payload = WIRE.encode(BlockRequest(self.node_id, req.start_height, req.end_height))
        self._call(self._send_payload, req.to, payload)

    def _applied_from_consensus(self, applied: Applied) -> None:
        self._call(self._on_applied, applied)

    def _fatal_from_consensus(self, exc: BaseException) -> None:
        self._fatal = exc
        self._call(self._stopping.set)

    # -- applied blocks ----------------------------------------------------------------
    def _on_applied(self, applied: Applied) -> None:
        block = applied.block
        assert block is not None
        h = block.header
        self.metrics.blocks_applied.inc()
        self.metrics.txs_committed.inc(len(applied.tx_ids))
        self.metrics.height.set(h.height)
        if applied.validators is not None:
            new = ValidatorSet.of(h.height, applied.validators)
            if self.validator_history.record(new):
                log.info(
                    "block %d changes the validator set to %s: it certifies blocks from %d on",
                    h.height,
                    ", ".join(new.node_ids),
                    h.height + 1,
                )
            with self.store.snapshot() as view:
                self._peer_addresses = validator_history.peer_addresses(view)
            self._dial_validators()
        # The clients waiting for these txs first: a woken waiter's task runs at the
        # loop's next turn, before the signature (signed, encoded and broadcast in a
        # callback queued after it), so its answer does not wait for the signing.
        waiters = self._waiters
        if waiters:
            log_start = h.log_size - h.tx_count
            for pos, tx_id in enumerate(applied.tx_ids):
                found = waiters.pop(tx_id, None)
                if found:
                    loc = TxLocation(h.height, pos, log_start + pos, block.results[pos])
                    for w in found:
                        w.arrived(tx_id, loc)
        self._wake_head_waiters(h.height)
        asyncio.get_running_loop().call_soon(self._sign_applied, h)

    def _sign_applied(self, h: BlockHeader) -> None:
        """Sign an applied header, broadcast the signature, and see whether the block
        is certified (in the order the blocks were applied: callbacks run in order)."""
        sig = self.certs.sign_applied(h)
        payload = WIRE.encode(sig)
        if self.peers is not None:
            reached = self.peers.broadcast(payload)
            self._answers.broadcast(h.height, reached_all=reached == len(self.peers.peer_ids))
        self._maybe_certified(h.height)

    def _reachable(self, node_id: str) -> bool:
        """Whether the link to ``node_id`` is up (read from the consensus thread)."""
        return self.peers is not None and self.peers.is_connected(node_id)

    def _dial_validators(self) -> None:
        """Dial (and accept) the validators governance added with a peer address that
        this node does not know yet: the Raft leader must reach an added validator to
        bring it up to date, and every node must accept its connections."""
        if self.peers is None:
            return
        known = set(self.peers.peer_ids)
        for v in self.validator_history.latest.validators:
            address = self._peer_addresses.get(v.node_id)
            if v.node_id == self.node_id or v.node_id in known or address is None:
                continue
            host, _, port = address.rpartition(":")
            self.peers.add_peer(v.node_id, host.strip("[]"), int(port))
            log.info("dialling validator %s at %s (added by governance)", v.node_id, address)

    def _wake_head_waiters(self, height: int) -> None:
        if not self._head_waiters:
            return
        keep = []
        for want, fut in self._head_waiters:
            if want > height:
                keep.append((want, fut))
            elif not fut.done():
                fut.set_result(None)
        self._head_waiters = keep

    async def wait_for_height(self, height: int, timeout_s: float) -> int:
        """Wait until this node has applied ``height`` (or the timeout); return the
        applied height then. What a stream of committed blocks waits on."""
        if self.store.height >= height:
            return self.store.height
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._head_waiters.append((height, fut))
        try:
            await wait_done(fut, timeout_s)
        finally:  # a timeout or a cancelled waiter (a stream client that left)
            if not fut.done():
                self._head_waiters = [(h, f) for h, f in self._head_waiters if f is not fut]
        return self.store.height

    def _maybe_certified(self, height: int) -> None:
        """Once a quorum has signed: wake the waiters (receipts take the signatures from
        memory) and persist the certificate off the critical path."""
        sigs = self.certs.ready(height)
        if sigs is None:
            return
        self._certified_height = max(self._certified_height, height)
        self.metrics.certified_height.set(self._certified_height)
        ev = self._cert_events.pop(height, None)
        if ev is not None:
            ev.set()
        loop = asyncio.get_running_loop()

        async def persist() -> None:
            await loop.run_in_executor(self.io, self.store.put_certificate, height, sigs)

        self._spawn(persist())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a background task, keeping a reference until it is done."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- peers ---------------------------------------------------------------------
    def _on_frame(self, peer_id: str, payload: bytes) -> None:
        try:
            msg = WIRE.decode(payload)
        except WireError as exc:
            self.metrics.bad_peer_messages.inc()
            log.warning("bad frame from %s: %s", peer_id, exc)
            return
        if getattr(msg, "frm", None) != peer_id:
            self.metrics.bad_peer_messages.inc()
            log.warning("message from %s claims to be from %r", peer_id, getattr(msg, "frm", None))
            return
        consensus = self.consensus
        if isinstance(msg, CONSENSUS_MESSAGES):
            if msg.to == self.node_id and isinstance(consensus, ConsensusLoop):
                consensus.post(msg)
        elif isinstance(msg, PBFT_MESSAGES):
            if msg.to == self.node_id and isinstance(consensus, PbftConsensusLoop):
                consensus.post(msg)
        elif isinstance(msg, HeaderSig):
            if self.certs.add(msg):
                self._maybe_certified(msg.height)
                # Answered only when the peer may have missed our broadcast (a link
                # event since, or a block applied in an earlier run): else each node
                # sent its signature twice to each peer.
                if not msg.reply and self._answers.should_answer(msg.height):
                    self._send_own_signature(msg)
        elif isinstance(msg, ForwardTxs):
            self._spawn(self._on_forwarded(msg))
        elif isinstance(msg, CertifiedBlocks) and isinstance(consensus, PbftConsensusLoop):
            consensus.post_blocks(msg)
        elif isinstance(msg, BlockRequest):
            self._spawn(self._serve_blocks(msg))
        elif isinstance(msg, BlockResponse) and isinstance(consensus, ConsensusLoop):
            consensus.post_blocks(msg)

    def _on_link(self, peer_id: str, up: bool) -> None:
        """A peer link came up or went down: a peer may have missed signatures."""
        self._answers.link_changed()

    def _recertify_recent(self) -> None:
        """After a restart: sign again the recent blocks whose certificate never reached
        the disk (the node stopped before its peers' signatures came), so peers answer
        with theirs and receipts served here carry a quorum."""
        top = self.store.height
        for height in range(max(1, top - RECERTIFY_HEIGHTS + 1), top + 1):
            if len(self.store.certificate(height)) >= self.certs.quorum_at(height):
                continue
            header = self.store.header(height)
            if header is not None and self.peers is not None:
                payload = WIRE.encode(self.certs.sign_applied(header))
                self.peers.broadcast(payload)

    def _send_own_signature(self, announced: HeaderSig) -> None:
        """Answer a peer's signature with ours for the same header (from memory, or from
        the stored certificate), so a node that was away completes its certificates."""
        sig = self.certs.own(announced.height, announced.header_hash)
        if sig is None:
            header = self.store.header(announced.height)
            if header is None or header.hash != announced.header_hash:
                return
            sig = dict(self.store.certificate(announced.height)).get(self.node_id)
        if sig is not None and self.peers is not None:
            reply = HeaderSig(
                self.node_id, announced.height, announced.header_hash, sig, reply=True
            )
            self.peers.send(announced.frm, WIRE.encode(reply))

    async def _on_forwarded(self, msg: ForwardTxs) -> None:
        if len(msg.txs) > self.cfg.block_txs_max * 10:
            return
        await self.submit(list(msg.txs), forwarded=True)

    async def _serve_blocks(self, req: BlockRequest) -> None:
        def read() -> list[bytes]:
            # No more than fits a peer frame (a larger answer is never delivered), with
            # room for the certificates a PBFT node adds.
            budget = min(CATCH_UP_BYTES_MAX, self.cfg.peer_frame_bytes_max // 2)
            out: list[bytes] = []
            size = 0
            end = min(req.end_height, self.store.height, req.start_height + CATCH_UP_BLOCKS_MAX - 1)
            for h in range(max(1, req.start_height), end + 1):
                block = self.store.block(h)
                if block is None:
                    break
                raw = block.to_bytes()
                if out and size + len(raw) > budget:
                    break
                out.append(raw)
                size += len(raw)
            return out

        blocks = await asyncio.get_running_loop().run_in_executor(self.io, read)
        if self.peers is not None and self.pbft:
            # Each block with its certificate: the replica checks it (``pbft_catch_up``).
            first = max(1, req.start_height)
            certs = await asyncio.get_running_loop().run_in_executor(
                self.io,
                lambda: tuple(
                    tuple(self.store.certificate(h)) for h in range(first, first + len(blocks))
                ),
            )
            reply = CertifiedBlocks(self.node_id, tuple(blocks), certs)
            self.peers.send(req.frm, WIRE.encode(reply))
        elif self.peers is not None:
            self.peers.send(req.frm, WIRE.encode(BlockResponse(self.node_id, tuple(blocks))))

    # -- what the RPC calls --------------------------------------------------------
    def status(self) -> dict[str, Any]:
        st = self.consensus.status if self.consensus else None
        head = self.store.head()
        self.metrics.mempool_txs.set(len(self.mempool))
        self.metrics.is_leader.set(1 if st and st.role is Role.LEADER else 0)
        self.metrics.term.set(st.term if st else 0)
        if self.peers is not None:
            self.metrics.peer_frames_dropped.set(self.peers.totals().frames_dropped)
        used, size = self.store.map_usage()
        self.metrics.map_used_bytes.set(used)
        self.metrics.map_size_bytes.set(size)
        return {
            "node_id": self.node_id,
            "chain_id": self.genesis.chain_id,
            "consensus": self.genesis.consensus,
            "role": st.role.value if st else "follower",
            "leader": st.leader if st else None,
            "term": st.term if st else 0,
            "commit_index": st.commit_index if st else 0,
            "height": head.height if head else 0,
            "head_hash": head.hash.hex() if head else "",
            "log_size": self.store.log_size,
            "mempool_txs": len(self.mempool),
            "kernels": backend.active().name,
            "kernels_warmup_s": round(self.warmup_s, 3),
            "consensus_inbox_dropped": self.consensus.inbox_dropped if self.consensus else 0,
        }

    async def submit(self, raws: Sequence[bytes], *, forwarded: bool = False) -> list[Admitted]:
        """Admit txs: queue them here when leading, hand them to the leader otherwise
        (PBFT: queue them here and hand them to every other replica).

        A leader whose mempool is full sheds the whole request before decoding or
        verifying anything: under overload, checking txs that cannot be queued would
        take the CPU that drains the mempool."""
        st = self.consensus.status if self.consensus else None
        queues_here = self.pbft or (st is not None and st.role is Role.LEADER)
        if queues_here and self.mempool.room() <= 0:
            self.metrics.txs_submitted.labels(Status.MEMPOOL_FULL.value).inc(len(raws))
            return [Admitted(leaf_hash(r), Status.MEMPOOL_FULL, MEMPOOL_FULL_ERROR) for r in raws]
        verdicts, passing = await screen(
            raws,
            chain_id=self.genesis.chain_id,
            snapshot=self.store.snapshot,
            queued=self.is_queued,
            executor=self.kernels,
            now_ms=wall_clock_ms(),
        )
        results = self._place(passing, forwarded=forwarded)
        placed = iter(results)  # screen passes txs on in input order
        out = [next(placed) if verdict is None else verdict for verdict in verdicts]
        for status, n in collections.Counter([a.status._value_ for a in out]).items():
            self.metrics.txs_submitted.labels(status).inc(n)
        return out

    def is_queued(self, tx_id: bytes) -> bool:
        # One dict lookup is atomic under the GIL: no lock needed to read it.
        return tx_id in self.mempool

    def _place(self, passing: list[Candidate], *, forwarded: bool) -> list[Admitted]:
        if not passing:
            return []
        st = self.consensus.status if self.consensus else None
        if self.pbft and not forwarded and self.peers is not None:
            # Every replica holds every client tx (issue 14: a silent primary is then
            # noticed by the backups); each mempool deduplicates by tx id.
            payload = WIRE.encode(ForwardTxs(self.node_id, tuple(c.raw for c in passing)))
            # The peers of the config and the replicas governance added (dialled).
            for peer_id in self.peers.peer_ids:
                self.peers.send(peer_id, payload)
        if self.pbft or (st is not None and st.role is Role.LEADER):
            now_s = time.monotonic()
            take = self.sender_rates.take
            add = self.mempool.add
            with self.mempool_lock:
                # None: over its rate, not placed
                outcomes: list[AddOutcome | None] = [
                    add(c.tx_id, c.raw, c.tx) if take(c.tx.sender, now_s) else None for c in passing
                ]
            if self.consensus is not None:
                self.consensus.wake()
            # (identity tests: hashing an Enum member runs Python code, and this runs per tx)
            return [
                Admitted(c.tx_id, Status.ACCEPTED)
                if o is AddOutcome.ADDED
                else Admitted(c.tx_id, Status.DUPLICATE)
                if o is AddOutcome.DUPLICATE
                else Admitted(c.tx_id, Status.MEMPOOL_FULL, SENDER_FULL_ERROR)
                if o is AddOutcome.SENDER_FULL
                else Admitted(c.tx_id, Status.MEMPOOL_FULL, SENDER_RATE_ERROR)
                if o is None
                else Admitted(c.tx_id, Status.MEMPOOL_FULL, MEMPOOL_FULL_ERROR)
                for c, o in zip(passing, outcomes, strict=True)
            ]
        leader = st.leader if st else None
        if forwarded or leader is None or leader == self.node_id or self.peers is None:
            return [
                Admitted(c.tx_id, Status.NO_LEADER, "no leader is known; retry shortly")
                for c in passing
            ]
        sent = self.peers.send(
            leader, WIRE.encode(ForwardTxs(self.node_id, tuple(c.raw for c in passing)))
        )
        status = Status.ACCEPTED if sent else Status.MEMPOOL_FULL
        return [Admitted(c.tx_id, status) for c in passing]

    def can_wait(self, n: int) -> bool:
        return self._waiter_count + n <= WAITERS_MAX

    async def wait_committed(
        self, tx_ids: Sequence[bytes], timeout_s: float
    ) -> dict[bytes, TxLocation]:
        """Wait until each tx is applied here (or the timeout); return those that were."""
        wait = _CommitWait(asyncio.get_running_loop().create_future())
        # No await between a lookup and its registration, and blocks are announced to
        # this loop only after they are stored: a tx missed here is announced later. A
        # tx still in the mempool needs no lookup: the consensus thread takes it out
        # only as its block is applied, before it announces the block to this loop.
        queued = self.mempool.__contains__
        waiters = self._waiters
        with self.store.snapshot() as view:
            for tx_id in dict.fromkeys(tx_ids):
                loc = None if queued(tx_id) else view.tx_location(tx_id)
                if loc is not None:
                    wait.found[tx_id] = loc
                else:
                    waiters.setdefault(tx_id, []).append(wait)
                    wait.missing += 1
        registered = wait.missing
        self._waiter_count += registered
        try:
            if wait.missing:
                # The future awaited directly (not through ``asyncio.wait``, which wakes
                # this task one loop turn later): the answer goes before the block's
                # signature is made (``_on_applied``). A cancellation is not lost: the
                # task is cancelled at its next step if the future is already done.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout_s):
                        await wait.done
        finally:
            self._waiter_count -= registered
            if wait.missing:  # timed out or cancelled: unregister what never came
                for tx_id in dict.fromkeys(tx_ids):
                    lst = self._waiters.get(tx_id)
                    if lst and wait in lst:
                        lst.remove(wait)
                        if not lst:
                            del self._waiters[tx_id]
        return wait.found

    def _certificate(self, height: int) -> list[tuple[str, bytes]]:
        sigs = self.certs.signatures(height)
        return sigs if len(sigs) >= self.certs.quorum_at(height) else self.store.certificate(height)

    async def wait_certified(self, height: int, timeout_s: float) -> bool:
        if len(self._certificate(height)) >= self.certs.quorum_at(height):
            return True
        ev = self._cert_events.setdefault(height, asyncio.Event())
        return await wait_set(ev, timeout_s)

    async def receipt(self, tx_id: bytes) -> dict[str, Any] | None:
        return (await self.receipts([tx_id])).get(tx_id)

    async def receipts(self, tx_ids: Sequence[bytes]) -> dict[bytes, dict[str, Any]]:
        """Receipts of committed txs (each block read once), certificates from memory
        when a quorum is there."""
        found = await asyncio.get_running_loop().run_in_executor(
            self.io, self._receipts_with_sets, tx_ids
        )
        return {t: r.to_json(label(r.result)) for t, r in found.items()}

    def _receipts_with_sets(self, tx_ids: Sequence[bytes]) -> dict[bytes, Receipt]:
        """Receipts, each carrying the certified validator-set changes up to its height."""
        found = build_receipts(self.store, tx_ids, self._certificate)
        return with_validator_sets(self.store, found, self.validator_history, self._certificate)

    def block(self, height: int) -> Block | None:
        return self.store.block(height)


async def serve(cfg: NodeConfig) -> int:
    """Run a node until SIGTERM/SIGINT (exit 0) or a fatal error (exit 1)."""
    from node.api import secure
    from node.api.lineage_route import LineageIntake
    from node.api.mqtt import MqttBridge
    from node.api.routes import make_app
    from node.api.server import rpc_limits, start_rpc
    from node.runtime import gc_policy

    gc_policy.tune()
    node = Node(cfg)
    await node.start()
    lineage = None
    if cfg.openlineage.enabled:
        lineage = LineageIntake(node, cfg.openlineage, node.genesis.chain_id)
    app = make_app(node, lineage)
    checker = secure.rpc_auth(
        cfg, node, chain_id=node.genesis.chain_id, auditor_orgs=node.genesis.auditor_orgs
    )
    runner, rpc_server = await start_rpc(
        app,
        cfg.rpc_host,
        cfg.rpc_port,
        rpc_limits(cfg),
        node.metrics.registry,
        ssl_context=secure.rpc_ssl_context(cfg),
        middlewares=secure.rpc_middlewares(app, checker, node),
    )
    metrics_runner = await secure.start_metrics(cfg, node)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.request_stop)
    bridge_task = None
    if cfg.mqtt.enabled:
        bridge = MqttBridge(node, cfg.mqtt, node_id=cfg.node_id, chain_id=node.genesis.chain_id)
        bridge_task = loop.create_task(bridge.run(), name="mqtt-bridge")
    gc_policy.freeze_startup()
    log.info(
        "node %s serving RPC on %s://%s:%d (reads: %s)",
        cfg.node_id,
        "https" if cfg.rpc_tls else "http",
        cfg.rpc_host,
        cfg.rpc_port,
        cfg.rpc_auth,
    )
    await node.wait_stopped()
    if bridge_task is not None:  # unacknowledged messages go back to the broker
        bridge_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bridge_task
    rpc_server.close()
    await runner.cleanup()
    if metrics_runner is not None:
        await metrics_runner.cleanup()
    await node.stop()
    if node.fatal is not None:
        log.critical("stopped on a fatal error: %s", node.fatal)
        return 1
    return 0
