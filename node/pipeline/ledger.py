"""The node's replicated state machine: turns txs into blocks (on the leader) and applies
committed blocks (everywhere), against the block store and the ACL state.

Apply is deterministic and total over the sequence of committed entries, so every node
makes the same decision about every entry:

- a block at or below the head that equals the stored one was applied before (a replay
  after restart): nothing to do;
- a block that does not extend the head (stale: built on an entry that lost, or a height
  that is taken), or that is malformed (undecodable, a tx of another chain, and — where
  committed blocks are verified, see below — a bad signature), is skipped — recorded
  nowhere, changing nothing;
- otherwise its writes are applied, from one of two sources (below); an outcome whose
  results or state root differ from the header means this node disagrees with the
  proposer, and the node stops (``InvariantViolation``) rather than write a state no one
  else has.

What each node checks depends on the consensus the genesis names, so the skip rule above
stays the same on every node of a chain:

- **Raft** (crash-fault tolerant: members trust each other's operators,
  docs/architecture.md §9): a tx reaches a block only through the admission of the
  leader that proposes it, which decodes it strictly and verifies its signature. The
  leader's entry carries the block's change set (``node.pipeline.entry``,
  ``acl.changeset``): the writes its execution produced,
  bound to the block by the header's state root. A follower checks the block against
  its header (tx and results roots, hash chain, txs not already in the chain) and the
  change set against the state root, then applies the change set without decoding,
  verifying or re-executing the txs: Hyperledger Fabric's peers likewise apply the write
  sets the endorsers computed rather than run the chaincode again. This saves a
  follower most of its CPU per tx. A node with ``reexecute_blocks = true`` in its config
  re-executes every block instead and compares (an auditing replica), and anyone can
  re-check a data directory's signatures with ``grantchain verify --signatures``.
  Because the proposer vouches for a block it ships a change set with, a re-executing
  node that finds an undecodable tx in such a block stops rather than skip it (the
  others apply it). Blocks fetched by catch-up, and blocks whose change set is missing
  or malformed, are re-executed under the skip rule by every node.
- **PBFT** (Byzantine: a primary may lie): every replica decodes and verifies every tx
  of a committed block, skips the block on a bad one, and re-executes it; change sets
  are ignored. A backup has already done that work once, validating the block before it
  prepared it (``node.consensus_driver.pbft_validate``): ``apply`` takes that execution
  (an ``Executed``, looked up by the committed block's header hash) instead of running
  the block again. It is the block's own execution on the state its parent committed
  to, and it gave exactly the header's results and state root (the validator compared
  the whole header hash, and the checks below compare them again), so the writes
  applied are the ones the header commits to; an execution kept for any other block
  (another view's block at this height) has another header hash and is never used.
"""

from __future__ import annotations

import collections
import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from acl.changeset import ChangeSetError
from acl.machine import BlockOutcome, apply_block, genesis_state, replay_block
from acl.validator_history import active_after_writes, active_validators
from chain.assemble import assemble_block
from chain.block import Block, BlockError
from chain.genesis import Genesis, Validator
from chain.hashing import leaf_hashes
from chain.merkle import Frontier
from chain.tx import Tx, TxError, decode_tx, decode_txs, signing_bytes_of
from consensus.types import InvariantViolation
from node.pipeline.entry import EntryError, decode_entry, encode_entry
from node.pipeline.speculation import SpeculativeView, WriteLayer
from storage.blockstore import DuplicateTxError
from storage.lmdb_store import LmdbBlockStore, LmdbSnapshot

log = logging.getLogger("grantchain.ledger")

_DUPLICATE = "holds a tx the chain already has"

VerifyBatch = Callable[[Sequence[bytes], Sequence[bytes], Sequence[bytes]], list[bool]]


class ApplyOutcome(enum.Enum):
    APPLIED = "applied"
    ALREADY_APPLIED = "already_applied"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: ApplyOutcome
    block: Block | None
    tx_ids: tuple[bytes, ...] = ()
    reason: str = ""
    source: str = ""
    """How an applied block's writes were obtained: ``built`` (this node's own block, its
    execution reused), ``change_set`` (the proposer's, replayed), ``validated`` (this
    node's execution as it validated the proposal, reused) or ``executed``."""
    validators: tuple[Validator, ...] | None = None
    """The active validators after this block, by node id, when it changed them (a
    governance change: ``chain.validator_sets`` says from when it counts)."""


