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

Rules (who may do what; every other case has a named result code, ``acl.results``):

- governance (``gov.*``): admins of active organisations; a proposal counts as its
  organisation's approval; it takes effect when approvals of active organisations reach
  the genesis quorum (capped at the number of active organisations) and closes as
  rejected when that can no longer happen; it expires after ``PROPOSAL_TTL_MS``;
- identities: an organisation's admins register and revoke its identities; an admin or
  the identity itself rotates its key (the old key then gets ``key_rotated``);
- datasets and grants: admins and stewards of the owner organisation only;
- audit events: the actor is the sender (organisation, identity, key epoch). Apps,
  stewards and admins post events; auditors only oversight interventions and incident
  reports. Every dataset an event uses is matched against the grants in force at the
  block time (owner organisation: always allowed); one unmatched use makes the event
  ``no_grant``, recorded and indexed as a violation. Events that use no data (model
  registration, deployment, oversight, incidents, inference without declared inputs)
  are checked for authorisation and references only. Continuing a training run
  re-checks the data it started with: training on after a revocation is a violation.

State root: a chained commitment, stored in state under ``META_ROOT``::

    root_0 = SHA-256("grantchain/acl-genesis/v1\\0" || genesis.hash || D(writes_0))
    root_h = SHA-256("grantchain/acl-state/v1\\0" || root_{h-1} || u64(h) || u64(ms_h) || D(writes_h))

where ``D`` is SHA-256 over the block's sorted writes (each key and value length-prefixed,
a delete marked), the root key itself excluded. It costs one hash over the block's writes.

It commits to the genesis and to every block's change set, in order: nodes whose roots
agree at h produced the same changes from the same start, so (barring SHA-256
collisions) their states are equal if their stores applied those changes faithfully. A
node whose stored state differs computes different writes as soon as it reads the
differing keys, and its root diverges from then on. It is not recomputed from the stored
content, so it does not itself detect a store damaged after the fact (re-executing the
blocks does). It does NOT support proving one key's value against the root (it is not a
Merkle map): an answer is proven instead by the txs it names (heights and tx ids), whose
receipts carry Merkle inclusion proofs, with ``results_root`` binding each result code.
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from acl import changeset
from acl import keys as K
from acl import kinds as k
from acl.results import Result
from acl.schema import SCHEMAS
from acl.state import Overlay, StateReader, Write, scan_prefix
from chain import codec, limits
from chain.genesis import Genesis
from chain.tx import Tx

TX_AGE_MAX_MS: Final = 24 * 3600 * 1000
"""A tx older than this (by its own timestamp) at block time is ``STALE``."""
TX_FUTURE_MAX_MS: Final = 10 * 60 * 1000
"""A tx more than this ahead of the block time is ``STALE`` (clock skew allowance)."""

PROPOSAL_TTL_MS: Final = 30 * 24 * 3600 * 1000
"""A governance proposal not decided within this time can no longer be voted on, so an
old proposal cannot be revived when the consortium has moved on."""
ACTIVE_GRANTS_PER_PAIR_MAX: Final = 256
"""At most this many unexpired, unrevoked grants of one dataset to one organisation: an
access check walks them, so the bound keeps every event's cost bounded."""

STATE_DOMAIN: Final = b"grantchain/acl-state/v1\x00"
GENESIS_DOMAIN: Final = b"grantchain/acl-genesis/v1\x00"

_STEWARDS = frozenset(("admin", "steward"))


class StateError(RuntimeError):
    """An invariant of the state or of the block sequence is broken (a height gap, time
    going backwards, state from another genesis). The node must stop, not write."""


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


@dataclass(frozen=True, slots=True)
class Principal:
    """The actor behind a tx: an active identity of an active organisation."""

    org_id: str
    name: str
    role: str
    key_epoch: int
    org_key: bytes
    identity_key: bytes
    actor_bytes: bytes = b""
    """Canonical encodings of org id, name and key epoch, back to back: the actor part of
    every event record this principal sends, encoded once per block."""


def writes_digest(writes: Sequence[Write]) -> bytes:
    """SHA-256 over sorted writes, each ``len16(key) key (len32(value) value | ffffffff)``:
    the digest of their change set (``acl.changeset``)."""
    return changeset.digest(changeset.encode(writes))


def chain_root(prev_root: bytes, height: int, timestamp_ms: int, digest: bytes) -> bytes:
    return hashlib.sha256(
        STATE_DOMAIN + prev_root + K.u64(height) + K.u64(timestamp_ms) + digest
    ).digest()


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
        ov.put(K.ORG + K.org_key(org.org_id), _enc(_org_record(org.org_id, org.name, 0)))
    for ident in genesis.identities:
        ik = K.identity_key(ident.org_id, ident.name)
        if ov.get(K.IDENTITY + ik) is not None or ov.get(K.KEY + ident.public_key) is not None:
            raise StateError(f"genesis repeats identity {ident.org_id}/{ident.name} or its key")
        ov.put(
            K.IDENTITY + ik,
            _enc(_identity_record(ident.org_id, ident.name, ident.role, ident.public_key, 0)),
        )
        ov.put(K.KEY + ident.public_key, _enc([ik, 0]))
    for v in genesis.validators:
        ov.put(
            K.VALIDATOR + K.node_key(v.node_id),
            _enc(_validator_record(v.node_id, v.org_id, v.public_key, 0)),
        )
    writes = ov.writes()
    root = hashlib.sha256(GENESIS_DOMAIN + genesis.hash + writes_digest(writes)).digest()
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
    block = _Block(Overlay(state), genesis.chain_id, height, timestamp_ms)
    judge = block.apply
    # Plain ints, not Result members: a block's encoding and its results root take a
    # fast path for exact ints (measured: ~1 us per tx on the leader).
    results = tuple(
        [int(judge(i, tx, tid)) for i, (tx, tid) in enumerate(zip(txs, tx_ids, strict=True))]
    )
    ov = block.ov
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
    layout = _u64(state.get(K.META_LAYOUT))
    if layout != K.LAYOUT_VERSION:
        raise StateError(
            f"state has ACL layout {layout}, this node reads layout {K.LAYOUT_VERSION}: "
            "re-create it from genesis (or migrate it)"
        )
    prev_height = _u64(state.get(K.META_HEIGHT))
    prev_ms = _u64(state.get(K.META_TIMESTAMP))
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


