"""State sync: a new node starts from a snapshot of another node's store (the chain as
of its head, every block pruned: ``lmdb_store.export_snapshot``) instead of replaying
from genesis. Importing checks everything that can be checked before the node uses it.

What an import proves: the headers link from the genesis to the head, and every
block's tx, results and log roots match the ids and results kept (``verify``); the tx
index agrees with them. What it cannot: that the ids are the hashes of real signed txs
(their bytes are not in a snapshot), and the ACL state's content (the state root is a
chained commitment, not recomputable from the state: ``acl/state_root.py``), beyond its
root and height matching the head's: take a snapshot from a node you trust, and the
header certificates say a quorum signed that head.
"""

from __future__ import annotations

from pathlib import Path

from storage import runfiles
from storage.blockstore import StoreError
from storage.lmdb_store import INDEX_DIR, LmdbBlockStore, export_snapshot
from storage.verify import VerifyReport, verify_store

__all__ = ["SnapshotError", "export_snapshot", "import_snapshot"]


class SnapshotError(StoreError):
    """The snapshot does not hold a chain from this genesis that verifies."""


def import_snapshot(snapshot: Path, data_dir: Path, *, genesis_hash: bytes) -> VerifyReport:
    """Verify the snapshot at ``snapshot`` against ``genesis_hash``, then copy it (LMDB's
    compacting copy, and the tx index's run files) into ``data_dir``, which must hold no
    store yet."""
    if (data_dir / "data.mdb").exists():
        raise SnapshotError(f"{data_dir}: already holds a store")
    with LmdbBlockStore.open(snapshot, create=False, readonly=True) as store:
        stored = store.genesis_hash()
        if stored is not None and stored != genesis_hash:
            raise SnapshotError(f"{snapshot}: a snapshot of genesis {stored.hex()}")
        report = verify_store(store, anchor=genesis_hash)
        if not report.ok:
            raise SnapshotError(
                f"{snapshot}: does not verify at block {report.bad_height}: {report.problem}"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        store._env.copy(str(data_dir), compact=True)
        for rf in store._files.values():  # the tx index's runs (``storage/runfiles.py``)
            runfiles.copy_to(rf, data_dir / INDEX_DIR)
    return report
