"""The consensus core's durable data — hard state, snapshot, log entries, all opaque
bytes — in an LMDB environment of its own, ``<data dir>/consensus``, beside the block
store's.

Why its own: LMDB has one writer per environment, and appending a block (thousands of
puts and an fsync) takes tens of milliseconds. Raft must make each entry durable before
a node acknowledges it or counts its own vote for it; entries queued behind block
appends on one writer would stall replication. With two environments and two writer
threads, the log's fsyncs never wait for a block's, so blocks are stored while the
next ones replicate.

The same rules as the block store: ``sync`` and ``metasync`` on, never ``writemap``,
every write transaction on one dedicated thread, the map grown before it fills (no
reader runs here but on that thread, so growing needs no lock).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import lmdb

from storage.blockstore import NotAGrantchainStore, StoreError

SCHEMA_TAG = b"grantchain-consensus/1"
MAP_SIZE_INITIAL_BYTES = 64 * 1024 * 1024
HARD_KEY = b"hard"
SNAPSHOT_KEY = b"snapshot"


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


class ConsensusLog:
    """Hard state, snapshot and entries by index; every method is durable on return."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        data = self.path / "data.mdb"
        try:
            self._env = lmdb.open(
                str(self.path),
                map_size=max(MAP_SIZE_INITIAL_BYTES, data.stat().st_size if data.exists() else 0),
                max_dbs=3,
                sync=True,
                metasync=True,
                writemap=False,
                max_readers=16,
                readahead=False,
            )
        except lmdb.Error as exc:
            raise NotAGrantchainStore(
                f"{self.path}: cannot open the LMDB environment: {exc}"
            ) from None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmdb-consensus")
        self._meta: Any = None
        self._log: Any = None
        self._on_writer(self._open_dbs)

    def _on_writer(self, fn: Any, *args: Any) -> Any:
        return self._writer.submit(fn, *args).result()

    def _open_dbs(self) -> None:
        env = self._env
        try:
            self._meta = env.open_db(b"meta")
            self._log = env.open_db(b"log")
            with env.begin(write=True) as txn:
                tag = txn.get(b"schema", db=self._meta)
                if tag is None:
                    if txn.stat(self._log)["entries"] or txn.stat(self._meta)["entries"]:
                        raise NotAGrantchainStore(f"{self.path}: data without a schema tag")
                    txn.put(b"schema", SCHEMA_TAG, db=self._meta)
                elif tag != SCHEMA_TAG:
                    raise NotAGrantchainStore(
                        f"{self.path}: schema {tag!r}, this version reads {SCHEMA_TAG!r}"
                    )
        except lmdb.Error as exc:
            raise NotAGrantchainStore(f"{self.path}: damaged LMDB environment: {exc}") from None

    def is_empty(self) -> bool:
        return bool(self._on_writer(self._is_empty))

    def _is_empty(self) -> bool:
        with self._env.begin() as txn:
            return (
                txn.stat(self._log)["entries"] == 0
                and txn.get(HARD_KEY, db=self._meta) is None
                and txn.get(SNAPSHOT_KEY, db=self._meta) is None
            )

    def load(self) -> tuple[bytes | None, bytes | None, list[bytes]]:
        """(hard state, snapshot, entries in index order) as last saved."""
        loaded: tuple[bytes | None, bytes | None, list[bytes]] = self._on_writer(self._load)
        return loaded

    def _load(self) -> tuple[bytes | None, bytes | None, list[bytes]]:
        with self._env.begin() as txn:
            hard = txn.get(HARD_KEY, db=self._meta)
            snap = txn.get(SNAPSHOT_KEY, db=self._meta)
            entries = [v for _, v in txn.cursor(db=self._log)]
        return hard, snap, entries

    def save(
        self,
        *,
        hard_state: bytes | None,
        entries: Sequence[tuple[int, bytes]],
        snapshot: tuple[int, bytes] | None,
    ) -> None:
        """In one transaction: install ``snapshot`` (index, bytes) dropping the log up to
        its index, then truncate the log from the first entry's index and append
        ``entries``, then save ``hard_state``."""
        self._on_writer(self._save, hard_state, entries, snapshot)

    def _save(
        self,
        hard_state: bytes | None,
        entries: Sequence[tuple[int, bytes]],
        snapshot: tuple[int, bytes] | None,
    ) -> None:
        self._ensure_room(
            sum(len(e) + 64 for _, e in entries) + len(snapshot[1] if snapshot else b"")
        )
        with self._env.begin(write=True) as txn:
            if snapshot is not None:
                cur = txn.cursor(db=self._log)
                if cur.first():
                    while cur.key() and int.from_bytes(cur.key(), "big") <= snapshot[0]:
                        if not cur.delete():
                            break
                txn.put(SNAPSHOT_KEY, snapshot[1], db=self._meta)
            if entries:
                cur = txn.cursor(db=self._log)
                if cur.set_range(_u64(entries[0][0])):
                    while cur.delete():
                        pass
                for index, data in entries:
                    if not txn.put(_u64(index), data, db=self._log, append=True):
                        raise StoreError(f"consensus log: entry {index} is not after the last one")
            if hard_state is not None:
                txn.put(HARD_KEY, hard_state, db=self._meta)

    def compact(self, index: int, snapshot: bytes) -> None:
        """Drop log entries up to ``index`` and keep ``snapshot`` in their place."""
        self.save(hard_state=None, entries=(), snapshot=(index, snapshot))

    def _ensure_room(self, bytes_needed: int) -> None:
        info = self._env.info()
        used = (info["last_pgno"] + 1) * self._env.stat()["psize"]
        if used + 2 * bytes_needed + (1 << 20) > info["map_size"] // 2:
            self._env.set_mapsize(max(info["map_size"] * 2, (used + 2 * bytes_needed) * 4))

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._env.close()
