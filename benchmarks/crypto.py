"""``grantchain bench crypto``: the numba kernels against their references, same process.

Every figure is measured here, on the same inputs for kernel and reference: medians of
several repetitions, on 1 and 2 threads (a ``ThreadPoolExecutor`` over contiguous
chunks; the kernels release the GIL). Compile and cache-load times are measured in
fresh processes with a private, empty ``NUMBA_CACHE_DIR``. With ``--json`` the last line
of output is one JSON object holding every figure.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import click

SIGNATURES = 1024
KEYS = 64
MESSAGE_BYTES = 256
MERKLE_LEAVES = 1 << 20
LEAF_COUNT = 1 << 16
LEAF_BYTES = 256
REPEATS = 5
DECODE_TXS = 4096

ROOT = Path(__file__).resolve().parent.parent


def _medians_s(fns: Sequence[Callable[[], object]], repeats: int = REPEATS) -> list[float]:
    """Median wall time of each function, the functions run in turn within every
    repetition: on a shared machine, load that comes and goes hits all of them alike, so
    their ratios stay meaningful even when the absolute figures move."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def cpu_flags() -> dict[str, Any]:
    import llvmlite.binding as llvm

    features = llvm.get_host_cpu_features()
    wanted = ("avx2", "avx512f", "avx512vl", "avx512bw", "avx512ifma", "sha", "bmi2", "adx")
    return {
        "cpu": llvm.get_host_cpu_name(),
        "flags": [f for f in wanted if features.get(f, False)],
        "cores": os.cpu_count(),
    }