_decode_record = lru_cache(maxsize=1 << 14)(codec.decode)
"""Decoding memoised by the raw bytes: content-addressed, so always coherent with the
state whatever was committed or discarded. The decoded values are shared: never mutate
one (handlers build changed copies)."""

_encode_scalar = lru_cache(maxsize=1 << 16, typed=True)(codec.encode)
"""Canonical bytes of a hashable scalar (str, int, None); ``typed`` keeps True and 1 apart."""

_NIL = codec.encode(None)
_BIN32 = codec.encode(bytes(32))[:2]


def _bin32(value: bytes) -> bytes:
    """Canonical bytes of a 32-byte string (msgpack bin 8 header + the bytes)."""
    return _BIN32 + value


def array_header(n: int) -> bytes:
    """The canonical msgpack array header for ``n`` items: an array's canonical encoding is
    this header followed by the canonical encodings of its items, so records can be built
    from cached, already-canonical parts."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def encode_event_record(
    kind_code: int,
    tx_id: bytes,
    org_id: str,
    identity: str,
    key_epoch: int,
    result: int,
    purpose: str | None,
    uses: Sequence[Sequence[Any]],
    subject: list[Any] | None,
    on_behalf_of: str | None,
    run_id: str | None,
) -> bytes:
    """``codec.encode([kind_code, tx_id, org_id, identity, key_epoch, result, purpose,
    [[dataset_id, version, grant_id], ...], subject, on_behalf_of, run_id])``, byte for byte,
    assembled from memoised parts because it runs once per audit event."""
    enc = _encode_scalar
    actor = enc(org_id) + enc(identity) + enc(key_epoch)
    return _event_record(
        kind_code, tx_id, actor, result, purpose, uses, subject, on_behalf_of, run_id
    )


def _event_record(
    kind_code: int,
    tx_id: bytes,
    actor: bytes,
    result: int,
    purpose: str | None,
    uses: Sequence[Sequence[Any]],
    subject: list[Any] | None,
    on_behalf_of: str | None,
    run_id: str | None,
) -> bytes:
    enc = _encode_scalar
    parts = [
        b"\x9b",
        enc(kind_code),
        _bin32(tx_id),
        actor,
        enc(result),
        enc(purpose),
        array_header(len(uses)),
    ]
    for dataset_id, version, grant_id in uses:
        parts.append(b"\x93")
        parts.append(enc(dataset_id))
        parts.append(enc(version))
        parts.append(_NIL if grant_id is None else _bin32(grant_id))
    if subject is None:
        parts.append(_NIL)
    else:
        parts.append(array_header(len(subject)))
        for item in subject:
            kind = type(item)
            if kind is str or kind is int or item is None:
                parts.append(enc(item))
            else:
                parts.append(codec.encode(item))
    parts.append(enc(on_behalf_of))
    parts.append(enc(run_id))
    return b"".join(parts)


def _u64(raw: bytes | None) -> int | None:
    return None if raw is None or len(raw) != 8 else int.from_bytes(raw, "big")


def _enc(value: Any) -> bytes:
    return codec.encode(value)


def _org_record(org_id: str, name: str, height: int) -> dict[str, Any]:
    return {"org_id": org_id, "name": name, "status": "active", "joined_height": height}


def _identity_record(
    org_id: str, name: str, role: str, public_key: bytes, height: int
) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "name": name,
        "role": role,
        "status": "active",
        "key_epoch": 0,
        "public_key": public_key,
        "registered_height": height,
    }


def _validator_record(node_id: str, org_id: str, public_key: bytes, height: int) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "org_id": org_id,
        "public_key": public_key,
        "status": "active",
        "added_height": height,
    }


ActiveGrant = tuple[bytes, int | None, str | None, frozenset[str], int, int]
"""A grant in the hot index: (grant id, version or None, identity name or None, purposes,
valid_from_ms, valid_until_ms)."""


@lru_cache(maxsize=1 << 14)
def _decode_active(raw: bytes) -> tuple[ActiveGrant, ...]:
    return tuple(
        (gid, version, identity, frozenset(purposes), start, until)
        for gid, version, identity, purposes, start, until in codec.decode(raw)
    )


_MISSING: Final = object()


class _Block:
    """The working state of one block: the overlay and decoded-record caches.

    Caches hold decoded records by state key; every write through ``_store`` updates them,
    so reads after writes in the same block are coherent.
    """

    __slots__ = ("chain_id", "height", "index", "ms", "ov", "records", "senders", "tx_id")

    def __init__(self, ov: Overlay, chain_id: str, height: int, timestamp_ms: int) -> None:
        self.ov = ov
        self.chain_id = chain_id
        self.height = height
        self.ms = timestamp_ms
        self.records: dict[bytes, Any] = {}
        self.senders: dict[bytes, Principal | Result] = {}
        self.index = 0
        self.tx_id = b""

    # -- records -----------------------------------------------------------------------

    def load(self, key: bytes) -> Any:
        """The decoded record under ``key`` (None if absent), cached for the block."""
        cached = self.records.get(key, _MISSING)
        if cached is not _MISSING:
            return cached
        raw = self.ov.get(key)
        value = None if raw is None else _decode_record(raw)
        self.records[key] = value
        return value

    def store(self, key: bytes, value: Any) -> None:
        self.ov.put(key, codec.encode(value))
        self.records[key] = value

    def load_active(self, key: bytes) -> list[ActiveGrant]:
        cached = self.records.get(key, _MISSING)
        if cached is not _MISSING:
            return cached
        raw = self.ov.get(key)
        grants = [] if raw is None else list(_decode_active(raw))
        self.records[key] = grants
        return grants

    def store_active(self, key: bytes, grants: list[ActiveGrant]) -> None:
        if grants:
            value = [[g[0], g[1], g[2], sorted(g[3]), g[4], g[5]] for g in grants]
            self.ov.put(key, codec.encode(value))
        else:
            self.ov.delete(key)
        self.records[key] = grants

    def mark(self, prefix: bytes, kind: str, result: Result) -> None:
        self.ov.put(
            prefix + K.position(self.height, self.index),
            K.MARK.pack(k.KIND_CODES[kind], result, self.ms, self.tx_id),
        )

    def run_event(self, run_id: str, event_type: str, result: Result, round_: int | None) -> None:
        """One event of a run, under its own key: a run's record stays small however long
        the run goes on."""
        self.ov.put_trusted(
            K.RUN_EVENT + K.run_key(run_id) + K.position(self.height, self.index),
            codec.encode([event_type, int(result), self.ms, self.tx_id, round_]),
        )

    def position(self) -> list[Any]:
        """Where the current tx is: [height, index, tx id]."""
        return [self.height, self.index, self.tx_id]

    # -- one tx ------------------------------------------------------------------------

    def apply(self, index: int, tx: Tx, tx_id: bytes) -> Result:
        """Judge one tx, in this order: envelope (chain, freshness, replay, kind), sender,
        payload schema, then the kind's own rules. Only an applied tx writes."""
        if tx.chain_id != self.chain_id or tx.version != _TX_VERSION:
            return Result.WRONG_CHAIN
        ms = self.ms
        tx_ms = tx.timestamp_ms
        if not (tx_ms >= 0 and ms - TX_AGE_MAX_MS <= tx_ms <= ms + TX_FUTURE_MAX_MS):
            return Result.STALE
        tkey = _TX + _U64(tx_ms) + tx_id
        if self.ov.get(tkey) is not None:
            return Result.REPLAYED
        dispatch = _DISPATCH.get(tx.kind)
        if dispatch is None:
            return Result.UNKNOWN_KIND
        principal = self.senders.get(tx.sender)
        if principal is None:
            principal = self.senders[tx.sender] = self.sender(tx.sender)
        if type(principal) is not Principal:
            return principal  # type: ignore[return-value]
        validate, handler = dispatch
        payload = tx.payload
        invalid = validate(payload)
        if invalid is not None:
            return invalid
        self.index = index
        self.tx_id = tx_id
        result = handler(self, principal, payload)
        if result is _ACCEPTED or result is _NO_GRANT:
            self.ov.put_trusted(tkey, _TX_RECORD(self.height, index, result, ms))
        return result

    def sender(self, public_key: bytes) -> Principal | Result:
        entry = self.load(K.KEY + public_key)
        if entry is None:
            return Result.UNKNOWN_SENDER
        ik, epoch = entry
        ident = self.load(K.IDENTITY + ik)
        if ident is None:
            raise StateError(f"key {public_key.hex()} points to a missing identity")
        if ident["status"] != "active":
            return Result.SENDER_REVOKED
        if ident["key_epoch"] != epoch:
            return Result.KEY_ROTATED
        ok = K.org_key(ident["org_id"])
        org = self.load(K.ORG + ok)
        if org is None or org["status"] != "active":
            return Result.ORG_INACTIVE
        org_id, name = ident["org_id"], ident["name"]
        actor = codec.encode(org_id) + codec.encode(name) + codec.encode(epoch)
        return Principal(org_id, name, ident["role"], epoch, ok, ik, actor)

    def forget_senders(self) -> None:
        """Identities or organisations changed: principals must be looked up again."""
        self.senders.clear()

    # -- shared checks -----------------------------------------------------------------

    def active_org(self, org_id: str) -> Result | None:
        org = self.load(K.ORG + K.org_key(org_id))
        if org is None:
            return Result.NOT_FOUND
        if org["status"] != "active":
            return Result.ORG_INACTIVE
        return None

    def dataset(self, dataset_id: str) -> dict[str, Any] | None:
        return self.load(K.DATASET + K.dataset_key(dataset_id))

    def model(self, name: str, version: int) -> dict[str, Any] | None:
        return self.load(K.MODEL + K.model_version_key(name, version))

    def match_grant(
        self,
        p: Principal,
        dataset: dict[str, Any],
        dk: bytes,
        version: int | None,
        purpose: str,
        hint: bytes | None,
    ) -> tuple[bool, bytes | None]:
        """Whether a grant in force now lets ``p`` use the dataset for ``purpose``, and which.

        The owner organisation uses its own data without a grant. Otherwise the first
        matching grant in issue order wins: same grantee org, identity unset or equal,
        version unset or equal, purpose included, ``valid_from_ms <= now < valid_until_ms``,
        and if the event names a grant, that one. Revoked grants are not in the index.
        """
        if dataset["owner_org"] == p.org_id:
            return True, None
        now = self.ms
        for gid, g_version, g_identity, purposes, start, until in self.load_active(
            K.ACTIVE + dk + p.org_key
        ):
            if (
                purpose in purposes
                and start <= now < until
                and (g_version is None or g_version == version)
                and (g_identity is None or g_identity == p.name)
                and (hint is None or hint == gid)
            ):
                return True, gid
        return False, None

    def check_inputs(
        self, p: Principal, refs: Sequence[dict[str, Any]], purpose: str | None
    ) -> tuple[Result, list[list[Any]]] | Result:
        """Resolve dataset refs and match each against the grants in force.

        Returns a rejection (unknown dataset or version), or (ACCEPTED | NO_GRANT, uses)
        with one ``[dataset_id, version, grant_id, context, allowed]`` per ref."""
        uses: list[list[Any]] = []
        result = Result.ACCEPTED
        for ref in refs:
            ds = self.dataset(ref["dataset_id"])
            if ds is None:
                return Result.NOT_FOUND
            version = ref.get("version")
            if version is not None and version > ds["version_count"]:
                return Result.NOT_FOUND
            assert purpose is not None, "the schema requires a purpose with inputs"
            dk = K.dataset_key(ref["dataset_id"])
            allowed, gid = self.match_grant(p, ds, dk, version, purpose, ref.get("grant_id"))
            if not allowed:
                result = Result.NO_GRANT
            uses.append([ref["dataset_id"], version, gid, ref.get("context"), allowed])
        return result, uses

    def log_event(
        self,
        kind: str,
        p: Principal,
        payload: dict[str, Any],
        result: Result,
        uses: list[list[Any]],
        subject: list[Any] | None,
        model: tuple[str, int] | None = None,
        extra_datasets: Sequence[str] = (),
    ) -> None:
        """Record an applied audit event: the log by time, violations, dataset history,
        model uses. The event record: ``[kind code, tx id, org, identity, key epoch,
        result, purpose, uses, subject, on_behalf_of, run_id]``."""
        pos = K.time_position(self.ms, self.height, self.index)
        record = _event_record(
            k.KIND_CODES[kind],
            self.tx_id,
            p.actor_bytes,
            int(result),
            payload.get("purpose"),
            [u[:3] for u in uses],
            subject,
            payload.get("on_behalf_of"),
            payload.get("run_id"),
        )
        put = self.ov.put_trusted
        put(K.LOG + pos, record)
        if result is Result.NO_GRANT:
            put(K.VIOLATION + pos, b"")
        mark = K.MARK.pack(k.KIND_CODES[kind], result, self.ms, self.tx_id)
        at = K.position(self.height, self.index)
        if len(uses) == 1 and not extra_datasets:
            put(K.HISTORY + K.dataset_key(uses[0][0]) + at, mark)
        else:
            datasets = {u[0] for u in uses}
            datasets.update(extra_datasets)
            for dataset_id in sorted(datasets):
                put(K.HISTORY + K.dataset_key(dataset_id) + at, mark)
        if model is not None:
            put(K.MODEL_USE + K.model_version_key(*model) + at, mark)


