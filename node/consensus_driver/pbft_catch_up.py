"""A PBFT replica installs the state a stable checkpoint certifies (CL §5.3) when the
entries it misses are gone from every peer (they keep ``KEEP_COMMITTED_ENTRIES``).

The core checks the offered state (``consensus.pbft_messages.StableState``): 2f+1
signed checkpoints over the history digest and the application's state, which on this
chain is the block store's head (``snapshot_data.local_data``: height and header hash).
Installing it means fetching the blocks up to that head from peers, as a Raft follower
installs a snapshot (``loop.ConsensusLoop.restore``), but trusting no peer: a peer
answers a ``BlockRequest`` with ``CertifiedBlocks``, and each block is taken only if

- it is the next height (it extends this node's head: the ledger checks the hash chain),
- its certificate holds a quorum of valid signatures of the validators in force at its
  height (``chain.validator_sets``; the history is rebuilt from this node's own state,
  which has applied every block below; a governance block that changes the set is
  signed over the set after it, which a trial execution of the block on that state
  gives) — or it is the target block itself, whose hash the checkpoint certifies, and
- the ledger's re-execution gives its header's results and state root
  (``Ledger.apply``: a PBFT node re-executes and verifies every block).

Each block is checked before the store writes it (issue 15 §4: validated before
persisted). A peer that serves a block failing any check, or nothing, is passed over and
the next one asked; after ``CATCH_UP_ATTEMPTS`` rounds of every peer without progress
the node stops (``InvariantViolation``), as a Raft node that cannot install a snapshot.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from collections.abc import Callable, Sequence

from acl import validator_history
from acl.machine import StateError, apply_block
from chain.block import Block, BlockError
from chain.tx import Tx, TxError, decode_txs
from chain.validator_sets import (
    HeaderSignature,
    ValidatorHistory,
    ValidatorSet,
    signing_bytes,
    valid_signers_for,
)
from consensus.types import InvariantViolation
from node.consensus_driver import snapshot_data
from node.consensus_driver.loop import CATCH_UP_ATTEMPTS, CATCH_UP_TIMEOUT_S, CatchUpRequest
from node.pipeline.ledger import Applied, ApplyOutcome, Ledger
from node.transport.messages import CertifiedBlocks

log = logging.getLogger("grantchain.pbft")


class CatchUpRefused(Exception):
    """A block from a peer that this node will not apply; the message says why."""


class CertifiedCatchUp:
    """Fetches certified blocks up to a target head; consensus thread only."""

    def __init__(
        self,
        *,
        node_id: str,
        ledger: Ledger,
        request_blocks: Callable[[CatchUpRequest], None],
        on_applied: Callable[[Applied], None],
        on_refused: Callable[[str, str], None],
        timeout_s: float = CATCH_UP_TIMEOUT_S,
        attempts: int = CATCH_UP_ATTEMPTS,
    ) -> None:
        self.node_id = node_id
        self.ledger = ledger
        self._request_blocks = request_blocks
        self._on_applied = on_applied
        self._on_refused = on_refused
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._responses: queue.Queue[CertifiedBlocks] = queue.Queue(maxsize=4)

    def post(self, resp: CertifiedBlocks) -> None:
        """A peer's answer (any thread); dropped when nobody waits for it."""
        with contextlib.suppress(queue.Full):
            self._responses.put_nowait(resp)

    def run(self, app_state: bytes, peers: Sequence[str]) -> None:
        """Bring the block store to the head ``app_state`` names (``snapshot_data``
        local form), fetching from ``peers`` in turn."""
        target_height, target_hash = snapshot_data.target(app_state)
        store = self.ledger.store
        others = [p for p in peers if p != self.node_id]
        turn = 0
        failures = 0  # rounds without progress; progress resets it
        if store.height < target_height:
            log.info(
                "installing the state of a stable checkpoint: blocks %d..%d from peers",
                store.height + 1,
                target_height,
            )
        while store.height < target_height:
            if not others or failures >= self._attempts * len(others):
                raise InvariantViolation(
                    f"could not fetch certified blocks {store.height + 1}..{target_height}"
                )
            peer = others[turn % len(others)]
            before = store.height
            self._request_blocks(CatchUpRequest(peer, store.height + 1, target_height))
            resp = self._answer_from(peer)
            try:
                if resp is None:
                    raise CatchUpRefused("no answer")
                self._take(resp, target_height, target_hash)
                if store.height == before:
                    raise CatchUpRefused("no block")
            except CatchUpRefused as exc:
                self._on_refused(peer, str(exc))
                log.warning("catch-up from %s: %s; asking the next peer", peer, exc)
                turn += 1
            failures = 0 if store.height > before else failures + 1
        head = store.header(target_height)
        if head is None or head.hash != target_hash:
            raise InvariantViolation(
                f"block {target_height} differs from the one the stable checkpoint certifies"
            )
        log.info("state of the stable checkpoint installed: height %d", target_height)

    def _answer_from(self, peer: str) -> CertifiedBlocks | None:
        deadline = time.monotonic() + self._timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                resp = self._responses.get(timeout=left)
            except queue.Empty:
                return None
            if resp.frm == peer:
                return resp  # an answer from a peer asked before is stale

    def _take(self, resp: CertifiedBlocks, target_height: int, target_hash: bytes) -> None:
        if len(resp.certificates) != len(resp.blocks):
            raise CatchUpRefused("blocks and certificates do not pair up")
        history: ValidatorHistory | None = None
        for raw, cert in zip(resp.blocks, resp.certificates, strict=True):
            try:
                block = Block.from_bytes(raw)
            except BlockError as exc:
                raise CatchUpRefused(f"malformed block: {exc}") from None
            h = block.header
            height = self.ledger.store.height
            if h.height != height + 1 or h.height > target_height:
                raise CatchUpRefused(f"block {h.height} where {height + 1} was asked")
            if h.height == target_height:
                if h.hash != target_hash:
                    raise CatchUpRefused(f"block {h.height} is not the one certified")
            else:
                if history is None:
                    with self.ledger.store.snapshot() as view:
                        history = validator_history.history(view, self.ledger.genesis)
                try:
                    _check_certificate(history, h.height, h.hash, cert)
                except CatchUpRefused:
                    after = self._set_after(block)
                    if after is None:
                        raise
                    _check_certificate(history, h.height, h.hash, cert, after)
            result = self.ledger.apply(raw)
            if result.outcome is not ApplyOutcome.APPLIED:
                raise CatchUpRefused(f"block {h.height} not applied: {result.reason}")
            if result.validators is not None:
                history = None  # the next heights are certified by the new set
            self._on_applied(result)

    def _set_after(self, block: Block) -> ValidatorSet | None:
        """The validator set after ``block`` when executing it on this node's state
        changes it; None when it does not, or the block does not execute here."""
        h = block.header
        try:
            ids = block.check_body()
        except BlockError:
            return None
        txs: list[Tx] = []
        for tx in decode_txs(block.txs):
            if isinstance(tx, TxError):
                return None
            txs.append(tx)
        with self.ledger.store.snapshot() as view:
            before = {v.node_id: v for v in validator_history.active_validators(view)}
            try:
                outcome = apply_block(
                    view,
                    genesis=self.ledger.genesis,
                    height=h.height,
                    timestamp_ms=h.timestamp_ms,
                    txs=txs,
                    tx_ids=ids,
                )
            except StateError:
                return None
        after = validator_history.active_after_writes(before, outcome.writes)
        if after is None or after == before:
            return None
        return ValidatorSet.of(h.height, tuple(after[n] for n in sorted(after)))


def _check_certificate(
    history: ValidatorHistory,
    height: int,
    header_hash: bytes,
    cert: Sequence[tuple[str, bytes]],
    after: ValidatorSet | None = None,
) -> None:
    """``cert`` holds a quorum of the set in force at ``height``, signing the header
    with the set after it (``after`` when the block changes it)."""
    in_force = history.in_force(height)
    sigs = [HeaderSignature(n, s) for n, s in cert]
    message = (
        history.signing_bytes(height, header_hash)
        if after is None
        else signing_bytes(header_hash, after)
    )
    signers = valid_signers_for(in_force.keys, message, sigs)
    need = in_force.quorum(history.consensus)
    if len(signers) < need:
        raise CatchUpRefused(
            f"certificate of block {height} has {len(signers)} valid signatures, {need} needed"
        )
