"""A PBFT backup checks the block a pre-prepare proposes before it prepares it (issue
14, item 2): a primary may lie, and a block that a quorum prepared is one that every
correct replica will apply (or else stop, ``node.pipeline.ledger``).

The block must be exactly the block an honest primary of that view would build from
those txs on its parent: a well-formed entry, the chain's id, the primary as proposer
and the view as round, every tx decoded strictly and its signature verified (the
kernels), no tx the chain already holds, and the header that ``assemble_block`` gives
for the results and state root the txs' execution produces on the parent's state. The
comparison is of the whole header hash, so tx, results, log and state roots, heights,
links and timestamps are all covered at once.

The parent is the committed head, or a block this replica validated and has not yet
seen committed (the primary keeps several sequence numbers in flight, CL §4.3): its
state is the committed store under the write layers of the validated blocks between
(``node.pipeline.speculation``). A block whose parent is neither is ``LATER``: its
parent's pre-prepare has not arrived or not been checked yet, and the loop asks again
after the next one is.

A valid block's execution is kept, by header hash, until the block commits: the ledger
then writes it (``kept``, ``node.pipeline.ledger.Executed``) rather than execute the
block a second time. What is kept for blocks at or below the committed height (another
view's block at a height that is taken) is dropped, and at most ``VALIDATED_MAX``
blocks are kept.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from acl.machine import BlockOutcome, apply_block
from acl.state import StateError
from chain.assemble import assemble_block
from chain.block import Block, BlockError, BlockHeader
from chain.genesis import Genesis
from chain.merkle import Frontier
from chain.tx import Tx, TxError, decode_txs, signing_bytes_of
from node.pipeline.entry import EntryError, decode_entry
from node.pipeline.ledger import Executed
from node.pipeline.speculation import SpeculativeView, WriteLayer
from storage.lmdb_store import LmdbBlockStore

VerifyBatch = Callable[[Sequence[bytes], Sequence[bytes], Sequence[bytes]], list[bool]]
Admitted = Callable[[Sequence[bytes]], list[Tx | None]]
"""The txs with these ids that this node admitted (decoded strictly, of this chain, their
signatures verified: ``node.pipeline.admission``), None for the others."""

VALIDATED_MAX = 256
"""Validated, uncommitted blocks kept as parents (more than any log window holds)."""


class Verdict(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"
    LATER = "later"


@dataclass(frozen=True, slots=True)
class Check:
    verdict: Verdict
    reason: str = ""


@dataclass(frozen=True, slots=True)
class _Valid:
    header: BlockHeader
    layer: WriteLayer
    frontier: Frontier
    """The log frontier after this block."""
    outcome: BlockOutcome
    """Its execution (without the change set, which the ledger does not need)."""
    tx_ids: tuple[bytes, ...]
    entry: bytes
    """The entry as it came (kept by reference: the consensus log holds it too)."""
    block: Block
    """The block decoded from it, its body checked (its tx ids remembered)."""


class BlockValidator:
    def __init__(
        self,
        store: LmdbBlockStore,
        genesis: Genesis,
        verify_batch: VerifyBatch,
        *,
        clock_ms: Callable[[], int],
        skew_ms_max: int,
        admitted: Admitted | None = None,
    ) -> None:
        self._store = store
        self._admitted = admitted
        self._genesis = genesis
        self._genesis_hash = genesis.hash  # ~0.25 ms to compute: once, not per block
        self._verify_batch = verify_batch
        self._clock_ms = clock_ms
        self._skew_ms_max = skew_ms_max
        self._valid: dict[bytes, _Valid] = {}

    def check(self, data: bytes, *, primary: str, view: int) -> Check:
        try:
            raw_block, _ = decode_entry(data)  # a change set is ignored: we execute
            block = Block.from_bytes(raw_block)
        except (EntryError, BlockError) as exc:
            return Check(Verdict.INVALID, f"malformed: {exc}")
        h = block.header
        self._forget_committed()
        head = self._store.head()
        head_height = head.height if head else 0
        path: list[_Valid] = []
        if h.height == head_height + 1 and h.prev_hash == (
            head.hash if head else self._genesis_hash
        ):
            prev, frontier = head, None
        elif h.prev_hash in self._valid:
            parent = self._valid[h.prev_hash]
            prev, frontier = parent.header, parent.frontier
            path = self._path(parent)
            base = path[0].header
            if (base.height, base.prev_hash) != (
                head_height + 1,
                head.hash if head else self._genesis_hash,
            ):
                return Check(Verdict.INVALID, f"block {h.height} is on a branch that lost")
        elif h.height > head_height + 1:
            return Check(Verdict.LATER, f"parent of block {h.height} not validated yet")
        else:
            return Check(Verdict.INVALID, f"block {h.height} does not extend the chain")
        if h.chain_id != self._genesis.chain_id:
            return Check(Verdict.INVALID, "another chain")
        if (h.proposer, h.round) != (primary, view):
            return Check(
                Verdict.INVALID, f"proposer {h.proposer!r} round {h.round}, not {primary!r} {view}"
            )
        if h.timestamp_ms > self._clock_ms() + self._skew_ms_max:
            return Check(Verdict.INVALID, "timestamp ahead of this replica's clock")
        try:
            ids = block.check_body()
        except BlockError as exc:
            return Check(Verdict.INVALID, str(exc))
        txs, problem = self._decode_and_verify(block, ids)
        if problem:
            return Check(Verdict.INVALID, problem)
        with self._store.snapshot() as snap:
            if any(snap.tx_location(t) is not None for t in ids):
                return Check(Verdict.INVALID, "holds a tx the chain already has")
            view_state = SpeculativeView(snap, [v.layer for v in path]) if path else snap
            try:
                outcome = apply_block(
                    view_state,
                    genesis=self._genesis,
                    height=h.height,
                    timestamp_ms=h.timestamp_ms,
                    txs=txs,
                    tx_ids=ids,
                )
            except StateError as exc:  # the block's problem, not this node's
                return Check(Verdict.INVALID, f"execution: {exc}")
        expected, after = assemble_block(
            chain_id=self._genesis.chain_id,
            prev=prev,
            anchor=self._genesis_hash,
            frontier=frontier if frontier is not None else self._store.frontier(),
            txs=list(block.txs),
            results=outcome.results,
            state_root=outcome.state_root,
            timestamp_ms=h.timestamp_ms,
            proposer=primary,
            round=view,
            tx_ids=ids,
        )
        if expected.header.hash != h.hash:
            return Check(
                Verdict.INVALID,
                f"block {h.height} is not what its txs give (results, state root or header)",
            )
        if len(self._valid) < VALIDATED_MAX:
            self._valid[h.hash] = _Valid(
                h,
                WriteLayer(outcome.writes),
                after,
                dataclasses.replace(outcome, change_set=b""),
                tuple(ids),
                data,
                block,
            )
        return Check(Verdict.VALID)

    def kept(self, header_hash: bytes) -> Executed | None:
        """The execution of the valid block with this header hash, to apply it as it
        commits (``node.pipeline.ledger.Ledger.apply``), or None. It is handed out once:
        the block is the committed head once applied, and its children validate on
        the store."""
        self._forget_committed()
        valid = self._valid.pop(header_hash, None)
        if valid is None:
            return None
        return Executed(valid.header.hash, valid.outcome, valid.tx_ids, valid.entry, valid.block)

    def _path(self, top: _Valid) -> list[_Valid]:
        """The validated blocks from just above the head up to ``top``, oldest first."""
        out = [top]
        while out[-1].header.prev_hash in self._valid:
            out.append(self._valid[out[-1].header.prev_hash])
        return list(reversed(out))

    def _forget_committed(self) -> None:
        height = self._store.height
        if any(v.header.height <= height for v in self._valid.values()):
            self._valid = {k: v for k, v in self._valid.items() if v.header.height > height}

    def _decode_and_verify(self, block: Block, ids: Sequence[bytes]) -> tuple[list[Tx], str]:
        """The block's txs, or its first problem. A tx this node admitted is taken as
        admission decoded and verified it: its id is the hash of its bytes, so it is
        the same tx (the forwarded txs every replica receives are most of a block)."""
        known: list[Tx | None] = (
            self._admitted(ids) if self._admitted is not None else [None] * len(ids)
        )
        todo = [i for i, tx in enumerate(known) if tx is None]
        fresh = decode_txs([block.txs[i] for i in todo]) if todo else []
        for i, tx in zip(todo, fresh, strict=True):
            if isinstance(tx, TxError):
                return [], f"tx {i}: {tx}"
            if tx.chain_id != self._genesis.chain_id:
                return [], f"tx {i}: another chain"
        checked = [t for t in fresh if not isinstance(t, TxError)]
        if not todo:
            return [t for t in known if t is not None], ""
        ok = self._verify_batch(
            [t.sender for t in checked],
            [signing_bytes_of(block.txs[i]) for i in todo],
            [t.signature for t in checked],
        )
        bad = [todo[j] for j, good in enumerate(ok) if not good]
        if bad:
            return [], f"tx {bad[0]}: bad signature"
        for i, tx in zip(todo, checked, strict=True):
            known[i] = tx
        return [t for t in known if t is not None], ""
