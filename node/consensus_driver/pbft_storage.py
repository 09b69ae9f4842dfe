"""``PbftStorage`` on LMDB: every vote a replica sends is durable before it leaves
(Castro & Liskov TOCS 2002 §4.6; BFT-PR §4: a replica that forgets its votes signs a
conflicting one after a restart).

The PBFT log is not Raft's: its records are keyed by (kind, view, seq) and replaced by
key, and a stable checkpoint drops every vote at or below it (CL §4.3) while committed
entries stay until an application snapshot covers them. The block store's consensus log
(``LmdbBlockStore.consensus_save``) is an append-and-truncate log by index, so the
records live in an LMDB environment of their own, opened the way the block store opens
its (``sync``/``metasync`` on: a transaction is on disk when ``commit`` returns), in the
``pbft/`` directory beside the block store's files. One ``save`` is one transaction.

Layout: ``records`` (votes, prepared certificates, own checkpoints) keyed by
kind byte + view + seq, ``committed`` keyed by seq, and ``meta`` with the hard state,
the snapshot and the stable checkpoint's state in the clear (``StableState``: what this
replica serves a replica whose missing entries are gone; replaced, never collected) and
the epoch proofs (``epoch/`` + start: an old store has none, and loads). Values are the canonical wire encoding of ``PBFT_RECORDS`` (an append-only tag table,
like the peer wire's).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lmdb

from consensus.pbft_messages import (
    Checkpoint,
    CheckpointCert,
    Commit,
    CommitCert,
    EpochProof,
    Prepare,
    PreparedCert,
    PrePrepare,
    StableState,
    ViewChange,
)
from consensus.pbft_storage import PbftHardState, PbftRecord, record_key
from consensus.types import Entry, Snapshot, SnapshotMeta
from node.transport.wire import MessageCodec, WireError

MAP_SIZE_BYTES = 1 << 34
"""Reserved address space (sparse on disk): committed entries are held until compaction."""

# Append only: a class's position is its tag on disk.
PBFT_RECORDS = MessageCodec(
    [
        PbftHardState,
        PrePrepare,
        Prepare,
        Commit,
        Checkpoint,
        CheckpointCert,
        PreparedCert,
        CommitCert,
        ViewChange,
        Entry,
        Snapshot,
        SnapshotMeta,
        StableState,
        EpochProof,
    ]
)

_KIND_BYTE = {
    "checkpoint": 1,
    "commit": 2,
    "pre_prepare": 3,
    "prepare": 4,
    "prepared": 5,
}
"""In the order of ``record_key``'s kind names, so LMDB key order is record_key order."""


_EPOCH_KEY = b"epoch/"
"""``meta`` keys of the epoch proofs (+ the epoch's start): kept, never collected."""

_VOTE_RECORDS = (PrePrepare, Prepare, Commit, Checkpoint, PreparedCert)


class PbftStorageError(Exception):
    """The PBFT store on disk cannot be read (damaged, or written by something else)."""


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _record_db_key(r: PbftRecord) -> bytes:
    kind, view, seq = record_key(r)
    return bytes([_KIND_BYTE[kind]]) + _u64(view) + _u64(seq)


