"""Pruning (``LmdbBlockStore.prune``): the txs of old blocks give way to their ids, and
everything else answers as before: roots and proofs at every size, locations, duplicate
checks, receipts issued before, and ``verify`` over what is left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from chain import merkle
from chain.hashing import leaf_hash
from chain.merkle import MemoryTree
from chain.receipt import verify_receipt
from node.cli import main as cli
from storage import lmdb_store
from storage.blockstore import AppendError, StoreError, TxPrunedError
from storage.lmdb_store import LmdbBlockStore
from storage.receipts import build_receipt
from storage.verify import verify_store
from tests.factories import ChainBuilder, block_on
from tests.storage.test_receipts import NODE_KEYS, genesis

SIZES = [3, 0, 7, 1, 33, 5, 64, 2, 9, 31, 4, 17]


def _chain(path: Path) -> tuple[list, MemoryTree]:
    b = ChainBuilder()
    tree = MemoryTree()
    blocks = []
    with LmdbBlockStore.open(path) as s:
        for i, n in enumerate(SIZES):
            blocks.append(b.block(n, results=[(i + j) % 3 for j in range(n)]))
            s.append(blocks[-1])
            tree.extend(blocks[-1].tx_ids())
    return blocks, tree


def _certify(s: LmdbBlockStore, height: int) -> None:
    from chain import signing
    from chain.receipt import header_signing_bytes

    header = s.header(height)
    assert header is not None
    msg = header_signing_bytes(header.hash)
    s.put_certificate(height, [(f"n{i + 1}", signing.sign(NODE_KEYS[i], msg)) for i in range(2)])


def test_a_pruned_store_answers_as_before_but_for_the_txs_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lmdb_store, "INDEX_FLUSH_TXS", 20)  # some ids in runs, some not
    blocks, tree = _chain(tmp_path)
    size = tree.size
    with LmdbBlockStore.open(tmp_path) as s:
        for h in range(1, len(blocks) + 1):
            _certify(s, h)
        receipts = [build_receipt(s, leaf_hash(blocks[h - 1].txs[0])) for h in (1, 5, 7)]
        assert s.prune(8, blocks_per_txn=3) == 7  # blocks 1-7 lose their txs' bytes
    with LmdbBlockStore.open(tmp_path) as s:  # reopened: ids past the runs come from ids
        assert s.pruned_height == 7
        for size1 in range(1, size + 1, 5):
            assert s.log_root(size1) == tree.root(size1)
            merkle.verify_consistency(
                size1, size, s.consistency_proof(size1, size), tree.root(size1), tree.root()
            )
        for index in range(0, size, 3):
            assert s.inclusion_proof(index, size) == tree.inclusion_proof(index, size)
        for height, blk in enumerate(blocks, 1):
            for pos, raw in enumerate(blk.txs):
                loc = s.tx_location(leaf_hash(raw))
                assert loc is not None and (loc.height, loc.position) == (height, pos)
                if height <= 7:
                    with pytest.raises(TxPrunedError, match="pruned"):
                        s.tx(leaf_hash(raw))
                else:
                    assert s.tx(leaf_hash(raw)) == (raw, loc)
        with pytest.raises(TxPrunedError):
            s.block(3)
        assert s.header(3) == blocks[2].header and s.certificate(3)
        with pytest.raises(AppendError, match="already stored"):  # a pruned tx is still a dup
            s.append(block_on(s, blocks[4].txs[:1]))
        report = verify_store(s)
        assert report.ok, report.problem
        assert report.height == len(blocks) and report.txs_checked == sum(SIZES)
        for r, height in zip(receipts, (1, 5, 7), strict=True):  # issued before pruning
            assert r is not None and verify_receipt(r, genesis()).height == height
            assert s.header(height) == r.header  # and the store still holds its header
            assert s.log_root(r.header.log_size) == r.header.log_root
        s.append(block_on(s, (b"after pruning",)))
        assert s.prune(s.height + 1) == s.height  # everything
        assert verify_store(s).ok
        assert s.log_root() == s.frontier().root()


def test_a_damaged_kept_id_is_found_by_verify(tmp_path: Path) -> None:
    _chain(tmp_path)
    with LmdbBlockStore.open(tmp_path) as s:
        s.prune(6)
        first_of_5 = sum(SIZES[:4])
        with s._env.begin(write=True) as txn:
            key = first_of_5.to_bytes(8, "big")
            txn.put(key, bytes(32), db=s._dbs["leaves"])
    with LmdbBlockStore.open(tmp_path, readonly=True) as s:
        report = verify_store(s)
        assert not report.ok and report.bad_height == 5, report
        assert "tx_root" in (report.problem or "")


def test_prune_refuses_past_the_head_and_a_crash_leaves_whole_blocks(tmp_path: Path) -> None:
    _chain(tmp_path)
    with LmdbBlockStore.open(tmp_path) as s:
        with pytest.raises(StoreError, match="has 12 blocks"):
            s.prune(14)
        # One transaction of the pruning, as a crash after it would leave the store.
        s._writer.submit(s._prune_on_writer, 9, 4).result()
    with LmdbBlockStore.open(tmp_path, readonly=True) as s:
        assert s.pruned_height == 4
        assert verify_store(s).ok


def test_grantchain_prune_cli(tmp_path: Path) -> None:
    _chain(tmp_path)
    runner = CliRunner()
    got = runner.invoke(
        cli, ["prune", "--data-dir", str(tmp_path), "--before-height", "10", "--json"]
    )
    assert got.exit_code == 0, got.output
    answer = json.loads(got.output.strip().splitlines()[-1])
    assert answer["pruned_height"] == 9 and answer["txs_pruned"] == sum(SIZES[:9])
    again = runner.invoke(cli, ["verify", "--data-dir", str(tmp_path), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output.strip().splitlines()[-1])["pruned_height"] == 9
    bad = runner.invoke(cli, ["prune", "--data-dir", str(tmp_path), "--before-height", "99"])
    assert bad.exit_code == 2 and "has 12 blocks" in bad.output
