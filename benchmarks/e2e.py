"""``grantchain bench e2e``: committed signed txs/s (durable) and submit-to-commit latency
on a local cluster, with the load generator on the same machine.

Two runs on one fresh cluster: a latency run at 1,000 txs/s (the p50 target), then a
throughput run offered above what the cluster can commit. ``--consensus pbft`` runs a
PBFT cluster (4 nodes by default: every replica validates every block and verifies
every signature), and ``--baseline raft`` then runs the same on a Raft cluster in the
same invocation, for the ratio. ``--secure`` runs the RPC as a real consortium does
(``rpc_auth = "members"``, TLS, every load request signed by a member's key, which the
node verifies), and ``--auth-baseline`` then runs the same with a plain, open RPC in the
same invocation, for the ratio (issue 15: no more than 10% lost to the authenticated
path). Signing happens before each
measured window. The CPU time each node process used during the throughput run is read
from /proc, and ``cpu_ms_per_committed_tx`` is their sum over the committed txs (the
cost to compare between runs: unlike txs/s it hardly moves with the load of other
processes on a shared machine). Commit acknowledgements are ``?wait=commit&receipts=false``: a tx counts once
the node that took it has applied it durably.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from chain import limits
from node.cluster.load import (
    LoadReport,
    access_for,
    leader_first,
    presign,
    run_load,
    start_for_load,
)
from node.cluster.local import (
    bench_consortium,
    read_pid,
    stop_node,
)
from node.runtime import gc_policy
from node.runtime.config import load_config, write_config

TARGET_TXS_PER_S = {"raft": 20_000, "pbft": 10_000}
LOW_RATE_PER_S = 1_000.0


def _cpu_s(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _summary(r: LoadReport) -> dict[str, float]:
    return {
        "committed": r.committed,
        "submitted": r.submitted,
        "committed_txs_per_s": round(r.committed / r.duration_s, 1) if r.duration_s else 0.0,
        "latency_ms_p50": round(r.percentile_ms(50), 2),
        "latency_ms_p99": round(r.percentile_ms(99), 2),
    }


@click.command("e2e")
@click.option("--consensus", type=click.Choice(["raft", "pbft"]), default="raft", show_default=True)
@click.option("--nodes", default=None, type=int, help="[default: 3, or 4 with --consensus pbft]")
@click.option("--duration", default=10.0, show_default=True, help="Seconds of the throughput run.")
@click.option(
    "--rate", default=25_000.0, show_default=True, help="Offered rate of the throughput run, txs/s."
)
@click.option(
    "--block-txs-max",
    type=click.IntRange(1, limits.BLOCK_TXS_MAX),
    default=None,
    help="Every node's block_txs_max (default: the node config's default).",
)
@click.option(
    "--baseline",
    type=click.Choice(["raft", "pbft"]),
    default=None,
    help="Also run this consensus (its default node count) after, same options: the ratio.",
)
@click.option(
    "--secure/--open",
    default=False,
    show_default=True,
    help="--secure: reads for members, TLS, and every load request signed and verified.",
)
@click.option(
    "--auth-baseline",
    is_flag=True,
    help="Also run the other of --secure/--open after, same options: the ratio.",
)
@click.option("--json", "as_json", is_flag=True)
def command(
    consensus: str,
    nodes: int | None,
    duration: float,
    rate: float,
    block_txs_max: int | None,
    baseline: str | None,
    secure: bool,
    auth_baseline: bool,
    as_json: bool,
) -> None:
    """Committed signed txs/s and latency on a local cluster (durable)."""
    gc_policy.tune()  # the load generator, as the nodes do
    result = _run(consensus, nodes, duration, rate, block_txs_max, secure)
    _say(result)
    if auth_baseline:
        other = _run(consensus, nodes, duration, rate, block_txs_max, not secure)
        _say(other)
        result["auth_baseline"] = other
        sec, opn = (result, other) if secure else (other, result)
        result["ratio_secure_to_open"] = (
            round(sec["committed_txs_per_s"] / opn["committed_txs_per_s"], 3)
            if opn["committed_txs_per_s"]
            else None
        )
        click.echo(f"secure / open committed txs/s: {result['ratio_secure_to_open']}")
    if baseline is not None:
        base = _run(baseline, None, duration, rate, block_txs_max, secure)
        _say(base)
        result["baseline"] = base
        result["ratio_to_baseline"] = (
            round(result["committed_txs_per_s"] / base["committed_txs_per_s"], 3)
            if base["committed_txs_per_s"]
            else None
        )
        click.echo(f"{consensus} / {baseline} committed txs/s: {result['ratio_to_baseline']}")
    if as_json:
        click.echo(json.dumps(result))


def _run(
    consensus: str,
    nodes: int | None,
    duration: float,
    rate: float,
    block_txs_max: int | None,
    secure: bool = False,
) -> dict[str, Any]:
    nodes = nodes if nodes is not None else 4 if consensus == "pbft" else 3
    with tempfile.TemporaryDirectory(prefix="grantchain-e2e-") as tmp:
        manifest = bench_consortium(Path(tmp) / "c", nodes, "bench-e2e", consensus, secure=secure)
        access = access_for(manifest)
        for n in manifest.nodes:
            if block_txs_max is not None:
                cfg = dataclasses.replace(load_config(n.config), block_txs_max=block_txs_max)
                write_config(cfg, n.config)
        block_txs = load_config(manifest.nodes[0].config).block_txs_max
        try:
            urls, dataset_id = start_for_load(manifest, lambda m: click.echo(m, err=True))
            low_s = max(3.0, duration / 2)
            click.echo(
                f"{consensus}, {nodes} nodes: signing "
                f"{int(LOW_RATE_PER_S * low_s + rate * duration):,} txs ...",
                err=True,
            )
            low_txs = presign(
                manifest, dataset_id, int(LOW_RATE_PER_S * low_s), rate_per_s=LOW_RATE_PER_S
            )
            high_txs = presign(manifest, dataset_id, int(rate * duration), rate_per_s=rate)
            click.echo(f"latency run: {LOW_RATE_PER_S:,.0f} txs/s for {low_s:.0f} s ...", err=True)
            low = asyncio.run(
                run_load(
                    leader_first(urls, access), low_txs, rate_per_s=LOW_RATE_PER_S, access=access
                )
            )
            pids = {n.node_id: read_pid(n) for n in manifest.nodes}
            cpu0 = {k: _cpu_s(p) for k, p in pids.items()}
            gen0 = time.process_time()
            click.echo(
                f"throughput run: offering {rate:,.0f} txs/s for {duration:.0f} s ...", err=True
            )
            high = asyncio.run(
                run_load(leader_first(urls, access), high_txs, rate_per_s=rate, access=access)
            )
            cpu = {k: round(_cpu_s(p) - cpu0[k], 2) for k, p in pids.items()}
            gen_cpu = round(time.process_time() - gen0, 2)
        finally:
            for n in manifest.nodes:
                stop_node(n)
    hi, lo = _summary(high), _summary(low)
    target = TARGET_TXS_PER_S[consensus]
    return {
        "consensus": consensus,
        "nodes": nodes,
        "rpc": "members+tls, signed" if secure else "open",
        "offered_txs_per_s": rate,
        "block_txs_max": block_txs,
        "committed_txs_per_s": hi["committed_txs_per_s"],
        "latency_ms_p50": hi["latency_ms_p50"],
        "latency_ms_p99": hi["latency_ms_p99"],
        "latency_ms_p50_at_1000": lo["latency_ms_p50"],
        "latency_ms_p99_at_1000": lo["latency_ms_p99"],
        "committed_at_1000": lo["committed"],
        f"vs_target_{target}": round(hi["committed_txs_per_s"] / target, 3),
        "cpu_s_per_node": cpu,
        "cpu_ms_per_committed_tx": (
            round(sum(cpu.values()) * 1000 / high.committed, 4) if high.committed else None
        ),
        "cpu_s_load_generator": gen_cpu,
        "duration_s": round(high.duration_s, 2),
    }


def _say(result: dict[str, Any]) -> None:
    target = TARGET_TXS_PER_S[result["consensus"]]
    click.echo(
        f"{result['consensus']} ({result['nodes']} nodes, rpc {result['rpc']}): throughput "
        f"{result['committed_txs_per_s']:,} committed txs/s "
        f"(p50 {result['latency_ms_p50']} ms, p99 {result['latency_ms_p99']} ms; "
        f"{result[f'vs_target_{target}']}x the {target:,} target)\n"
        f"at 1,000 txs/s: p50 {result['latency_ms_p50_at_1000']} ms, "
        f"p99 {result['latency_ms_p99_at_1000']} ms\n"
        f"CPU s per node over {result['duration_s']} s: {result['cpu_s_per_node']} "
        f"({result['cpu_ms_per_committed_tx']} ms per committed tx); "
        f"load generator {result['cpu_s_load_generator']}"
    )
