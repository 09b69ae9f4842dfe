"""``grantchain load --cluster DIR --rate R --duration S [--out FILE]``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from node.client import Client
from node.cluster.consortium import ConsortiumError, load_manifest
from node.cluster.load import access_for, leader_first, prepare_dataset, presign, run_load
from node.runtime import gc_policy


@click.command("load")
@click.option(
    "--cluster", "directory", required=True, type=click.Path(path_type=Path, file_okay=False)
)
@click.option("--rate", type=click.FloatRange(min=1), required=True, help="Txs per second.")
@click.option("--duration", type=click.FloatRange(min=0.1), required=True, help="Seconds.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write committed tx ids here, one per line.",
)
@click.option("--json", "as_json", is_flag=True)
def command(directory: Path, rate: float, duration: float, out: Path | None, as_json: bool) -> None:
    """Submit pre-signed access events from every organisation's app at RATE for DURATION,
    waiting for each batch's commit; keeps going through leader changes."""
    gc_policy.tune()
    try:
        manifest = load_manifest(directory)
    except (ConsortiumError, OSError) as exc:
        raise click.ClickException(f"{directory}: {exc}") from None
    urls = [n.rpc_url for n in manifest.nodes]
    access = access_for(manifest)  # TLS and signed requests where the nodes want them
    with Client(urls, ca_cert=access.ca_cert, signer=access.signer) as client:
        dataset_id = prepare_dataset(manifest, client)
    n = int(rate * duration)
    click.echo(f"signing {n:,} access events on {dataset_id} ...", err=True)
    txs = presign(manifest, dataset_id, n, rate_per_s=rate)
    click.echo(f"submitting at {rate:,.0f} txs/s for {duration:.1f} s ...", err=True)
    report = asyncio.run(
        run_load(leader_first(urls, access), txs, rate_per_s=rate, out=out, access=access)
    )
    doc = {
        "submitted": report.submitted,
        "committed": report.committed,
        "failed_batches": report.failed_batches,
        "retried_batches": report.retried_batches,
        "duration_s": round(report.duration_s, 3),
        "committed_txs_per_s": round(report.committed / report.duration_s, 1)
        if report.duration_s
        else 0,
        "latency_ms_p50": round(report.percentile_ms(50), 2),
        "latency_ms_p99": round(report.percentile_ms(99), 2),
    }
    if as_json:
        click.echo(json.dumps(doc))
    else:
        click.echo(
            f"committed {doc['committed']:,} of {doc['submitted']:,} in {doc['duration_s']} s "
            f"({doc['committed_txs_per_s']:,} txs/s); latency p50 {doc['latency_ms_p50']} ms, "
            f"p99 {doc['latency_ms_p99']} ms; {doc['retried_batches']} retried, {doc['failed_batches']} failed batches"
        )