# -- handlers: each checks everything before its first write --------------------------------

Handler = Callable[[_Block, Principal, dict[str, Any]], Result]


def _gov_propose(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role != "admin":
        return Result.UNAUTHORIZED
    problem = _gov_precondition(b, payload)
    if problem is not None:
        return problem
    proposal = {
        "proposal_id": b.tx_id,
        "action": payload["action"],
        "params": {name: v for name, v in payload.items() if name not in ("v", "action", "reason")},
        "proposer_org": p.org_id,
        "proposed": b.position(),
        "approvals": [p.org_id],
        "rejections": [],
        "status": "open",
        "decided": None,
        "expires_ms": b.ms + PROPOSAL_TTL_MS,
    }
    return _gov_decide(b, proposal)


def _gov_precondition(b: _Block, payload: dict[str, Any]) -> Result | None:
    """Whether the proposed change can be made to the state as it is now."""
    action = payload["action"]
    org_id = payload["org_id"]
    org = b.load(K.ORG + K.org_key(org_id))
    if action == "add_org":
        if org is not None:
            return Result.ALREADY_EXISTS
        if b.load(K.KEY + payload["admin_public_key"]) is not None:
            return Result.ALREADY_EXISTS
        return None
    if org is None:
        return Result.NOT_FOUND
    if org["status"] != "active":
        return Result.ORG_INACTIVE if action != "remove_org" else Result.INVALID_STATE
    validators = _active_validators(b)
    if action == "remove_org":
        # The consortium keeps at least one organisation and one validator.
        if _active_org_count(b) <= 1 or all(v["org_id"] == org_id for v in validators):
            return Result.INVALID_STATE
        return None
    node = b.load(K.VALIDATOR + K.node_key(payload["node_id"]))
    if action == "add_validator":
        if node is not None and node["status"] == "active":
            return Result.ALREADY_EXISTS
        if any(v["public_key"] == payload["node_public_key"] for v in validators):
            return Result.ALREADY_EXISTS
        return None
    if node is None or node["org_id"] != org_id:
        return Result.NOT_FOUND
    if node["status"] != "active":
        return Result.INVALID_STATE
    if len(validators) <= 1:
        return Result.INVALID_STATE
    return None


def _active_orgs(b: _Block) -> list[str]:
    return [
        rec["org_id"]
        for rec in (codec.decode(v) for _, v in scan_prefix(b.ov, K.ORG))
        if rec["status"] == "active"
    ]


def _active_org_count(b: _Block) -> int:
    return len(_active_orgs(b))


def _active_validators(b: _Block) -> list[dict[str, Any]]:
    return [
        rec
        for rec in (codec.decode(v) for _, v in scan_prefix(b.ov, K.VALIDATOR))
        if rec["status"] == "active"
    ]


def _gov_decide(b: _Block, proposal: dict[str, Any]) -> Result:
    """Store the proposal, closing it (and executing it) if the votes of active
    organisations now decide it. Quorum: the genesis quorum, capped at the number of
    active organisations so that removals cannot deadlock governance."""
    active = set(_active_orgs(b))
    quorum = min(_u64(b.ov.get(K.META_QUORUM)) or 1, len(active))
    approvals = sum(1 for o in proposal["approvals"] if o in active)
    rejections = sum(1 for o in proposal["rejections"] if o in active)
    if approvals >= quorum:
        problem = _gov_precondition(b, {"action": proposal["action"], **proposal["params"]})
        proposal["status"] = "failed" if problem is not None else "approved"
        proposal["decided"] = b.position()
        if problem is None:
            _gov_execute(b, proposal)
    elif len(active) - rejections < quorum:
        proposal["status"] = "rejected"
        proposal["decided"] = b.position()
    b.store(K.PROPOSAL + proposal["proposal_id"], proposal)
    return Result.ACCEPTED


def _gov_execute(b: _Block, proposal: dict[str, Any]) -> None:
    params = proposal["params"]
    action = proposal["action"]
    org_id = params["org_id"]
    okey = K.ORG + K.org_key(org_id)
    if action == "add_org":
        b.store(okey, _org_record(org_id, params["org_name"], b.height))
        ik = K.identity_key(org_id, params["admin_name"])
        b.store(
            K.IDENTITY + ik,
            _identity_record(
                org_id, params["admin_name"], "admin", params["admin_public_key"], b.height
            ),
        )
        b.store(K.KEY + params["admin_public_key"], [ik, 0])
    elif action == "remove_org":
        org = dict(b.load(okey))
        org["status"] = "removed"
        org["removed_height"] = b.height
        b.store(okey, org)
        for node in _active_validators(b):
            if node["org_id"] == org_id:
                _remove_validator(b, node)
    elif action == "add_validator":
        b.store(
            K.VALIDATOR + K.node_key(params["node_id"]),
            _validator_record(params["node_id"], org_id, params["node_public_key"], b.height),
        )
    else:
        _remove_validator(b, b.load(K.VALIDATOR + K.node_key(params["node_id"])))
    b.forget_senders()


def _remove_validator(b: _Block, node: dict[str, Any]) -> None:
    b.store(
        K.VALIDATOR + K.node_key(node["node_id"]),
        {**node, "status": "removed", "removed_height": b.height},
    )


def _gov_vote(approve: bool) -> Handler:
    def vote(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
        if p.role != "admin":
            return Result.UNAUTHORIZED
        proposal = b.load(K.PROPOSAL + payload["proposal_id"])
        if proposal is None:
            return Result.NOT_FOUND
        if proposal["status"] != "open" or b.ms >= proposal["expires_ms"]:
            return Result.INVALID_STATE
        if p.org_id in proposal["approvals"] or p.org_id in proposal["rejections"]:
            return Result.DUPLICATE_VOTE
        updated = dict(proposal)
        field = "approvals" if approve else "rejections"
        updated[field] = [*proposal[field], p.org_id]
        return _gov_decide(b, updated)

    return vote


def _identity_register(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role != "admin":
        return Result.UNAUTHORIZED
    ik = K.identity_key(p.org_id, payload["name"])
    if b.load(K.IDENTITY + ik) is not None or b.load(K.KEY + payload["public_key"]) is not None:
        return Result.ALREADY_EXISTS
    record = _identity_record(
        p.org_id, payload["name"], payload["role"], payload["public_key"], b.height
    )
    record["registered_by"] = p.name
    if "description" in payload:
        record["description"] = payload["description"]
    b.store(K.IDENTITY + ik, record)
    b.store(K.KEY + payload["public_key"], [ik, 0])
    b.forget_senders()
    return Result.ACCEPTED


def _identity_revoke(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role != "admin":
        return Result.UNAUTHORIZED
    key = K.IDENTITY + K.identity_key(p.org_id, payload["name"])
    ident = b.load(key)
    if ident is None:
        return Result.NOT_FOUND
    if ident["status"] != "active":
        return Result.INVALID_STATE
    b.store(key, {**ident, "status": "revoked", "revoked": b.position()})
    b.forget_senders()
    return Result.ACCEPTED


def _identity_rotate(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role != "admin" and p.name != payload["name"]:
        return Result.UNAUTHORIZED
    ik = K.identity_key(p.org_id, payload["name"])
    ident = b.load(K.IDENTITY + ik)
    if ident is None:
        return Result.NOT_FOUND
    if ident["status"] != "active":
        return Result.INVALID_STATE
    new_key = payload["new_public_key"]
    if b.load(K.KEY + new_key) is not None:
        return Result.ALREADY_EXISTS
    epoch = ident["key_epoch"] + 1
    b.store(
        K.IDENTITY + ik,
        {**ident, "public_key": new_key, "key_epoch": epoch, "rotated": b.position()},
    )
    b.store(K.KEY + new_key, [ik, epoch])
    b.forget_senders()
    return Result.ACCEPTED


def _dataset_register(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role not in _STEWARDS:
        return Result.UNAUTHORIZED
    key = K.DATASET + K.dataset_key(payload["dataset_id"])
    if b.load(key) is not None:
        return Result.ALREADY_EXISTS
    record: dict[str, Any] = {
        name: payload[name]
        for name in (
            "dataset_id",
            "title",
            "location",
            "sensitivity",
            "licence",
            "consent_basis",
            "original_purpose",
            "record_count",
            "size_bytes",
        )
        if name in payload
    }
    record["owner_org"] = p.org_id
    record["registered_by"] = p.name
    record["registered"] = b.position()
    record["registered_ms"] = b.ms
    record["version_count"] = 1
    b.store(key, record)
    b.store(
        K.version_key(payload["dataset_id"], 1),
        {
            "version": 1,
            "content_hash": payload["content_hash"],
            "parent_version": 0,
            "location": payload["location"],
            "added": b.position(),
            "added_ms": b.ms,
        },
    )
    b.mark(K.HISTORY + K.dataset_key(payload["dataset_id"]), k.DATASET_REGISTER, Result.ACCEPTED)
    return Result.ACCEPTED


def _dataset_add_version(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role not in _STEWARDS:
        return Result.UNAUTHORIZED
    key = K.DATASET + K.dataset_key(payload["dataset_id"])
    ds = b.load(key)
    if ds is None:
        return Result.NOT_FOUND
    if ds["owner_org"] != p.org_id:
        return Result.UNAUTHORIZED
    count = ds["version_count"]
    if payload["parent_version"] > count:
        return Result.NOT_FOUND
    if count >= 2**32 - 1:
        return Result.INVALID_STATE
    location = payload.get("location", ds["location"])
    version = {
        "version": count + 1,
        "content_hash": payload["content_hash"],
        "parent_version": payload["parent_version"],
        "location": location,
        "added": b.position(),
        "added_ms": b.ms,
    }
    if "change_summary" in payload:
        version["change_summary"] = payload["change_summary"]
    b.store(key, {**ds, "version_count": count + 1, "location": location})
    b.store(K.version_key(payload["dataset_id"], count + 1), version)
    b.mark(K.HISTORY + K.dataset_key(payload["dataset_id"]), k.DATASET_ADD_VERSION, Result.ACCEPTED)
    return Result.ACCEPTED


def _grant_issue(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role not in _STEWARDS:
        return Result.UNAUTHORIZED
    ds = b.dataset(payload["dataset_id"])
    if ds is None:
        return Result.NOT_FOUND
    if ds["owner_org"] != p.org_id:
        return Result.UNAUTHORIZED
    version = payload.get("version")
    if version is not None and version > ds["version_count"]:
        return Result.NOT_FOUND
    grantee_org = payload["grantee_org"]
    problem = b.active_org(grantee_org)
    if problem is not None:
        return problem
    identity = payload.get("grantee_identity")
    if identity is not None and b.load(K.IDENTITY + K.identity_key(grantee_org, identity)) is None:
        return Result.NOT_FOUND
    start, until = payload["valid_from_ms"], payload["valid_until_ms"]
    if until <= start or until <= b.ms:
        return Result.INVALID_WINDOW
    dk = K.dataset_key(ds["dataset_id"])
    gk = K.org_key(grantee_org)
    live = [g for g in b.load_active(K.ACTIVE + dk + gk) if g[5] > b.ms]
    if len(live) >= ACTIVE_GRANTS_PER_PAIR_MAX:
        return Result.INVALID_STATE
    gid = b.tx_id
    purposes = sorted(payload["purposes"])
    record: dict[str, Any] = {
        "grant_id": gid,
        "dataset_id": ds["dataset_id"],
        "version": version,
        "owner_org": p.org_id,
        "grantee_org": grantee_org,
        "grantee_identity": identity,
        "purposes": purposes,
        "valid_from_ms": start,
        "valid_until_ms": until,
        "conditions": payload.get("conditions", {}),
        "issued_by": p.name,
        "issued": b.position(),
        "issued_ms": b.ms,
        "revoked": None,
    }
    b.store(K.GRANT + gid, record)
    akey = K.ACTIVE + dk + gk
    # Grants past their window can never match again: drop them from the hot index.
    b.store_active(akey, [*live, (gid, version, identity, frozenset(purposes), start, until)])
    b.ov.put(K.BY_DATASET + dk + gk + gid, b"")
    b.ov.put(K.BY_GRANTEE + gk + dk + gid, b"")
    b.mark(K.HISTORY + dk, k.GRANT_ISSUE, Result.ACCEPTED)
    return Result.ACCEPTED


def _grant_revoke(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role not in _STEWARDS:
        return Result.UNAUTHORIZED
    gkey = K.GRANT + payload["grant_id"]
    grant = b.load(gkey)
    if grant is None:
        return Result.NOT_FOUND
    if grant["owner_org"] != p.org_id:
        return Result.UNAUTHORIZED
    if grant["revoked"] is not None:
        return Result.INVALID_STATE
    revoked: dict[str, Any] = {"by": p.name, "at": b.position(), "at_ms": b.ms}
    if "reason" in payload:
        revoked["reason"] = payload["reason"]
    b.store(gkey, {**grant, "revoked": revoked})
    dk = K.dataset_key(grant["dataset_id"])
    akey = K.ACTIVE + dk + K.org_key(grant["grantee_org"])
    b.store_active(akey, [g for g in b.load_active(akey) if g[0] != grant["grant_id"]])
    b.mark(K.HISTORY + dk, k.GRANT_REVOKE, Result.ACCEPTED)
    return Result.ACCEPTED


# -- audit events ---------------------------------------------------------------------------


def _audit_common(b: _Block, kind: str, p: Principal, payload: dict[str, Any]) -> Result | None:
    if p.role not in k.AUDIT_ROLES[kind]:
        return Result.UNAUTHORIZED
    behalf = payload.get("on_behalf_of")
    if behalf is not None and b.load(K.ORG + K.org_key(behalf)) is None:
        return Result.NOT_FOUND
    return None


_ACCESS_ROLES: Final = k.AUDIT_ROLES[k.AUDIT_DATA_ACCESS]
_ACCESS_CODE: Final = k.KIND_CODES[k.AUDIT_DATA_ACCESS]


def _data_access(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
    """The hot path (most of the chain's traffic): one dataset, one walk of the pair's
    grants, three or four writes, so it is written out rather than composed."""
    if p.role not in _ACCESS_ROLES:
        return Result.UNAUTHORIZED
    if "on_behalf_of" in payload and b.load(K.ORG + K.org_key(payload["on_behalf_of"])) is None:
        return Result.NOT_FOUND
    dataset_id = payload["dataset_id"]
    dk = K.dataset_key(dataset_id)
    ds = b.load(K.DATASET + dk)
    if ds is None:
        return Result.NOT_FOUND
    version = payload.get("version")
    if version is not None and version > ds["version_count"]:
        return Result.NOT_FOUND
    allowed, gid = b.match_grant(p, ds, dk, version, payload["purpose"], payload.get("grant_id"))
    result = Result.ACCEPTED if allowed else Result.NO_GRANT
    tx_id, ms = b.tx_id, b.ms
    at = K.position(b.height, b.index)
    pos = K.u64(ms) + at
    put = b.ov.put_trusted
    put(
        K.LOG + pos,
        _event_record(
            _ACCESS_CODE,
            tx_id,
            p.actor_bytes,
            result,
            payload["purpose"],
            ((dataset_id, version, gid),),
            None,
            payload.get("on_behalf_of"),
            payload.get("run_id"),
        ),
    )
    if not allowed:
        put(K.VIOLATION + pos, b"")
    put(K.HISTORY + dk + at, K.MARK.pack(_ACCESS_CODE, result, ms, tx_id))
    return result


def _with_inputs(
    kind: str,
    subject: Callable[
        [_Block, Principal, dict[str, Any]],
        Result | tuple[list[Any] | None, tuple[str, int] | None],
    ],
) -> Handler:
    """An audit event with optional dataset inputs and a kind-specific subject check."""

    def handle(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
        problem = _audit_common(b, kind, p, payload)
        if problem is not None:
            return problem
        checked = b.check_inputs(p, payload.get("inputs", ()), payload.get("purpose"))
        if isinstance(checked, Result):
            return checked
        found = subject(b, p, payload)
        if isinstance(found, Result):
            return found
        result, uses = checked
        subj, model = found
        b.log_event(kind, p, payload, result, uses, subj, model, _extra_datasets(payload))
        return result

    return handle


def _extra_datasets(payload: dict[str, Any]) -> list[str]:
    extra = []
    if "dataset_id" in payload:
        extra.append(payload["dataset_id"])
    if "output_dataset_id" in payload:
        extra.append(payload["output_dataset_id"])
    return extra


def _model_subject(
    b: _Block, p: Principal, payload: dict[str, Any]
) -> Result | tuple[list[Any] | None, tuple[str, int] | None]:
    name, version = payload.get("model_name"), payload.get("model_version")
    if name is None or version is None:
        return None, None
    if b.model(name, version) is None:
        return Result.NOT_FOUND
    return [name, version], (name, version)


def _incident_subject(
    b: _Block, p: Principal, payload: dict[str, Any]
) -> Result | tuple[list[Any] | None, tuple[str, int] | None]:
    if "dataset_id" in payload and b.dataset(payload["dataset_id"]) is None:
        return Result.NOT_FOUND
    return _model_subject(b, p, payload)


def _derivation(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
    problem = _audit_common(b, k.AUDIT_DATASET_DERIVATION, p, payload)
    if problem is not None:
        return problem
    checked = b.check_inputs(p, payload["inputs"], payload["purpose"])
    if isinstance(checked, Result):
        return checked
    output = payload.get("output_dataset_id")
    if output is not None:
        ds = b.dataset(output)
        if ds is None:
            return Result.NOT_FOUND
        if ds["owner_org"] != p.org_id:
            return Result.UNAUTHORIZED
    result, uses = checked
    b.log_event(
        k.AUDIT_DATASET_DERIVATION,
        p,
        payload,
        result,
        uses,
        [output, payload["output_digest"]],
        None,
        _extra_datasets(payload),
    )
    if output is not None:
        b.store(
            K.DERIVATION + K.dataset_key(output) + K.position(b.height, b.index),
            {
                "activity": payload["activity"],
                "inputs": uses,
                "output_digest": payload["output_digest"],
                "result": int(result),
                "tx_id": b.tx_id,
                "at_ms": b.ms,
            },
        )
    return result


_TERMINAL = frozenset(("COMPLETE", "FAIL", "ABORT"))


def _training_run(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
    problem = _audit_common(b, k.AUDIT_TRAINING_RUN, p, payload)
    if problem is not None:
        return problem
    rkey = K.RUN + K.run_key(payload["run_id"])
    run = b.load(rkey)
    event_type = payload["event_type"]
    if event_type == "START":
        if run is not None:
            return Result.ALREADY_EXISTS
        refs: list[dict[str, Any]] = list(payload["inputs"])
    else:
        if run is None:
            return Result.NOT_FOUND
        if run["org_id"] != p.org_id:
            return Result.UNAUTHORIZED
        if run["status"] in _TERMINAL:
            return Result.INVALID_STATE
        # Continuing a run keeps using its data: the grants must still be in force.
        refs = [_ref(u) for u in run["inputs"]] + list(payload.get("inputs", ()))
    base = payload.get("base_model")
    if base is not None and b.model(base["model_name"], base["model_version"]) is None:
        return Result.NOT_FOUND
    checked = b.check_inputs(p, refs, payload["purpose"])
    if isinstance(checked, Result):
        return checked
    result, uses = checked
    if run is None:
        run = {
            "run_id": payload["run_id"],
            "type": "training",
            "org_id": p.org_id,
            "identity": p.name,
            "purpose": payload["purpose"],
            "inputs": [],
            "grants_used": [],
            "base_model": base,
            "event_count": 0,
            "violation": False,
        }
    run = {
        **run,
        "inputs": _latest_uses(uses),
        "grants_used": _merge_grants(run["grants_used"], uses),
        "status": event_type,
        "event_count": run["event_count"] + 1,
        "violation": run["violation"] or result is Result.NO_GRANT,
    }
    b.run_event(payload["run_id"], event_type, result, None)
    for name in ("code_digest", "config_digest", "environment_digest", "model_digest"):
        if name in payload:
            run[name] = payload[name]
    b.store(rkey, run)
    b.log_event(
        k.AUDIT_TRAINING_RUN, p, payload, result, uses, [payload["run_id"], event_type], None
    )
    return result


def _latest_uses(uses: list[list[Any]]) -> list[list[Any]]:
    """One entry per (dataset, version), as checked by the latest event."""
    seen: set[tuple[str, int | None]] = set()
    out = []
    for use in uses:
        if (use[0], use[1]) not in seen:
            seen.add((use[0], use[1]))
            out.append(use)
    return out


def _merge_grants(known: list[bytes], uses: list[list[Any]]) -> list[bytes]:
    """Every grant a run relied on at any of its events, in first-use order: the lineage
    of its model rests on all of them."""
    merged = list(known)
    for use in uses:
        if use[2] is not None and use[2] not in merged:
            merged.append(use[2])
    return merged


def _ref(use: list[Any]) -> dict[str, Any]:
    ref: dict[str, Any] = {"dataset_id": use[0]}
    if use[1] is not None:
        ref["version"] = use[1]
    # No grant hint: any grant in force now may cover the continued use.
    return ref


def _model_registration(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
    problem = _audit_common(b, k.AUDIT_MODEL_REGISTRATION, p, payload)
    if problem is not None:
        return problem
    name, version = payload["model_name"], payload["model_version"]
    owner_key = K.MODEL + K.model_version_key(name, 0)
    owner = b.load(owner_key)
    if owner is not None and owner["org_id"] != p.org_id:
        return Result.UNAUTHORIZED
    if b.model(name, version) is not None:
        return Result.ALREADY_EXISTS
    runs = payload.get("training_runs", [])
    for run_id in runs:
        if b.load(K.RUN + K.run_key(run_id)) is None:
            return Result.NOT_FOUND
    parents = payload.get("parent_models", [])
    for parent in parents:
        if b.model(parent["model_name"], parent["model_version"]) is None:
            return Result.NOT_FOUND
    if owner is None:
        b.store(owner_key, {"model_name": name, "org_id": p.org_id, "registered": b.position()})
    record = {
        "model_name": name,
        "model_version": version,
        "org_id": p.org_id,
        "registered_by": p.name,
        "weights_digest": payload["weights_digest"],
        "training_runs": runs,
        "parent_models": [[m["model_name"], m["model_version"]] for m in parents],
        "model_card_digest": payload.get("model_card_digest"),
        "registered": b.position(),
        "registered_ms": b.ms,
    }
    b.store(K.MODEL + K.model_version_key(name, version), record)
    b.log_event(
        k.AUDIT_MODEL_REGISTRATION,
        p,
        payload,
        Result.ACCEPTED,
        [],
        [name, version],
        (name, version),
    )
    return Result.ACCEPTED


def _federated_round(b: _Block, p: Principal, payload: dict[str, Any]) -> Result:
    problem = _audit_common(b, k.AUDIT_FEDERATED_ROUND, p, payload)
    if problem is not None:
        return problem
    for org_id in payload["participants"]:
        if b.load(K.ORG + K.org_key(org_id)) is None:
            return Result.NOT_FOUND
    rkey = K.RUN + K.run_key(payload["run_id"])
    run = b.load(rkey)
    if run is not None and (run["org_id"] != p.org_id or run["type"] != "federated"):
        return Result.UNAUTHORIZED
    checked = b.check_inputs(p, payload.get("inputs", ()), payload.get("purpose"))
    if isinstance(checked, Result):
        return checked
    result, uses = checked
    if run is None:
        run = {
            "run_id": payload["run_id"],
            "type": "federated",
            "org_id": p.org_id,
            "identity": p.name,
            "purpose": payload.get("purpose"),
            "inputs": [],
            "base_model": None,
            "event_count": 0,
            "violation": False,
            "status": "RUNNING",
            "participants": [],
            "grants_used": [],
        }
    run = {
        **run,
        "inputs": _latest_uses(uses + run["inputs"]),
        "grants_used": _merge_grants(run["grants_used"], uses),
        "event_count": run["event_count"] + 1,
        "participants": sorted(set(run["participants"]) | set(payload["participants"])),
        "model_digest": payload["aggregate_digest"],
        "violation": run["violation"] or result is Result.NO_GRANT,
    }
    b.store(rkey, run)
    b.run_event(payload["run_id"], "ROUND", result, payload["round"])
    b.log_event(
        k.AUDIT_FEDERATED_ROUND,
        p,
        payload,
        result,
        uses,
        [payload["run_id"], payload["round"]],
        None,
    )
    return result


_HANDLERS: Final[dict[str, Handler]] = {
    k.GOV_PROPOSE: _gov_propose,
    k.GOV_APPROVE: _gov_vote(approve=True),
    k.GOV_REJECT: _gov_vote(approve=False),
    k.IDENTITY_REGISTER: _identity_register,
    k.IDENTITY_REVOKE: _identity_revoke,
    k.IDENTITY_ROTATE: _identity_rotate,
    k.DATASET_REGISTER: _dataset_register,
    k.DATASET_ADD_VERSION: _dataset_add_version,
    k.GRANT_ISSUE: _grant_issue,
    k.GRANT_REVOKE: _grant_revoke,
    k.AUDIT_DATA_ACCESS: _data_access,
    k.AUDIT_DATASET_DERIVATION: _derivation,
    k.AUDIT_TRAINING_RUN: _training_run,
    k.AUDIT_MODEL_REGISTRATION: _model_registration,
    k.AUDIT_EVALUATION: _with_inputs(k.AUDIT_EVALUATION, _model_subject),
    k.AUDIT_DEPLOYMENT: _with_inputs(k.AUDIT_DEPLOYMENT, _model_subject),
    k.AUDIT_INFERENCE_BATCH: _with_inputs(k.AUDIT_INFERENCE_BATCH, _model_subject),
    k.AUDIT_OVERSIGHT_INTERVENTION: _with_inputs(k.AUDIT_OVERSIGHT_INTERVENTION, _model_subject),
    k.AUDIT_INCIDENT_REPORT: _with_inputs(k.AUDIT_INCIDENT_REPORT, _incident_subject),
    k.AUDIT_FEDERATED_ROUND: _federated_round,
}

assert _HANDLERS.keys() == k.KINDS.keys(), "every kind has a handler"

_DISPATCH: Final[dict[str, tuple[Callable[[Any], Result | None], Handler]]] = {
    kind: (SCHEMAS[kind].validate, handler) for kind, handler in _HANDLERS.items()
}
"""kind -> (payload check, handler): one lookup per tx."""
_TX: Final = K.TX
_U64: Final = struct.Struct(">Q").pack
_TX_VERSION: Final = limits.TX_VERSION
_TX_RECORD: Final = K.TX_RECORD.pack
_ACCEPTED: Final = Result.ACCEPTED
_NO_GRANT: Final = Result.NO_GRANT