class LmdbPbftStorage:
    """A ``PbftStorage`` in its own LMDB environment at ``path``."""

    def __init__(self, path: Path, replicas: Sequence[str]) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self._env = lmdb.open(
                str(path),
                map_size=MAP_SIZE_BYTES,
                max_dbs=3,
                sync=True,
                metasync=True,
                writemap=False,
                max_readers=16,
                readahead=False,
            )
        except lmdb.Error as exc:
            raise PbftStorageError(f"{path}: cannot open the PBFT store: {exc}") from None
        self._records = self._env.open_db(b"records")
        self._committed = self._env.open_db(b"committed")
        self._meta = self._env.open_db(b"meta")
        with self._env.begin() as txn:
            raw_hard = txn.get(b"hard", db=self._meta)
            raw_snap = txn.get(b"snapshot", db=self._meta)
        self._hard = PbftHardState() if raw_hard is None else self._decode(raw_hard, PbftHardState)
        self._snapshot = (
            Snapshot(SnapshotMeta(0, 0, tuple(sorted(replicas))), b"")
            if raw_snap is None
            else self._decode(raw_snap, Snapshot)
        )

    def _decode(self, raw: bytes, cls: type[Any] | tuple[type[Any], ...]) -> Any:
        try:
            value = PBFT_RECORDS.decode(raw)
        except WireError as exc:
            raise PbftStorageError(f"{self.path}: damaged PBFT record: {exc}") from None
        if not isinstance(value, cls):
            raise PbftStorageError(f"{self.path}: unexpected {type(value).__name__} record")
        return value

    # -- PbftStorage ------------------------------------------------------------------
    def hard_state(self) -> PbftHardState:
        return self._hard

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def records(self) -> list[PbftRecord]:
        out: list[PbftRecord] = []
        with self._env.begin() as txn:
            for _, raw in txn.cursor(db=self._committed):
                out.append(self._decode(raw, CommitCert))
            for _, raw in txn.cursor(db=self._records):
                out.append(self._decode(raw, _VOTE_RECORDS))
            raw_stable = txn.get(b"stable_state", db=self._meta)
            cur = txn.cursor(db=self._meta)
            if cur.set_range(_EPOCH_KEY):
                for key, raw in cur:
                    if not key.startswith(_EPOCH_KEY):
                        break
                    out.append(self._decode(raw, EpochProof))
        if raw_stable is not None:
            out.append(self._decode(raw_stable, StableState))
        out.sort(key=record_key)
        return out

    def committed(self, from_seq: int, to_seq: int) -> list[CommitCert]:
        out: list[CommitCert] = []
        if to_seq < from_seq:
            return out
        with self._env.begin() as txn:
            cur = txn.cursor(db=self._committed)
            if not cur.set_range(_u64(max(0, from_seq))):
                return out
            for key, raw in cur:
                if int.from_bytes(key, "big") > to_seq:
                    break
                out.append(self._decode(raw, CommitCert))
        return out

    def save(
        self,
        hard_state: PbftHardState | None,
        entries: Sequence[PbftRecord],
        snapshot: Snapshot | None,
    ) -> None:
        collect = hard_state is not None and hard_state.stable.seq > self._hard.stable.seq
        try:
            with self._env.begin(write=True) as txn:
                if snapshot is not None:
                    self._compact_in(txn, snapshot)
                for r in entries:
                    raw = PBFT_RECORDS.encode(r)
                    if isinstance(r, CommitCert):
                        txn.put(_u64(r.entry.index), raw, db=self._committed)
                    elif isinstance(r, StableState):
                        txn.put(b"stable_state", raw, db=self._meta)
                    elif isinstance(r, EpochProof):
                        txn.put(_EPOCH_KEY + _u64(r.start), raw, db=self._meta)
                    else:
                        txn.put(_record_db_key(r), raw, db=self._records)
                if hard_state is not None:
                    txn.put(b"hard", PBFT_RECORDS.encode(hard_state), db=self._meta)
                    if collect:
                        self._collect_in(txn, hard_state.stable.seq)
        except lmdb.Error as exc:
            raise PbftStorageError(f"{self.path}: PBFT save failed: {exc}") from None
        if hard_state is not None:
            self._hard = hard_state
        if snapshot is not None and snapshot.meta.index > self._snapshot.meta.index:
            self._snapshot = snapshot

    def _collect_in(self, txn: Any, stable: int) -> None:
        """CL §4.3: votes at or below a stable checkpoint are never needed again."""
        cur = txn.cursor(db=self._records)
        doomed = [
            k
            for k in cur.iternext(keys=True, values=False)
            if int.from_bytes(k[9:17], "big") <= stable
        ]
        for k in doomed:
            txn.delete(k, db=self._records)

    def _compact_in(self, txn: Any, snapshot: Snapshot) -> bool:
        if snapshot.meta.index <= self._snapshot.meta.index:
            return False
        cur = txn.cursor(db=self._committed)
        while cur.first() and int.from_bytes(cur.key(), "big") <= snapshot.meta.index:
            cur.delete()
        txn.put(b"snapshot", PBFT_RECORDS.encode(snapshot), db=self._meta)
        return True

    def compact(self, snapshot: Snapshot) -> None:
        try:
            with self._env.begin(write=True) as txn:
                changed = self._compact_in(txn, snapshot)
        except lmdb.Error as exc:
            raise PbftStorageError(f"{self.path}: PBFT compact failed: {exc}") from None
        if changed:
            self._snapshot = snapshot

    def close(self) -> None:
        self._env.close()
