"""State sync (``storage/snapshot.py``): a snapshot of a store imports, verified, as a new
node's store at the same head, which answers proofs and lookups and takes new blocks;
a tampered snapshot or another genesis is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from chain import merkle
from chain.hashing import leaf_hash
from chain.merkle import MemoryTree
from node.cli import main as cli
from storage import lmdb_store, runfiles
from storage.blockstore import AppendError, StoreError
from storage.lmdb_store import LmdbBlockStore, export_snapshot
from storage.snapshot import SnapshotError, import_snapshot
from storage.verify import verify_store
from tests import factories
from tests.factories import ANCHOR, ChainBuilder, block_on, txs

SIZES = [3, 0, 40, 1, 33, 5, 64, 2, 9, 31, 4, 17]


def _node_store(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ChainBuilder, MemoryTree]:
    monkeypatch.setattr(lmdb_store, "INDEX_FLUSH_TXS", 30)  # runs, and ids not yet in one
    b = ChainBuilder()
    tree = MemoryTree()
    with LmdbBlockStore.open(path) as s:
        for i, n in enumerate(SIZES):
            block = b.block(n, results=[(i * j) % 4 for j in range(n)])
            s.append(block, [(b"state/%03d" % i, b"v%d" % i)])
            s.put_certificate(block.header.height, [("n1", bytes(64))])
            tree.extend(block.tx_ids())
        s.prune(4)  # a snapshot of a store pruned already keeps those ids too
    return b, tree


def test_an_imported_snapshot_is_the_same_chain_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b, tree = _node_store(tmp_path / "node", monkeypatch)
    with LmdbBlockStore.open(tmp_path / "node", readonly=True) as s:
        assert export_snapshot(s, tmp_path / "snap") == len(SIZES)
        head, state = s.head(), list(s.state().range(b"", None))
    report = import_snapshot(tmp_path / "snap", tmp_path / "new", genesis_hash=ANCHOR)
    assert report.ok and report.height == len(SIZES) and report.pruned_height == len(SIZES)
    with LmdbBlockStore.open(tmp_path / "new") as s:
        assert s.head() == head and s.pruned_height == len(SIZES)
        assert list(s.state().range(b"", None)) == state
        assert s.certificate(5) == [("n1", bytes(64))]
        size = tree.size
        for index in range(0, size, 7):
            assert s.inclusion_proof(index, size) == tree.inclusion_proof(index, size)
        for size1 in range(1, size, 11):
            assert s.log_root(size1) == tree.root(size1)
            merkle.verify_consistency(
                size1, size, s.consistency_proof(size1, size), tree.root(size1), tree.root()
            )
        assert s.tx_location(tree.get_node(0, 100)) is not None
        with pytest.raises(AppendError, match="already stored"):
            s.append(block_on(s, tuple(txs(1, start=5))))  # in block 3
        new = b.block(6)  # the chain goes on from the imported head
        s.append(new)
        assert s.tx(leaf_hash(new.txs[0])) is not None
        assert verify_store(s).ok


def test_a_tampered_snapshot_or_another_genesis_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _node_store(tmp_path / "node", monkeypatch)
    with LmdbBlockStore.open(tmp_path / "node", readonly=True) as s:
        export_snapshot(s, tmp_path / "snap")
    with pytest.raises(SnapshotError, match="block 1"):
        import_snapshot(tmp_path / "snap", tmp_path / "a", genesis_hash=bytes(32))
    with LmdbBlockStore.open(tmp_path / "snap") as s, s._env.begin(write=True) as txn:
        first_of_block_7 = sum(SIZES[:6])
        txn.put(first_of_block_7.to_bytes(8, "big"), bytes(32), db=s._dbs["leaves"])
    with pytest.raises(SnapshotError, match="block 7: tx_root"):
        import_snapshot(tmp_path / "snap", tmp_path / "b", genesis_hash=ANCHOR)
    assert not (tmp_path / "b" / "data.mdb").exists()


def test_grantchain_snapshot_export_and_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.storage.test_receipts import genesis as make_genesis

    genesis = make_genesis()
    monkeypatch.setattr(factories, "ANCHOR", genesis.hash)  # block 1 links to this genesis
    _node_store(tmp_path / "node", monkeypatch)
    runner = CliRunner()
    out = runner.invoke(
        cli,
        [
            "snapshot",
            "export",
            "--data-dir",
            str(tmp_path / "node"),
            "--out",
            str(tmp_path / "s"),
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output.strip().splitlines()[-1])["height"] == len(SIZES)
    (tmp_path / "genesis.json").write_text(genesis.to_json())
    (tmp_path / "other.json").write_text(make_genesis("pbft").to_json())
    args = ["snapshot", "import", "--snapshot", str(tmp_path / "s"), "--json", "--data-dir"]
    got = runner.invoke(
        cli, [*args, str(tmp_path / "n"), "--genesis", str(tmp_path / "genesis.json")]
    )
    assert got.exit_code == 0, got.output
    assert json.loads(got.output.strip().splitlines()[-1])["height"] == len(SIZES)
    with LmdbBlockStore.open(tmp_path / "n", readonly=True) as s:
        assert s.height == len(SIZES) and verify_store(s, anchor=genesis.hash).ok
    bad = runner.invoke(
        cli, [*args, str(tmp_path / "m"), "--genesis", str(tmp_path / "other.json")]
    )
    assert bad.exit_code == 1 and "prev_hash is not the genesis hash" in bad.output
    again = runner.invoke(
        cli, [*args, str(tmp_path / "n"), "--genesis", str(tmp_path / "genesis.json")]
    )
    assert again.exit_code == 1 and "already holds a store" in again.output


def test_a_run_recorded_after_the_export_read_its_files_is_copied_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``export_snapshot`` reads the runs' open files before its read transaction; a run
    its cut records that was not among them (recorded meanwhile) is opened by its name,
    and one unlinked meanwhile too (merged away) fails the export with a clear error."""
    _node_store(tmp_path / "node", monkeypatch)
    with LmdbBlockStore.open(tmp_path / "node", readonly=True) as s:
        runs = sorted(s._files)
        assert runs
        lmdb_store._copy_runs(s, {}, runs, tmp_path / "copy")  # none known: all by name
        for run in runs:
            name = runfiles.file_name(run)
            assert (tmp_path / "copy" / name).read_bytes() == s._files[run].path.read_bytes()
        s._files[runs[0]].path.unlink()  # a merge unlinked it after the cut was read
        with pytest.raises(StoreError, match="take the snapshot again"):
            lmdb_store._copy_runs(s, {}, runs, tmp_path / "again")
