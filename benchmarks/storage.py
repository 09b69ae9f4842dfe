"""``grantchain bench storage``: durable append, full verification and proof latency on a
real LMDB store, each next to a baseline measured in the same run:

- append: the node's path (roots, tx index, log nodes, one synced write txn per block of
  1,000 txs) vs a raw LMDB baseline writing the same tx bytes in the same synced txns,
  the two taking turns every ``SEGMENT_BLOCKS`` blocks (a disk shared with other work
  changed speed 10x between two runs back to back);
- verify: ``verify_store`` vs a floor that only reads every tx (a ``bytes`` each, through
  ``iter_blocks``) and leaf-hashes it with hashlib, each run ``VERIFY_TURNS`` times in
  turn, the faster of each kept (verify reads the txs end to end, without an object per
  tx, and hashes them in a kernel: it can beat this floor, which is kept as it was so that
  figures stay comparable over time);
- proofs: inclusion proofs for random txs at the full tree size (tx lookup included);
- merkle: the public ``chain.merkle.root`` over 2^20 leaf hashes in a ``list[bytes]``, one
  thread, vs the ``hashlib`` loop (the reference backend) over the same list.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import click
import lmdb
import msgpack
import numpy as np

from chain import limits, merkle, signing
from chain.assemble import assemble_block
from chain.block import BlockHeader
from chain.hashing import leaf_hash
from chain.kernels import backend
from chain.merkle import Frontier, verify_inclusion
from chain.tx import sign_tx
from storage.lmdb_store import LmdbBlockStore
from storage.verify import verify_store

BLOCK_TXS = 1_000
CHAIN_ID = "bench-storage"


SIGNERS = 16
"""Keys the bench's txs are signed with (a tx's sender is key ``nonce % SIGNERS``)."""


def _payload(i: int) -> dict[str, str]:
    return {
        "dataset_id": f"hospital/dataset-{i % 97:03d}",
        "purpose": "training",
        "run_id": f"run-{i // 5000:06d}",
        "input_digest": f"{i:024x}",
    }


def _signers() -> list[signing.PrivateKey]:
    return [signing.private_key_from_bytes(bytes([i + 1]) * 32) for i in range(SIGNERS)]


def _sign_range_slow(args: tuple[int, int]) -> list[bytes]:
    """Txs ``[start, start + count)`` through ``chain.tx.sign_tx`` (the reference that
    ``_sign_range`` must equal byte for byte)."""
    start, count = args
    keys = _signers()
    return [
        sign_tx(
            keys[i % SIGNERS],
            chain_id=CHAIN_ID,
            kind="audit.data_access",
            nonce=i,
            timestamp_ms=1_767_225_600_000 + i,
            payload=_payload(i),
        ).to_bytes()
        for i in range(start, start + count)
    ]


def _sign_range(args: tuple[int, int]) -> list[bytes]:
    """Txs ``[start, start + count)``, each signed for real: the signed fields packed once
    as the canonical encoding (str keys in sorted order, the packer's minimal ints), the
    public keys derived once, and ``cryptography``'s Ed25519 signing the domain-tagged
    bytes; the wire form is those bytes with the 8-array header and the signature as
    bin8 appended (``chain.tx.signing_bytes_of`` undoes exactly this). 2x faster than
    ``sign_tx`` (which normalises, checks and encodes each tx twice); signing is then
    ~all of it (~60 us a tx on this machine)."""
    start, count = args
    keys = _signers()
    publics = [signing.public_key_bytes(k) for k in keys]
    signs = [k.sign for k in keys]
    pack = msgpack.Packer(use_bin_type=True).pack
    domain = signing.TX_DOMAIN
    version = limits.TX_VERSION
    out = []
    for i in range(start, start + count):
        k = i % SIGNERS
        unsigned = pack(
            [
                version,
                CHAIN_ID,
                "audit.data_access",
                publics[k],
                i,
                1_767_225_600_000 + i,
                {  # keys in sorted order: the canonical map
                    "dataset_id": f"hospital/dataset-{i % 97:03d}",
                    "input_digest": f"{i:024x}",
                    "purpose": "training",
                    "run_id": f"run-{i // 5000:06d}",
                },
            ]
        )
        out.append(b"\x98" + unsigned[1:] + b"\xc4\x40" + signs[k](domain + unsigned))
    return out


def signed_txs(n: int) -> list[bytes]:
    chunk = 20_000
    jobs = [(s, min(chunk, n - s)) for s in range(0, n, chunk)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return [tx for part in pool.map(_sign_range, jobs) for tx in part]


_CACHE_MAGIC = b"grantchain-bench-storage-txs/1\n"


def cached_signed_txs(n: int, cache: Path | None) -> tuple[list[bytes], str]:
    """``signed_txs(n)``, read from ``cache`` if it holds at least ``n`` of them (the same
    txs: the bench's txs are a function of their index), else signed and, with a
    ``cache``, written there for the next run. Returns (txs, where they came from)."""
    if cache is not None and cache.exists():
        with cache.open("rb") as f:
            if f.read(len(_CACHE_MAGIC)) == _CACHE_MAGIC:
                have = int.from_bytes(f.read(8), "big")
                if have >= n:
                    ends = np.fromfile(f, dtype=">u8", count=have)[:n].tolist()
                    blob = f.read(ends[-1] if n else 0)
                    starts = [0, *ends[:-1]]
                    txs = [blob[a:b] for a, b in zip(starts, ends, strict=True)]
                    return txs, f"read from {cache}"
    txs = signed_txs(n)
    if cache is None:
        return txs, "signed"
    tmp = cache.with_name(cache.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(_CACHE_MAGIC + n.to_bytes(8, "big"))
        np.cumsum(np.fromiter(map(len, txs), dtype=np.uint64, count=n)).astype(">u8").tofile(f)
        for start in range(0, n, 100_000):
            f.write(b"".join(txs[start : start + 100_000]))
    tmp.replace(cache)
    return txs, f"signed, and written to {cache}"


IN_FLIGHT_BLOCKS = 2
"""Blocks handed to the store and not yet durable, at most (a node's pipeline depth)."""
DECADE_TXS = 1_000_000
LOOKUP_SAMPLES = 1_000


def _bytes_written() -> int | None:
    """Bytes this process has caused to be written to storage (Linux), else None."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def append_all(
    path: Path,
    txs: list[bytes],
    phases: dict[str, float] | None = None,
    decades: list[dict[str, Any]] | None = None,
    decade_txs: int = DECADE_TXS,
    raw: RawLmdb | None = None,
) -> float:
    """Seconds to assemble and durably append every block; with ``raw``, the baseline
    appends the same txs in turns of ``SEGMENT_BLOCKS`` blocks, timed apart (so both
    meet the same moments of a disk shared with other work). ``phases`` (if given) gets the
    seconds spent assembling blocks (this thread), waiting for the writer, and the
    writer thread's own phases (``LmdbBlockStore.append_phases_s``). ``decades`` (if
    given) gets one row per ``decade_txs`` appended: that decade's append rate, bytes
    written per tx, the baseline's rate and bytes in that decade's own turns and the
    ratio of the two (a disk that slows as gigabytes pile up slows both: the ratio is
    the store's own curve), the writer's phase seconds in that decade, and the p99 of
    ``LOOKUP_SAMPLES`` lookups of random txs stored so far (timed apart from the
    appends), so the curve over the chain's size is visible."""
    started = time.perf_counter()
    assemble_s = wait_s = lookups_s = 0.0
    rng = random.Random(3)
    decade_start, decade_bytes = started, _bytes_written()
    decade_apart_s, decade_apart_bytes = 0.0, 0  # the baseline's turns within the decade
    decade_phases: dict[str, float] = {}  # the writer's phase seconds at the decade's start
    raw_from = 0
    head: BlockHeader | None = None
    frontier = Frontier()
    anchor = b"\x11" * 32
    with LmdbBlockStore.open(path) as store:
        # Build the next blocks while earlier ones commit; the writer finds the next block
        # queued when it finishes one, rather than idling until this thread wakes up.
        in_flight: deque[Future[None]] = deque()
        for height, start in enumerate(range(0, len(txs), BLOCK_TXS), 1):
            t0 = time.perf_counter()
            batch = txs[start : start + BLOCK_TXS]
            block, frontier = assemble_block(
                chain_id=CHAIN_ID,
                prev=head,
                anchor=anchor,
                frontier=frontier,
                txs=batch,
                results=[0] * len(batch),
                state_root=b"\x00" * 32,
                timestamp_ms=1_767_225_600_000 + height,
                proposer="bench",
                round=1,
            )
            t1 = time.perf_counter()
            assemble_s += t1 - t0
            while len(in_flight) >= IN_FLIGHT_BLOCKS:
                in_flight.popleft().result()
            wait_s += time.perf_counter() - t1
            in_flight.append(store.submit_append(block))
            head = block.header
            done = start + len(batch)
            if raw is not None and (
                height % SEGMENT_BLOCKS == 0 or done == len(txs) or done % decade_txs == 0
            ):  # a turn ends each decade too: a decade's baseline covers its own txs
                while in_flight:
                    in_flight.popleft().result()
                before, before_bytes = time.perf_counter(), _bytes_written()
                raw.append(txs[raw_from:done])
                raw_from = done
                after_bytes = _bytes_written()
                apart = time.perf_counter() - before
                lookups_s += apart
                decade_apart_s += apart
                if before_bytes is not None and after_bytes is not None:
                    decade_apart_bytes += after_bytes - before_bytes
            if decades is not None and (done % decade_txs == 0 or done == len(txs)):
                while in_flight:
                    in_flight.popleft().result()
                now, written = time.perf_counter(), _bytes_written()
                span = done - (decades[-1]["txs"] if decades else 0)
                append_s = now - decade_start - decade_apart_s
                row: dict[str, Any] = {
                    "txs": done,
                    "append_txs_per_s": round(span / append_s),
                    "bytes_written_per_tx": (
                        round((written - decade_bytes - decade_apart_bytes) / span)
                        if written is not None and decade_bytes is not None
                        else -1
                    ),
                }
                if raw is not None and decade_apart_s > 0:
                    # The baseline's turns in this decade (the same txs, the same moments
                    # of the disk): a disk that slows as gigabytes pile up slows both.
                    row["raw_lmdb_append_txs_per_s"] = round(span / decade_apart_s)
                    row["append_vs_raw_lmdb"] = round(decade_apart_s / append_s, 3)
                    row["raw_lmdb_bytes_written_per_tx"] = round(decade_apart_bytes / span)
                row["writer_phases_s"] = {
                    k: round(v - decade_phases.get(k, 0.0), 3)
                    for k, v in store.append_phases_s.items()
                }
                decade_phases = dict(store.append_phases_s)
                lat, cpu = [], []
                for _ in range(LOOKUP_SAMPLES):
                    tx_id = leaf_hash(txs[rng.randrange(done)])
                    t0, c0 = time.perf_counter(), time.thread_time()
                    found = store.tx(tx_id)
                    cpu.append((time.thread_time() - c0) * 1000)
                    lat.append((time.perf_counter() - t0) * 1000)
                    if found is None:
                        raise click.ClickException(f"tx {tx_id.hex()} not found at {done:,}")
                row["lookup_ms_p50"] = round(_pct(lat, 50), 4)
                row["lookup_ms_p99"] = round(_pct(lat, 99), 4)
                # The lookup's own CPU time: on a machine shared with other work, a
                # lookup's wall-clock tail is the scheduler's (a thread preempted for a
                # time slice, ms), not the store's; the two side by side tell them apart.
                row["lookup_cpu_ms_p99"] = round(_pct(cpu, 99), 4)
                row["load_avg_1m"] = os.getloadavg()[0]
                row["runs"] = store.index_runs()
                decades.append(row)
                decade_start, decade_bytes = time.perf_counter(), _bytes_written()
                decade_apart_s, decade_apart_bytes = 0.0, 0
                lookups_s += decade_start - now
        while in_flight:
            in_flight.popleft().result()
        if phases is not None:
            phases["assemble"] = assemble_s
            phases["wait_for_writer"] = wait_s
            phases.update({f"writer_{k}": v for k, v in store.append_phases_s.items()})
    return time.perf_counter() - started - lookups_s


VERIFY_TURNS = 2
"""Verify and the read+hash floor each run this many times, in turn."""
SEGMENT_BLOCKS = 25
"""Blocks per turn when the store and the raw LMDB baseline take turns."""


class RawLmdb:
    """The baseline: the same tx bytes in the same synced transactions, one per block of
    ``BLOCK_TXS``, keyed by log index, with nothing else (no roots, no index)."""

    def __init__(self, path: Path) -> None:
        self._env = lmdb.open(
            str(path), map_size=64 * 1024**3, sync=True, metasync=True, writemap=False
        )
        self._next = 0
        self.seconds = 0.0

    def append(self, txs: list[bytes]) -> None:
        """Append ``txs`` (the next ones of the log) a block at a time, timed."""
        started = time.perf_counter()
        for start in range(0, len(txs), BLOCK_TXS):
            with self._env.begin(write=True) as txn:
                items = [
                    ((self._next + i).to_bytes(8, "big"), txs[i])
                    for i in range(start, min(start + BLOCK_TXS, len(txs)))
                ]
                txn.cursor().putmulti(items, append=True)
        self._next += len(txs)
        self.seconds += time.perf_counter() - started

    def close(self) -> None:
        self._env.close()


def decade_curve(decades: list[dict[str, Any]]) -> dict[str, float]:
    """The last decade's append rate over the first's (``last_decade_vs_first``), and
    where both have the baseline, the baseline's own (``raw_lmdb_last_decade_vs_first``:
    how far the disk itself slowed between them; this machine's disk halves its speed
    after a few GB written) and the append/raw ratio's (``append_vs_raw_last_decade_vs_first``:
    the store's own curve, the disk's moments divided out). Empty for fewer than two."""
    if len(decades) < 2:
        return {}
    first, last = decades[0], decades[-1]
    out = {"last_decade_vs_first": round(last["append_txs_per_s"] / first["append_txs_per_s"], 3)}
    if "append_vs_raw_lmdb" in first and "append_vs_raw_lmdb" in last:
        raw_first, raw_last = first["raw_lmdb_append_txs_per_s"], last["raw_lmdb_append_txs_per_s"]
        out["raw_lmdb_last_decade_vs_first"] = round(raw_last / raw_first, 3)
        out["append_vs_raw_last_decade_vs_first"] = round(
            last["append_vs_raw_lmdb"] / first["append_vs_raw_lmdb"], 3
        )
    return out


def raw_lmdb_append(path: Path, txs: list[bytes]) -> float:
    raw = RawLmdb(path)
    try:
        raw.append(txs)
    finally:
        raw.close()
    return raw.seconds


def read_and_hash_floor(path: Path) -> float:
    started = time.perf_counter()
    with LmdbBlockStore.open(path, create=False, readonly=True) as store:
        for block in store.iter_blocks():
            for raw in block.txs:
                leaf_hash(raw)
    return time.perf_counter() - started


def proof_latencies_ms(
    path: Path, txs: list[bytes], samples: int, rng: random.Random
) -> list[float]:
    out = []
    with LmdbBlockStore.open(path, create=False, readonly=True) as store:
        size = store.log_size
        root = store.log_root()
        for _ in range(samples):
            raw = txs[rng.randrange(len(txs))]
            tx_id = leaf_hash(raw)
            t0 = time.perf_counter()
            loc = store.tx_location(tx_id)
            assert loc is not None
            proof = store.inclusion_proof(loc.log_index, size)
            out.append((time.perf_counter() - t0) * 1000)
            verify_inclusion(tx_id, loc.log_index, size, proof, root)
    return out


MERKLE_LEAVES = 1 << 20


def merkle_root_list_vs_hashlib(rng: random.Random, repeats: int = 5) -> dict[str, float]:
    """Median seconds of ``chain.merkle.root(list[bytes])`` and of the hashlib loop, run
    in turn in every repetition (load that comes and goes hits both alike)."""
    from chain.kernels import reference

    leaves = [rng.randbytes(32) for _ in range(MERKLE_LEAVES)]
    want = reference.merkle_root(leaves)
    if merkle.root(leaves) != want:
        raise click.ClickException("chain.merkle.root disagrees with the hashlib reference")
    kernel, loop = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        merkle.root(leaves)
        kernel.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reference.merkle_root(leaves)
        loop.append(time.perf_counter() - t0)
    kernel_s, loop_s = statistics.median(kernel), statistics.median(loop)
    return {"kernel_s": kernel_s, "hashlib_s": loop_s, "ratio": loop_s / kernel_s}


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


@click.command("storage")
@click.option("--txs", "n_txs", default=1_000_000, show_default=True, help="Signed txs to append.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Keep the store here (a temp dir otherwise).",
)
@click.option(
    "--decade-txs",
    default=DECADE_TXS,
    show_default=True,
    help="Report append rate, bytes written per tx and lookup latency every this many txs.",
)
@click.option(
    "--tx-cache",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read the signed txs from this file if it holds enough, else sign and write them "
    "there (the same txs every run; signing 10M takes minutes).",
)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
def command(
    n_txs: int, data_dir: Path | None, decade_txs: int, tx_cache: Path | None, as_json: bool
) -> None:
    """Durable append, verify rate and proof latency on LMDB, with same-run baselines."""
    if n_txs < BLOCK_TXS:
        raise click.BadParameter(f"at least {BLOCK_TXS}", param_hint="--txs")
    with tempfile.TemporaryDirectory(prefix="grantchain-bench-") as tmp:
        store_dir = data_dir or Path(tmp) / "store"
        if data_dir and (data_dir / "data.mdb").exists():
            raise click.ClickException(f"{data_dir} already holds a store; give an empty directory")
        click.echo(f"signing {n_txs:,} txs (or reading them from --tx-cache) ...", err=True)
        t0 = time.perf_counter()
        txs, txs_source = cached_signed_txs(n_txs, tx_cache)
        sign_s = time.perf_counter() - t0
        avg_bytes = sum(map(len, txs[:1000])) / 1000
        click.echo(
            f"txs {txs_source} in {sign_s:.1f} s (avg {avg_bytes:.0f} bytes); appending ...",
            err=True,
        )
        backend.active().warmup()  # as the node does at start: no kernel load in the timing
        phases: dict[str, float] = {}
        decades: list[dict[str, Any]] = []
        raw = RawLmdb(Path(tmp) / "raw")
        try:
            append_s = append_all(
                store_dir,
                txs,
                phases,
                decades,
                max(BLOCK_TXS, decade_txs // BLOCK_TXS * BLOCK_TXS),
                raw,
            )
        finally:
            raw.close()
        raw_s = raw.seconds
        click.echo("verifying ...", err=True)
        # Each in turn, twice, the faster of each kept: load that comes and goes on a
        # shared machine hits both alike.
        verify_runs, floor_runs, open_runs = [], [], []
        for _ in range(VERIFY_TURNS):
            t0 = time.perf_counter()
            opened = t0
            with LmdbBlockStore.open(store_dir, create=False, readonly=True) as store:
                opened = time.perf_counter()
                report = verify_store(store)
            verify_runs.append(time.perf_counter() - t0)
            open_runs.append(opened - t0)
            if not report.ok:
                raise click.ClickException(
                    f"the benchmark's own store does not verify: {report.problem}"
                )
            floor_runs.append(read_and_hash_floor(store_dir))
        verify_s, floor_s = min(verify_runs), min(floor_runs)
        t0, opened = 0.0, open_runs[verify_runs.index(verify_s)]
        lat = proof_latencies_ms(store_dir, txs, 2_000, random.Random(7))
    del txs
    mk = merkle_root_list_vs_hashlib(random.Random(11))
    result = {
        "txs": n_txs,
        "tx_bytes_avg": round(avg_bytes),
        "txs_source": txs_source,
        "txs_source_s": round(sign_s, 1),
        "append_txs_per_s": round(n_txs / append_s),
        "raw_lmdb_append_txs_per_s": round(n_txs / raw_s),
        "append_vs_raw_lmdb": round(raw_s / append_s, 3),
        "append_phases_s": {k: round(v, 3) for k, v in phases.items()},
        "decades": decades,
        "append_s": round(append_s, 3),
        "raw_lmdb_append_s": round(raw_s, 3),
        "verify_txs_per_s": round(n_txs / verify_s),
        "read_hash_floor_txs_per_s": round(n_txs / floor_s),
        "verify_vs_floor": round(floor_s / verify_s, 3),
        "verify_s": round(verify_s, 3),
        "verify_open_s": round(opened - t0, 3),
        "read_hash_floor_s": round(floor_s, 3),
        "proof_ms_p50": round(_pct(lat, 50), 4),
        "proof_ms_p99": round(_pct(lat, 99), 4),
        "merkle_root_list_2p20_s": round(mk["kernel_s"], 4),
        "merkle_root_hashlib_loop_2p20_s": round(mk["hashlib_s"], 4),
        "merkle_root_list_vs_hashlib": round(mk["ratio"], 2),
    }
    result.update(decade_curve(decades))
    for d in decades:
        click.echo(
            f"  up to {d['txs']:>11,} txs: append {d['append_txs_per_s']:>8,} txs/s, "
            f"{d['bytes_written_per_tx']:>6,} bytes written per tx, "
            f"lookup p50 {d['lookup_ms_p50']} ms p99 {d['lookup_ms_p99']} ms "
            f"(CPU p99 {d['lookup_cpu_ms_p99']} ms; load {d['load_avg_1m']:.1f}; runs {d['runs']})"
            + (
                f"; raw LMDB {d['raw_lmdb_append_txs_per_s']:,} txs/s, "
                f"ratio {d['append_vs_raw_lmdb']}"
                if "append_vs_raw_lmdb" in d
                else ""
            )
        )
    if "last_decade_vs_first" in result:
        click.echo(
            f"  last decade vs first: append {result['last_decade_vs_first']}x"
            + (
                f"; raw LMDB {result['raw_lmdb_last_decade_vs_first']}x in the same turns"
                f" (the disk); append/raw {result['append_vs_raw_last_decade_vs_first']}x"
                if "raw_lmdb_last_decade_vs_first" in result
                else ""
            )
        )
    click.echo(
        f"append  {result['append_txs_per_s']:>10,} txs/s durable "
        f"(raw LMDB baseline {result['raw_lmdb_append_txs_per_s']:,}; ratio {result['append_vs_raw_lmdb']})\n"
        f"verify  {result['verify_txs_per_s']:>10,} txs/s "
        f"(read+hash floor {result['read_hash_floor_txs_per_s']:,}; ratio {result['verify_vs_floor']})\n"
        f"proofs  p50 {result['proof_ms_p50']} ms, p99 {result['proof_ms_p99']} ms at {n_txs:,} txs\n"
        f"merkle  root of 2^20 leaves from a list: {result['merkle_root_list_2p20_s']} s "
        f"(hashlib loop {result['merkle_root_hashlib_loop_2p20_s']} s; "
        f"ratio {result['merkle_root_list_vs_hashlib']}), one thread"
    )
    if as_json:
        click.echo(json.dumps(result))
