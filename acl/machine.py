"""Apply committed blocks to the ACL state: the deterministic grant and AI-audit machine.

``apply_block(state, genesis=..., height=..., timestamp_ms=..., txs=...)`` reads the
committed state through a ``StateReader``, never writes it, and returns a ``BlockOutcome``:
one result code per tx, the block's writes sorted by key, and the new state root. The
caller persists the writes in the same (LMDB) write transaction as the block, or applies
them to a ``MemoryState``. ``replay_block`` gives the same outcome from the change set a
proposer's ``apply_block`` produced, without executing the txs (``acl.changeset``).

Preconditions, the node's job before this is called:
- every tx was decoded strictly (``chain.tx.decode_tx``) and its **signature verified**
  (batched on the kernel backend): this machine trusts ``tx.sender`` signed the tx;
- ``tx_ids``, when given, are the txs' ids (leaf hashes of their bytes, which the block
  already computed); otherwise they are recomputed here.

Determinism: the only inputs are the reader's content, the genesis, the height, the block
timestamp (the only clock) and the txs. Records are encoded with ``chain.codec`` (no
floats, sorted maps) or ``struct``; nothing iterates a set or depends on hash seeds.

Replay protection: every applied tx leaves ``T || tx ms || tx_id -> (height, index,
result, block ms)`` (``keys.tx_key``); a tx whose marker is there is ``REPLAYED``. A
rejected tx leaves nothing (a rejection never changes state), so it may be re-submitted
and is judged again; the freshness window
(``TX_AGE_MAX_MS`` / ``TX_FUTURE_MAX_MS`` around the block time, else ``STALE``) bounds how
late a signed tx can still take effect. The tx nonce only makes otherwise identical txs
distinct.

This module is the dispatcher: it judges each tx's envelope, sender and payload schema,
then hands it to its kind's handler. Who may do what (every other case has a named
result code, ``acl.results``) is one module per family of kinds:

- ``governance_rules`` (``gov.*``): admins of active organisations propose and vote on
  consortium changes, decided at quorum;
- ``identity_rules`` (``identity.*``): an organisation's admins register and revoke its
  identities; an admin or the identity itself rotates its key;
- ``dataset_rules`` (``dataset.*``) and ``grant_rules`` (``grant.*``): admins and
  stewards of the owner organisation only;
- ``audit_rules`` (``audit.*``) and ``run_rules`` (training runs, federated rounds):
  every dataset an event uses is matched against the grants in force at the block time;
  one unmatched use makes the event ``no_grant``, recorded and indexed as a violation.

They work on a ``block_context.BlockContext`` (the block's overlay, caches and shared
checks) and store ``records``. The state root each block ends with is ``state_root``'s
chained commitment to the genesis and every block's change set.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from acl import (
    audit_counters,
    audit_rules,
    changeset,
    dataset_rules,
    governance_rules,
    grant_rules,
    identity_rules,
    run_rules,
)
from acl import keys as K
from acl import kinds as k
from acl.block_context import BlockContext, Handler, Principal
from acl.governance_rules import PROPOSAL_TTL_MS
from acl.grant_rules import ACTIVE_GRANTS_PER_PAIR_MAX
from acl.records import (
    ActiveGrant,
    array_header,
    decode_u64,
    encode_event_record,
    identity_record,
    org_record,
    validator_record,
)
from acl.results import Result
from acl.schema import VALIDATORS
from acl.state import Overlay, StateError, StateReader, Write
from acl.state_root import (
    GENESIS_DOMAIN,
    STATE_DOMAIN,
    chain_root,
    genesis_root,
    writes_digest,
)
from chain import codec, limits
from chain.genesis import Genesis
from chain.tx import Tx

__all__ = [
    "ACTIVE_GRANTS_PER_PAIR_MAX",
    "GENESIS_DOMAIN",
    "PROPOSAL_TTL_MS",
    "STATE_DOMAIN",
    "TX_AGE_MAX_MS",
    "TX_FUTURE_MAX_MS",
    "ActiveGrant",
    "BlockOutcome",
    "Handler",
    "Principal",
    "StateError",
    "apply_block",
    "array_header",
    "chain_root",
    "encode_event_record",
    "genesis_state",
    "replay_block",
    "writes_digest",
]

TX_AGE_MAX_MS: Final = 24 * 3600 * 1000
"""A tx older than this (by its own timestamp) at block time is ``STALE``."""
TX_FUTURE_MAX_MS: Final = 10 * 60 * 1000
"""A tx more than this ahead of the block time is ``STALE`` (clock skew allowance)."""


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    height: int
    results: tuple[int, ...]
    """One result code per tx, in block order (``acl.results.Result`` values)."""
    writes: tuple[Write, ...]
    """The state changes, sorted by key; value None deletes."""
    state_root: bytes
    """32 bytes: goes into the block header."""
    change_set: bytes = b""
    """``writes`` but the root's own, as ``acl.changeset`` encodes them: what the root
    hashes, and what a proposer ships so followers can ``replay_block``."""


def genesis_state(genesis: Genesis) -> BlockOutcome:
    """The state before block 1: the consortium of the genesis, at height 0."""
    genesis.check()
    ov = Overlay(_Empty())
    ov.put(K.META_CHAIN, genesis.chain_id.encode())
    ov.put(K.META_LAYOUT, K.u64(K.LAYOUT_VERSION))
    ov.put(K.META_HEIGHT, K.u64(0))
    ov.put(K.META_TIMESTAMP, K.u64(genesis.timestamp_ms))
    ov.put(K.META_QUORUM, K.u64(genesis.governance_quorum))
    for org in genesis.organisations:
        ov.put(K.ORG + K.org_key(org.org_id), codec.encode(org_record(org.org_id, org.name, 0)))
    for ident in genesis.identities:
        ik = K.identity_key(ident.org_id, ident.name)
        if ov.get(K.IDENTITY + ik) is not None or ov.get(K.KEY + ident.public_key) is not None:
            raise StateError(f"genesis repeats identity {ident.org_id}/{ident.name} or its key")
        ov.put(
            K.IDENTITY + ik,
            codec.encode(
                identity_record(ident.org_id, ident.name, ident.role, ident.public_key, 0)
            ),
        )
        ov.put(K.KEY + ident.public_key, codec.encode([ik, 0]))
    for v in genesis.validators:
        ov.put(
            K.VALIDATOR + K.node_key(v.node_id),
            codec.encode(validator_record(v.node_id, v.org_id, v.public_key, 0)),
        )
    writes = ov.writes()
    root = genesis_root(genesis.hash, writes_digest(writes))
    all_writes = tuple(sorted((*writes, (K.META_ROOT, root))))
    return BlockOutcome(height=0, results=(), writes=all_writes, state_root=root)


def apply_block(
    state: StateReader,
    *,
    genesis: Genesis,
    height: int,
    timestamp_ms: int,
    txs: Sequence[Tx],
    tx_ids: Sequence[bytes] | None = None,
) -> BlockOutcome:
    """Apply the block at ``height`` (the state holds ``height - 1``); see the module doc
    for the preconditions (signatures already verified). Raises ``StateError`` on a
    broken invariant; every tx-level problem is a result code instead."""
    if len(txs) > limits.BLOCK_TXS_MAX:
        raise StateError(f"{len(txs)} txs is over the block limit of {limits.BLOCK_TXS_MAX}")
    if tx_ids is None:
        tx_ids = [tx.tx_id for tx in txs]
    elif len(tx_ids) != len(txs):
        raise StateError(f"{len(tx_ids)} tx ids for {len(txs)} txs")
    prev_root = _check_next(state, genesis, height, timestamp_ms)
    block = BlockContext(Overlay(state), genesis.chain_id, height, timestamp_ms)
    judge = _judge
    # Plain ints, not Result members: a block's encoding and its results root take a
    # fast path for exact ints (measured: ~1 us per tx on the leader).
    results = tuple(
        [int(judge(block, i, tx, tid)) for i, (tx, tid) in enumerate(zip(txs, tx_ids, strict=True))]
    )
    ov = block.ov
    audit_counters.record(ov, height, timestamp_ms, block.tally)
    ov.put(K.META_HEIGHT, K.u64(height))
    ov.put(K.META_TIMESTAMP, K.u64(timestamp_ms))
    writes = list(ov.writes())
    if any(key == K.META_ROOT for key, _ in writes[:8]):
        raise StateError("a handler wrote the state root key")
    change_set = changeset.encode(writes)
    root = chain_root(prev_root, height, timestamp_ms, changeset.digest(change_set))
    bisect.insort(writes, (K.META_ROOT, root))
    return BlockOutcome(height, results, tuple(writes), root, change_set)


def replay_block(
    state: StateReader,
    *,
    genesis: Genesis,
    height: int,
    timestamp_ms: int,
    results: Sequence[int],
    change_set: bytes,
) -> BlockOutcome:
    """The outcome of the block at ``height`` from the change set its proposer's
    execution produced (``acl.changeset``), without executing its txs: what a Raft
    follower does with the change set the leader ships with each block.

    The state must hold ``height - 1``, as for ``apply_block`` (else ``StateError``). The
    change set must decode strictly, record this height and timestamp, and leave the root
    key alone, else ``changeset.ChangeSetError``. That it is the change set the txs
    produce is the proposer's word: the caller compares the returned root with the
    header's, which binds the change set to the block, and a node that wants to check
    the execution itself re-executes instead.
    """
    prev_root = _check_next(state, genesis, height, timestamp_ms)
    writes = changeset.decode(change_set)
    for key, want in ((K.META_HEIGHT, K.u64(height)), (K.META_TIMESTAMP, K.u64(timestamp_ms))):
        i = bisect.bisect_left(writes, (key,))
        if i == len(writes) or writes[i] != (key, want):
            raise changeset.ChangeSetError(f"it does not record the block's {key!r}")
    i = bisect.bisect_left(writes, (K.META_ROOT,))
    if i < len(writes) and writes[i][0] == K.META_ROOT:
        raise changeset.ChangeSetError("it writes the state root key")
    root = chain_root(prev_root, height, timestamp_ms, changeset.digest(change_set))
    writes.insert(i, (K.META_ROOT, root))
    return BlockOutcome(height, tuple(results), tuple(writes), root, change_set)


def _check_next(state: StateReader, genesis: Genesis, height: int, timestamp_ms: int) -> bytes:
    """Check that block ``height`` at ``timestamp_ms`` may follow ``state`` (same chain
    and layout, the next height, time not going back); return the state's root."""
    chain_id = state.get(K.META_CHAIN)
    if chain_id != genesis.chain_id.encode():
        raise StateError(f"state belongs to chain {chain_id!r}, not {genesis.chain_id!r}")
    layout = decode_u64(state.get(K.META_LAYOUT))
    if layout != K.LAYOUT_VERSION:
        raise StateError(
            f"state has ACL layout {layout}, this node reads layout {K.LAYOUT_VERSION}: "
            "re-create it from genesis (or migrate it)"
        )
    prev_height = decode_u64(state.get(K.META_HEIGHT))
    prev_ms = decode_u64(state.get(K.META_TIMESTAMP))
    prev_root = state.get(K.META_ROOT)
    if prev_height is None or prev_ms is None or prev_root is None or len(prev_root) != 32:
        raise StateError("state has no height, timestamp or root: apply genesis_state first")
    if height != prev_height + 1:
        raise StateError(f"block {height} applied on state at height {prev_height}")
    if timestamp_ms < prev_ms:
        raise StateError(
            f"block {height} timestamp {timestamp_ms} is before the previous {prev_ms}"
        )
    return prev_root