@dataclass(frozen=True, slots=True)
class Executed:
    """A block's execution done before it committed (a PBFT backup validating the
    proposal), for ``Ledger.apply`` to write instead of executing the block again."""

    header_hash: bytes
    """The block executed: only a committed block with this header hash may use it."""
    outcome: BlockOutcome
    tx_ids: tuple[bytes, ...]
    entry: bytes = b""
    """The entry it came in, when known, and ``block`` decoded from it and checked
    (``Block.check_body``): a committed entry with exactly these bytes is that block,
    whose body is then not hashed again."""
    block: Block | None = None


KeptExecutions = Callable[[bytes], Executed | None]
"""A block's kept execution by its header hash, if there is one."""


@dataclass(frozen=True, slots=True)
class _Proposal:
    block: Block
    outcome: BlockOutcome
    frontier: Frontier
    """The log frontier after this block."""
    layer: WriteLayer
    ids: list[bytes]


class Ledger:
    def __init__(
        self,
        store: LmdbBlockStore,
        genesis: Genesis,
        verify_batch: VerifyBatch,
        *,
        reexecute: bool = False,
    ) -> None:
        self.store = store
        self.genesis = genesis
        self._genesis_hash = genesis.hash  # ~0.25 ms to compute: once, not per block
        self._verify_batch = verify_batch
        self.verifies_committed = genesis.consensus != "raft"
        """Whether a committed block's signatures are checked here (see the module doc)."""
        self.reexecutes = reexecute or self.verifies_committed
        """Whether committed blocks are re-executed here rather than their change sets
        applied (see the module doc)."""
        # The leader's blocks in flight, oldest first: each one's execution is reused
        # when it commits, and the next block is built on the last one.
        self._in_flight: collections.deque[_Proposal] = collections.deque()
        self._validators: dict[str, Validator] | None = None
        """The active validators at the head, read from the state at the first apply."""
        self._validator_ids: tuple[str, ...] | None = None

    def ensure_genesis(self) -> None:
        self.store.initialize(self.genesis.hash, genesis_state(self.genesis).writes)

    def build(
        self,
        raws: Sequence[bytes],
        *,
        timestamp_ms: int,
        proposer: str,
        round: int,
        decoded: Mapping[bytes, Tx] | None = None,
        tx_ids: Sequence[bytes] | None = None,
    ) -> tuple[Block | None, list[bytes]]:
        """The next block, executed, and the ids of txs left out because the chain already
        holds them (a tx id is stored once: a resubmission that raced its own commit must
        not reach a block). ``raws`` were admitted (decoded strictly and signature-checked)
        by this node; ``decoded`` holds the Tx objects admission already made, by id, and
        ``tx_ids`` the raws' ids when the caller has them (the mempool does). No block
        when nothing is left.

        The next block follows the last one built here that is still in flight (see
        ``node.pipeline.speculation``), else the committed head."""
        base = self._in_flight[-1] if self._in_flight else None
        prev = base.block.header if base else self.store.head()
        frontier = base.frontier if base else self.store.frontier()
        timestamp_ms = max(timestamp_ms, prev.timestamp_ms if prev else self.genesis.timestamp_ms)
        all_ids = list(tx_ids) if tx_ids is not None else leaf_hashes(raws)
        with self.store.snapshot() as snap:
            stored = [t for t in all_ids if snap.tx_location(t) is not None]
            if stored:
                known = set(stored)
                kept = [(t, r) for t, r in zip(all_ids, raws, strict=True) if t not in known]
                ids, raws = [t for t, _ in kept], [r for _, r in kept]
            else:
                ids = all_ids
            if not raws:
                return None, stored
            view = SpeculativeView(snap, [p.layer for p in self._in_flight]) if base else snap
            outcome = apply_block(
                view,
                genesis=self.genesis,
                height=(prev.height if prev else 0) + 1,
                timestamp_ms=timestamp_ms,
                txs=[
                    (decoded or {}).get(t) or decode_tx(r) for t, r in zip(ids, raws, strict=True)
                ],
                tx_ids=ids,
            )
        block, after = assemble_block(
            chain_id=self.genesis.chain_id,
            prev=prev,
            anchor=self._genesis_hash,
            frontier=frontier,
            txs=list(raws),
            results=outcome.results,
            state_root=outcome.state_root,
            timestamp_ms=timestamp_ms,
            proposer=proposer,
            round=round,
            tx_ids=ids,
        )
        self._in_flight.append(_Proposal(block, outcome, after, WriteLayer(outcome.writes), ids))
        return block, stored

    def entry(self, block: Block) -> bytes:
        """The consensus entry proposing ``block``, the last one ``build`` returned: the
        block and its change set (``node.pipeline.entry``)."""
        mine = self._in_flight[-1]
        if mine.block is not block:
            raise ValueError("entry() is for the block build() returned last")
        return encode_entry(block.to_bytes(), mine.outcome.change_set)

    @property
    def in_flight(self) -> int:
        """Blocks built here and not yet committed."""
        return len(self._in_flight)

    def abandon(self) -> None:
        """Forget the blocks in flight (this node stopped leading, or one of them was not
        committed as built): the next block is built on the committed head."""
        self._in_flight.clear()

    def apply(self, data: bytes, *, kept: KeptExecutions | None = None) -> Applied:
        """Apply one committed entry; see the module doc for the decisions. ``kept``
        gives an execution of the block done before it committed (``Executed``)."""
        applied = self._apply(data, kept)
        if applied.outcome is ApplyOutcome.SKIPPED:
            self.abandon()  # if it was ours, what was built on it is stale too
        return applied

    def _apply(self, data: bytes, kept: KeptExecutions | None) -> Applied:
        try:
            raw_block, change_set = decode_entry(data)
            block = Block.from_bytes(raw_block)
        except EntryError as exc:
            return Applied(ApplyOutcome.SKIPPED, None, reason=f"malformed entry: {exc}")
        except BlockError as exc:
            return Applied(ApplyOutcome.SKIPPED, None, reason=f"malformed block: {exc}")
        h = block.header
        head = self.store.head()
        head_height = head.height if head else 0
        if h.height <= head_height:
            stored = self.store.header(h.height)
            if stored is not None and stored.hash == h.hash:
                return Applied(ApplyOutcome.ALREADY_APPLIED, block)
            return Applied(ApplyOutcome.SKIPPED, block, reason=f"height {h.height} is taken")
        if h.height > head_height + 1:
            raise InvariantViolation(
                f"committed block {h.height} but the store is at {head_height}: a gap in apply"
            )
        expected_prev = head.hash if head else self._genesis_hash
        if h.prev_hash != expected_prev or h.chain_id != self.genesis.chain_id:
            return Applied(ApplyOutcome.SKIPPED, block, reason="does not extend the head")
        outcome: BlockOutcome | None = None
        source = "built"
        if self._in_flight and self._in_flight[0].block.header.hash == h.hash:
            # Ours, built on exactly this head: the store re-checks its roots anyway.
            mine = self._in_flight.popleft()
            ids, outcome = mine.ids, mine.outcome
        else:
            self.abandon()  # another block commits here: ours in flight are stale
            done = kept(h.hash) if kept is not None else None
            if done is not None and done.block is not None and done.entry == data:
                block = done.block  # these very bytes, its body checked as validated
            try:
                ids = block.check_body()
            except BlockError as exc:
                return Applied(ApplyOutcome.SKIPPED, block, reason=str(exc))
            if done is not None and done.header_hash == h.hash and done.tx_ids == tuple(ids):
                # Its txs were decoded, verified and executed on this block's parent
                # state, and gave this header; a tx the chain already holds is caught
                # as the store appends (DuplicateTxError, below), as for a change set.
                outcome, source = done.outcome, "validated"
        if outcome is None:
            with self.store.snapshot() as view:
                replayed = None
                if change_set is not None and not self.verifies_committed:
                    replayed = self._replay(view, block, change_set)
                # A replayed block's txs are looked up once, by the store as it appends
                # (DuplicateTxError, below); one to be executed is skipped before that.
                if (replayed is None or self.reexecutes) and any(
                    view.tx_location(t) is not None for t in ids
                ):
                    return Applied(ApplyOutcome.SKIPPED, block, reason=_DUPLICATE)
            if replayed is not None and not self.reexecutes:
                outcome, source = replayed, "change_set"
            else:
                source = "executed"
                txs, problem = self._decode_and_verify(block)
                if problem and replayed is not None:
                    raise InvariantViolation(
                        f"block {h.height}: the proposer {h.proposer!r} vouched for it with a "
                        f"change set, but {problem}: refusing to skip what others apply"
                    )
                if problem:
                    return Applied(ApplyOutcome.SKIPPED, block, reason=problem)
                with self.store.snapshot() as view:
                    outcome = apply_block(
                        view,
                        genesis=self.genesis,
                        height=h.height,
                        timestamp_ms=h.timestamp_ms,
                        txs=txs,
                        tx_ids=ids,
                    )
            if replayed is not None and replayed.state_root != h.state_root:
                raise InvariantViolation(
                    f"block {h.height}: the proposer {h.proposer!r} shipped a change set that "
                    "gives another state root than its header: refusing to write it"
                )
        if outcome.results != block.results or outcome.state_root != h.state_root:
            raise InvariantViolation(
                f"block {h.height}: re-execution gives other results or state root than the "
                f"proposer {h.proposer!r}: refusing to write a diverging state"
            )
        before = self._active_validators()
        after = active_after_writes(before, outcome.writes)
        try:
            self.store.append(block, outcome.writes)
        except DuplicateTxError:  # nothing of the block was written
            return Applied(ApplyOutcome.SKIPPED, block, reason=_DUPLICATE)
        changed = None
        if after is not None:
            self._validators = after
            self._validator_ids = None
            if after != before:
                changed = tuple(after[n] for n in sorted(after))
        return Applied(ApplyOutcome.APPLIED, block, tuple(ids), source=source, validators=changed)

    def validator_ids(self) -> tuple[str, ...]:
        """The node ids of the active validators at the applied head, sorted: what the Raft
        configuration follows (``ConsensusLoop``). Consensus thread only."""
        ids = self._validator_ids
        if ids is None:
            ids = self._validator_ids = tuple(sorted(self._active_validators()))
        return ids

    def _active_validators(self) -> dict[str, Validator]:
        if self._validators is None:
            with self.store.snapshot() as view:
                self._validators = {v.node_id: v for v in active_validators(view)}
        return self._validators

    def _replay(self, view: LmdbSnapshot, block: Block, change_set: bytes) -> BlockOutcome | None:
        """The block's outcome from its change set, or None (re-execute) if the change set
        is malformed: the same bytes reach every node, so every node falls back alike."""
        h = block.header
        try:
            return replay_block(
                view,
                genesis=self.genesis,
                height=h.height,
                timestamp_ms=h.timestamp_ms,
                results=block.results,
                change_set=change_set,
            )
        except ChangeSetError as exc:
            log.warning("block %d: malformed change set (%s): re-executing it", h.height, exc)
            return None

    def _decode_and_verify(self, block: Block) -> tuple[list[Tx], str]:
        """The block's txs, or the first problem that makes it malformed."""
        txs: list[Tx] = []
        for pos, tx in enumerate(decode_txs(block.txs)):
            if isinstance(tx, TxError):
                return [], f"tx {pos}: {tx}"
            if tx.chain_id != self.genesis.chain_id:
                return [], f"tx {pos}: another chain"
            txs.append(tx)
        if not self.verifies_committed:
            return txs, ""
        ok = self._verify_batch(
            [t.sender for t in txs],
            [signing_bytes_of(raw) for raw in block.txs],
            [t.signature for t in txs],
        )
        bad = [i for i, good in enumerate(ok) if not good]
        if bad:
            return [], f"tx {bad[0]}: bad signature"
        return txs, ""