def _fresh_process_s(cache_dir: str) -> tuple[float, float]:
    """Wall and CPU seconds of importing the numba backend and running ``warmup()`` in
    a new process whose numba cache is ``cache_dir`` (empty: compile; filled: load).
    CPU time is what the work costs; wall time also counts other tenants' load."""
    code = (
        "import time; t = time.perf_counter(); c = time.process_time(); "
        "from chain.kernels import numba_backend; numba_backend.warmup(); "
        "print(time.perf_counter() - t, time.process_time() - c)"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    wall_s, cpu_s = out.stdout.strip().splitlines()[-1].split()
    return float(wall_s), float(cpu_s)


def _hash_chunks(pool: ThreadPoolExecutor, chunks: list[bytes]) -> None:
    list(pool.map(lambda c: hashlib.sha256(c).digest(), chunks))


def _signatures(rng: random.Random) -> tuple[list[bytes], list[bytes], list[bytes]]:
    from chain import signing

    keys = [signing.private_key_from_bytes(rng.randbytes(32)) for _ in range(KEYS)]
    pubs = [signing.public_key_bytes(k) for k in keys]
    msgs = [rng.randbytes(MESSAGE_BYTES) for _ in range(SIGNATURES)]
    sigs = [signing.sign(keys[i % KEYS], m) for i, m in enumerate(msgs)]
    return [pubs[i % KEYS] for i in range(SIGNATURES)], msgs, sigs


def _access_events(rng: random.Random, n: int) -> list[bytes]:
    """Signed access events shaped like the load generator's."""
    from acl import kinds, payloads
    from chain import signing
    from chain.tx import sign_tx

    keys = [signing.private_key_from_bytes(rng.randbytes(32)) for _ in range(4)]
    return [
        sign_tx(
            keys[i % len(keys)],
            chain_id="bench-crypto",
            kind=kinds.AUDIT_DATA_ACCESS,
            nonce=i,
            timestamp_ms=1_764_064_000_000 + i,
            payload=payloads.data_access(
                "org1/bench", purpose="training", access_type="read", record_count=i, run_id=f"r{i}"
            ),
        ).to_bytes()
        for i in range(n)
    ]


def _row(name: str, unit: str, count: int, kernel_s: float, reference_s: float) -> dict[str, Any]:
    return {
        "name": name,
        "unit": unit,
        "count": count,
        "kernel_s": kernel_s,
        "reference_s": reference_s,
        "kernel_per_s": count / kernel_s,
        "reference_per_s": count / reference_s,
        "ratio": reference_s / kernel_s,
    }


def run() -> dict[str, Any]:
    from chain.kernels import ed25519, keytables, numba_backend, parallel, reference
    from chain.kernels.hasharray import HashArray

    load_before = os.getloadavg()
    warm_t0 = time.perf_counter()
    numba_backend.warmup()
    warmup_s = time.perf_counter() - warm_t0
    rng = random.Random(2026)
    keys, msgs, sigs = _signatures(rng)
    rows: list[dict[str, Any]] = []
    checks: dict[str, bool] = {}
    tables = keytables.KeyTables()
    no_tables = keytables.KeyTables(capacity=0)

    def with_tables(k: Any, m: Any, s: Any) -> list[bool]:
        return ed25519.verify_batch(k, m, s, tables)

    def first_call() -> list[bool]:
        return ed25519.verify_batch(keys, msgs, sigs, keytables.KeyTables())

    want = reference.verify_batch(keys, msgs, sigs)
    checks["ed25519_verdicts_equal"] = (
        all(want)
        and with_tables(keys, msgs, sigs) == want
        and ed25519.verify_batch(keys, msgs, sigs, no_tables) == want
    )
    # "1T" and "2T" are pools of one and two threads given the *same* chunks, so each
    # ratio compares thread counts only, not chunk sizes.
    with ThreadPoolExecutor(1) as pool1, ThreadPoolExecutor(2) as pool2:
        pools = {1: pool1, 2: pool2}
        # Calibration: how much of a second core this shared machine gives right now, seen
        # by hashlib on 1 MiB buffers (it releases the GIL): read the 2T rows against it.
        chunks = [rng.randbytes(1 << 20) for _ in range(16)]
        one_s, two_s = _medians_s(
            [
                partial(_hash_chunks, pool1, chunks),
                partial(_hash_chunks, pool2, chunks),
            ]
        )
        calibration = one_s / two_s

        # Ed25519, 1,024 signatures from 64 keys: key tables warm (registered keys), the
        # window path (one-off keys), and a first call that builds the 64 tables. The
        # batch is cut into 8 chunks, so that with two threads one thread's Python glue
        # (which holds the GIL) overlaps the other's kernel (which does not).
        ref_1t, ref_2t, kern_1t, kern_2t, kern_window, kern_first = _medians_s(
            [
                partial(parallel.verify_batch, pool1, reference.verify_batch, keys, msgs, sigs, 8),
                partial(parallel.verify_batch, pool2, reference.verify_batch, keys, msgs, sigs, 8),
                partial(parallel.verify_batch, pool1, with_tables, keys, msgs, sigs, 8),
                partial(parallel.verify_batch, pool2, with_tables, keys, msgs, sigs, 8),
                partial(ed25519.verify_batch, keys, msgs, sigs, no_tables),
                first_call,
            ],
            repeats=9,
        )
        n = SIGNATURES
        rows.append(_row("ed25519 verify, key tables, 1T", "sig", n, kern_1t, ref_1t))
        rows.append(_row("ed25519 verify, key tables, 2T", "sig", n, kern_2t, ref_2t))
        rows.append(
            _row("ed25519 verify, no key tables (one-off keys), 1T", "sig", n, kern_window, ref_1t)
        )
        rows.append(
            _row(
                "ed25519 verify, first call (builds 64 key tables), 1T",
                "sig",
                n,
                kern_first,
                ref_1t,
            )
        )

        # Merkle root over 2^20 leaf hashes: from a list of bytes (the public API's
        # general input) and from a HashArray (leaf hashes kept contiguous, as the leaf
        # kernel returns them). The baseline is the hashlib loop over the same list.
        leaves = [rng.randbytes(32) for _ in range(MERKLE_LEAVES)]
        leaf_array = HashArray.from_hashes(leaves)
        ref_root = reference.merkle_root(leaves)
        runs = [partial(reference.merkle_root, leaves)]
        labels = []
        for label, source in (("list[bytes]", leaves), ("HashArray", leaf_array)):
            for threads in (1, 2):
                run_root = partial(
                    parallel.merkle_root, pools[threads], numba_backend.merkle_root, source, 2
                )
                checks[f"merkle_root_equal_{label}_{threads}T"] = run_root() == ref_root
                runs.append(run_root)
                labels.append(f"merkle root 2^20 leaves from {label}, {threads}T")
        ref_merkle_s, *kernel_s = _medians_s(runs, repeats=5)
        for label, k_s in zip(labels, kernel_s, strict=True):
            rows.append(_row(label, "leaf", MERKLE_LEAVES, k_s, ref_merkle_s))

        # Leaf hashes of 256-byte transactions.
        datas = [rng.randbytes(LEAF_BYTES) for _ in range(LEAF_COUNT)]
        checks["leaf_hashes_equal"] = numba_backend.leaf_hashes(datas) == reference.leaf_hashes(
            datas
        )
        timings = _medians_s(
            [
                partial(parallel.leaf_hashes, pools[threads], fn, datas, 8)
                for threads in (1, 2)
                for fn in (numba_backend.leaf_hashes, reference.leaf_hashes)
            ]
        )
        for i, threads in enumerate((1, 2)):
            rows.append(
                _row(
                    f"leaf hashes of {LEAF_BYTES}-byte data, {threads}T",
                    "leaf",
                    LEAF_COUNT,
                    timings[2 * i],
                    timings[2 * i + 1],
                )
            )

    # Strict decoding of signed access events, a batch at a time (the canonical-msgpack
    # kernel screens it, then each tx is only unpacked) against decoding each one with
    # the general codec (re-encode and compare), as admission did.
    from chain import tx as chain_tx

    raws = _access_events(rng, DECODE_TXS)
    decoded = chain_tx.decode_txs(raws)
    checks["decode_txs_equal"] = decoded == [chain_tx.decode_tx(r) for r in raws]
    batch_s, each_s = _medians_s(
        [partial(chain_tx.decode_txs, raws), lambda: [chain_tx.decode_tx(r) for r in raws]]
    )
    rows.append(
        _row("strict decode of signed access-event txs, batch", "tx", len(raws), batch_s, each_s)
    )

    with tempfile.TemporaryDirectory(prefix="grantchain-numba-cache-") as cache_dir:
        compile_s, compile_cpu_s = _fresh_process_s(cache_dir)
        loads = [_fresh_process_s(cache_dir) for _ in range(3)]
        load_s = statistics.median(w for w, _ in loads)
        load_cpu_s = statistics.median(c for _, c in loads)

    return {
        "machine": cpu_flags(),
        "load_average_before_after": [load_before[0], os.getloadavg()[0]],
        "warmup_s_this_process": warmup_s,
        "cold_compile_s": compile_s,
        "cold_compile_cpu_s": compile_cpu_s,
        "cache_load_s": load_s,
        "cache_load_cpu_s": load_cpu_s,
        "ed25519_2T_over_1T": kern_1t / kern_2t,
        "calibration_hashlib_2T_over_1T": calibration,
        "rows": rows,
        "checks": checks,
    }


def _print_text(result: dict[str, Any]) -> None:
    m = result["machine"]
    click.echo(f"CPU {m['cpu']} ({m['cores']} cores), flags: {' '.join(m['flags'])}")
    before, after = result["load_average_before_after"]
    click.echo(f"load average (1 min) before/after: {before:.1f}/{after:.1f}")
    click.echo(f"{'benchmark':58} {'kernel/s':>12} {'reference/s':>12} {'ratio':>7}")
    for r in result["rows"]:
        click.echo(
            f"{r['name']:58} {r['kernel_per_s']:12,.0f} {r['reference_per_s']:12,.0f} {r['ratio']:7.2f}"
        )
    click.echo(
        f"ed25519 2 threads / 1 thread: {result['ed25519_2T_over_1T']:.2f}x "
        f"(hashlib on 1 MiB buffers, same machine now: "
        f"{result['calibration_hashlib_2T_over_1T']:.2f}x)"
    )
    click.echo(
        f"cold compile (fresh process, empty cache): {result['cold_compile_s']:.1f} s wall, "
        f"{result['cold_compile_cpu_s']:.1f} s CPU; cache load (fresh process): "
        f"{result['cache_load_s']:.2f} s wall, {result['cache_load_cpu_s']:.2f} s CPU"
    )
    click.echo(f"checks: {result['checks']}")


@click.command("crypto")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object line.")
def command(as_json: bool) -> None:
    """Ed25519 verification, Merkle root and leaf hashing: kernels vs references."""
    result = run()
    _print_text(result)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    if not all(result["checks"].values()):
        raise SystemExit(1)