class _Empty:
    def get(self, key: bytes) -> bytes | None:
        return None

    def range(self, start: bytes, end: bytes | None) -> Any:
        return iter(())


# -- dispatch -------------------------------------------------------------------------------

_HANDLERS: Final[dict[str, Handler]] = {
    k.GOV_PROPOSE: governance_rules.propose,
    k.GOV_APPROVE: governance_rules.approve,
    k.GOV_REJECT: governance_rules.reject,
    k.IDENTITY_REGISTER: identity_rules.register,
    k.IDENTITY_REVOKE: identity_rules.revoke,
    k.IDENTITY_ROTATE: identity_rules.rotate,
    k.DATASET_REGISTER: dataset_rules.register,
    k.DATASET_ADD_VERSION: dataset_rules.add_version,
    k.GRANT_ISSUE: grant_rules.issue,
    k.GRANT_REVOKE: grant_rules.revoke,
    k.AUDIT_DATA_ACCESS: audit_rules.record_data_access,
    k.AUDIT_DATASET_DERIVATION: audit_rules.record_derivation,
    k.AUDIT_TRAINING_RUN: run_rules.record_training_run,
    k.AUDIT_MODEL_REGISTRATION: audit_rules.register_model,
    k.AUDIT_EVALUATION: audit_rules.record_evaluation,
    k.AUDIT_DEPLOYMENT: audit_rules.record_deployment,
    k.AUDIT_INFERENCE_BATCH: audit_rules.record_inference_batch,
    k.AUDIT_OVERSIGHT_INTERVENTION: audit_rules.record_oversight_intervention,
    k.AUDIT_INCIDENT_REPORT: audit_rules.record_incident_report,
    k.AUDIT_FEDERATED_ROUND: run_rules.record_federated_round,
}

