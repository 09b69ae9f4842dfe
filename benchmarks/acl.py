"""``grantchain bench acl``: apply rate of the grant/audit state machine, with same-run
baselines.

Workloads (``acl.samples.traffic``, deterministic from ``--seed``): blocks of
``audit.data_access`` events (~5% without a grant) and blocks of mixed traffic (access,
inference, training runs, evaluations, grant issues, versions, model registrations).
Signatures are not made: ``apply_block`` does not verify them (the node has, in batches,
before) — tx bytes and ids are prepared before the clock starts, as the node has them
from decoding.

Measured, each on the same blocks:
- ``memory``: ``apply_block`` on a ``MemoryState`` + applying its writes;
- ``state_lmdb`` (the issue's target: state in LMDB, one write transaction per block):
  ``apply_block`` reading an LMDB state database through one read transaction per block,
  then its writes put in one synced write transaction per block — the ACL's whole share
  of a commit, without the block's own bytes, Merkle nodes and tx index;
- ``lmdb``: ``apply_block`` reading the committed state of a real ``LmdbBlockStore`` (synced
  like the node's), then assembling the block with the results and state root and
  ``store.append(block, writes)``: one write transaction per block holding the block and
  its state writes. Reported as the ACL's share (apply), the append, and all-in;
- ``lmdb_snapshot``: the same, but ``apply_block`` reads through one LMDB read transaction
  per block instead of ``store.state()`` (which opens one per ``get``). The store has no
  public API for that yet; this variant borrows its private read-transaction helper to
  show what such an API would buy;
- baseline ``append_only``: the same blocks appended with no state writes and no apply,
  so ``lmdb_all_in / append_only`` is what the ACL adds to the durable commit.

Ratios: lmdb vs memory, mixed vs access, all-in vs the append-only floor.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import lmdb

from acl import samples
from acl.machine import apply_block, genesis_state
from acl.results import Result
from acl.state import MemoryState
from chain.assemble import assemble_block
from chain.block import BlockHeader
from chain.genesis import Genesis
from chain.merkle import Frontier
from chain.tx import Tx
from storage.lmdb_store import LmdbBlockStore

DEFAULT_BLOCKS = 100
TXS_PER_BLOCK = 1_000


@dataclass(frozen=True, slots=True)
class Prepared:
    """A workload with tx bytes and ids computed ahead of the clock."""

    genesis: Genesis
    blocks: tuple[tuple[int, tuple[Tx, ...], tuple[bytes, ...], tuple[bytes, ...]], ...]
    """(timestamp_ms, txs, tx bytes, tx ids), set-up blocks first."""
    setup_count: int

    @property
    def measured_txs(self) -> int:
        return sum(len(b[1]) for b in self.blocks[self.setup_count :])


def prepare(seed: int, blocks: int, txs_per_block: int, mix: str) -> Prepared:
    traffic = samples.traffic(seed, blocks=blocks, txs_per_block=txs_per_block, mix=mix)
    out = []
    for block in traffic.setup + traffic.blocks:
        raws = tuple(tx.to_bytes() for tx in block.txs)
        ids = tuple(tx.tx_id for tx in block.txs)
        out.append((block.timestamp_ms, block.txs, raws, ids))
    return Prepared(traffic.genesis, tuple(out), len(traffic.setup))


@dataclass(frozen=True, slots=True)
class Timing:
    apply_s: float
    append_s: float
    results: dict[str, int]
    root: bytes

    @property
    def total_s(self) -> float:
        return self.apply_s + self.append_s


def run_memory(work: Prepared) -> Timing:
    state = MemoryState()
    state.apply(genesis_state(work.genesis).writes)
    counts: dict[str, int] = {}
    apply_s = 0.0
    root = b""
    for height, (ms, txs, _raws, ids) in enumerate(work.blocks, 1):
        measured = height > work.setup_count
        t0 = time.perf_counter()
        outcome = apply_block(
            state, genesis=work.genesis, height=height, timestamp_ms=ms, txs=txs, tx_ids=ids
        )
        state.apply(outcome.writes)
        if measured:
            apply_s += time.perf_counter() - t0
            for r in outcome.results:
                name = Result(r).label
                counts[name] = counts.get(name, 0) + 1
        root = outcome.state_root
    return Timing(apply_s, 0.0, counts, root)


class BlockSnapshot:
    """A ``StateReader`` over one LMDB read transaction, held for one block."""

    def __init__(self, txn: Any, db: Any) -> None:
        self._txn = txn
        self._db = db

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._txn.get(key, db=self._db)
        return value

    def range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        cursor = self._txn.cursor(db=self._db)
        if not cursor.set_range(start):
            return
        for key, value in cursor:
            if end is not None and key >= end:
                return
            yield key, value


def run_state_lmdb(work: Prepared, path: Path) -> Timing:
    """State alone in LMDB (synced, no writemap, like the node's store)."""
    counts: dict[str, int] = {}
    apply_s = append_s = 0.0
    root = b""
    env = lmdb.open(
        str(path), map_size=8 * 1024**3, max_dbs=2, sync=True, metasync=True, writemap=False
    )
    try:
        db = env.open_db(b"state")
        with env.begin(write=True, db=db) as txn:
            for key, value in genesis_state(work.genesis).writes:
                assert value is not None
                txn.put(key, value)
        for height, (ms, txs, _raws, ids) in enumerate(work.blocks, 1):
            t0 = time.perf_counter()
            with env.begin(db=db) as read:
                outcome = apply_block(
                    BlockSnapshot(read, db),
                    genesis=work.genesis,
                    height=height,
                    timestamp_ms=ms,
                    txs=txs,
                    tx_ids=ids,
                )
            t1 = time.perf_counter()
            with env.begin(write=True, db=db) as txn:
                for key, value in outcome.writes:
                    if value is None:
                        txn.delete(key)
                    else:
                        txn.put(key, value)
            t2 = time.perf_counter()
            root = outcome.state_root
            if height > work.setup_count:
                apply_s += t1 - t0
                append_s += t2 - t1
                for r in outcome.results:
                    name = Result(r).label
                    counts[name] = counts.get(name, 0) + 1
    finally:
        env.close()
    return Timing(apply_s, append_s, counts, root)


def run_lmdb(
    work: Prepared, path: Path, *, with_acl: bool = True, snapshot: bool = False
) -> Timing:
    """The node's commit path on LMDB; ``with_acl=False`` appends the blocks only;
    ``snapshot=True`` reads each block's state through one read transaction."""
    counts: dict[str, int] = {}
    apply_s = append_s = 0.0
    root = b""
    genesis = genesis_state(work.genesis)
    head: BlockHeader | None = None
    frontier = Frontier()
    with LmdbBlockStore.open(path) as store:
        store.initialize(work.genesis.hash, genesis.writes if with_acl else ())
        reader = store.state()
        for height, (ms, txs, raws, ids) in enumerate(work.blocks, 1):
            measured = height > work.setup_count
            t0 = time.perf_counter()
            if with_acl and snapshot:
                with store._read() as txn:  # private: see the module docstring
                    outcome = apply_block(
                        BlockSnapshot(txn, store._dbs["state"]),
                        genesis=work.genesis,
                        height=height,
                        timestamp_ms=ms,
                        txs=txs,
                        tx_ids=ids,
                    )
                results, writes, root = outcome.results, outcome.writes, outcome.state_root
            elif with_acl:
                outcome = apply_block(
                    reader,
                    genesis=work.genesis,
                    height=height,
                    timestamp_ms=ms,
                    txs=txs,
                    tx_ids=ids,
                )
                results, writes, root = outcome.results, outcome.writes, outcome.state_root
            else:
                results, writes, root = (0,) * len(txs), (), bytes(32)
            t1 = time.perf_counter()
            block, frontier = assemble_block(
                chain_id=work.genesis.chain_id,
                prev=head,
                anchor=work.genesis.hash,
                frontier=frontier,
                txs=raws,
                results=results,
                state_root=root,
                timestamp_ms=ms,
                proposer="bench",
                round=1,
            )
            store.append(block, writes)
            head = block.header
            t2 = time.perf_counter()
            if measured:
                apply_s += t1 - t0
                append_s += t2 - t1
                for r in results:
                    name = Result(r).label
                    counts[name] = counts.get(name, 0) + 1
    return Timing(apply_s, append_s, counts, root)


def _rate(n: int, seconds: float) -> int:
    return round(n / seconds) if seconds > 0 else 0


@click.command("acl")
@click.option(
    "--blocks", default=DEFAULT_BLOCKS, show_default=True, help="Measured blocks per workload."
)
@click.option("--txs-per-block", default=TXS_PER_BLOCK, show_default=True)
@click.option("--seed", default=1, show_default=True, help="Seed of the generated traffic.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Put the LMDB stores here (a temp dir otherwise).",
)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
def command(
    blocks: int, txs_per_block: int, seed: int, data_dir: Path | None, as_json: bool
) -> None:
    """Apply rate of access events and of mixed traffic: memory, LMDB, append-only floor."""
    if blocks < 1 or not 1 <= txs_per_block <= 10_000:
        raise click.BadParameter("need at least 1 block of 1..10,000 txs")
    result: dict[str, object] = {"blocks": blocks, "txs_per_block": txs_per_block, "seed": seed}
    with tempfile.TemporaryDirectory(prefix="grantchain-bench-acl-") as tmp:
        base = data_dir or Path(tmp)
        for mix in ("access", "mixed"):
            click.echo(f"preparing {blocks * txs_per_block:,} {mix} txs ...", err=True)
            work = prepare(seed, blocks, txs_per_block, mix)
            n = work.measured_txs
            memory = run_memory(work)
            node = run_lmdb(work, base / f"{mix}-acl")
            snap = run_lmdb(work, base / f"{mix}-acl-snapshot", snapshot=True)
            state_only = run_state_lmdb(work, base / f"{mix}-state")
            for other in (node, snap, state_only):
                if other.root != memory.root or other.results != memory.results:
                    raise click.ClickException(
                        f"{mix}: LMDB and memory runs disagree (state root or results)"
                    )
            result[f"{mix}_memory_txs_per_s"] = _rate(n, memory.apply_s)
            result[f"{mix}_state_lmdb_apply_txs_per_s"] = _rate(n, state_only.apply_s)
            result[f"{mix}_state_lmdb_txs_per_s"] = _rate(n, state_only.total_s)
            result[f"{mix}_lmdb_apply_txs_per_s"] = _rate(n, node.apply_s)
            result[f"{mix}_lmdb_append_txs_per_s"] = _rate(n, node.append_s)
            result[f"{mix}_lmdb_all_in_txs_per_s"] = _rate(n, node.total_s)
            result[f"{mix}_lmdb_snapshot_apply_txs_per_s"] = _rate(n, snap.apply_s)
            result[f"{mix}_lmdb_snapshot_all_in_txs_per_s"] = _rate(n, snap.total_s)
            result[f"{mix}_results"] = memory.results
            if mix == "access":
                floor = run_lmdb(work, base / "access-append-only", with_acl=False)
                result["append_only_txs_per_s"] = _rate(n, floor.total_s)
                result["access_all_in_vs_append_only"] = round(floor.total_s / node.total_s, 3)
            result[f"{mix}_lmdb_apply_vs_memory"] = round(memory.apply_s / node.apply_s, 3)
    mixed_rate, access_rate = (result[f"{m}_lmdb_all_in_txs_per_s"] for m in ("mixed", "access"))
    assert isinstance(mixed_rate, int) and isinstance(access_rate, int)
    result["mixed_vs_access_lmdb_all_in"] = round(mixed_rate / max(1, access_rate), 3)
    for mix in ("access", "mixed"):
        click.echo(
            f"{mix:6}  state in LMDB, one write txn per block: "
            f"{result[f'{mix}_state_lmdb_txs_per_s']:>9,} txs/s "
            f"(apply {result[f'{mix}_state_lmdb_apply_txs_per_s']:,} txs/s)"
        )
        click.echo(
            f"{mix:6}  memory {result[f'{mix}_memory_txs_per_s']:>9,} txs/s   "
            f"LMDB apply {result[f'{mix}_lmdb_apply_txs_per_s']:>9,} txs/s   "
            f"append {result[f'{mix}_lmdb_append_txs_per_s']:>9,} txs/s   "
            f"all-in {result[f'{mix}_lmdb_all_in_txs_per_s']:>9,} txs/s\n"
            f"{'':6}  LMDB one read txn per block: apply "
            f"{result[f'{mix}_lmdb_snapshot_apply_txs_per_s']:>9,} txs/s   all-in "
            f"{result[f'{mix}_lmdb_snapshot_all_in_txs_per_s']:>9,} txs/s"
        )
    click.echo(
        f"append-only floor {result['append_only_txs_per_s']:,} txs/s; access all-in / floor "
        f"{result['access_all_in_vs_append_only']}; mixed / access {result['mixed_vs_access_lmdb_all_in']}"
    )
    if as_json:
        click.echo(json.dumps(result))