assert _HANDLERS.keys() == k.KINDS.keys(), "every kind has a handler"

_DISPATCH: Final[dict[str, tuple[Callable[[Any], Result | None], Handler]]] = {
    kind: (VALIDATORS[kind], handler) for kind, handler in _HANDLERS.items()
}
"""kind -> (payload check, handler): one lookup per tx."""
_TX: Final = K.TX
_U64: Final = struct.Struct(">Q").pack
_TX_VERSION: Final = limits.TX_VERSION
_TX_RECORD: Final = K.TX_RECORD.pack
_ACCEPTED: Final = Result.ACCEPTED
_NO_GRANT: Final = Result.NO_GRANT


def _judge(b: BlockContext, index: int, tx: Tx, tx_id: bytes) -> Result:
    """Judge one tx, in this order: envelope (chain, freshness, replay, kind), sender,
    payload schema, then the kind's own rules. Only an applied tx writes."""
    if tx.chain_id != b.chain_id or tx.version != _TX_VERSION:
        return Result.WRONG_CHAIN
    ms = b.ms
    tx_ms = tx.timestamp_ms
    if not (tx_ms >= 0 and ms - TX_AGE_MAX_MS <= tx_ms <= ms + TX_FUTURE_MAX_MS):
        return Result.STALE
    tkey = _TX + _U64(tx_ms) + tx_id
    if b.ov.get(tkey) is not None:
        return Result.REPLAYED
    dispatch = _DISPATCH.get(tx.kind)
    if dispatch is None:
        return Result.UNKNOWN_KIND
    principal = b.senders.get(tx.sender)
    if principal is None:
        principal = b.senders[tx.sender] = b.sender(tx.sender)
    if type(principal) is not Principal:
        return principal  # type: ignore[return-value]
    validate, handler = dispatch
    payload = tx.payload
    invalid = validate(payload)
    if invalid is not None:
        return invalid
    b.index = index
    b.tx_id = tx_id
    result = handler(b, principal, payload)
    if result is _ACCEPTED or result is _NO_GRANT:
        b.ov.put_trusted(tkey, _TX_RECORD(b.height, index, result, ms))
    return result
