"""``grantchain init DIR --nodes N [--orgs K] [--consensus raft|pbft] [--base-port P]
[--chain-id ID] [--genesis-time-ms MS] [--auditor-org ORG]... [--rpc-auth members|open]
[--rpc-tls/--no-rpc-tls] [--force] [--json]``: a local consortium in one command.

Plays every organisation on this host with the same steps a real consortium takes on
many: each organisation's ``org init`` (its own keys and TLS CA), ``genesis build`` from
the public bundles alone, and each organisation's ``org configure``; the layout is
described in ``node.cluster.consortium``.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import click

from node.cluster.consortium import (
    BASE_PORT_DEFAULT,
    ConsortiumError,
    ConsortiumSpec,
    chain_id_from_name,
    create_consortium,
    manifest_summary,
)


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--nodes", "nodes", type=int, required=True, help="Number of validator nodes.")
@click.option("--orgs", "orgs", type=int, default=None, help="Organisations [min(nodes, 3)].")
@click.option(
    "--consensus",
    type=click.Choice(["raft", "pbft"]),
    default="raft",
    show_default=True,
    help="Consensus protocol, fixed in genesis.",
)
@click.option(
    "--base-port",
    type=int,
    default=BASE_PORT_DEFAULT,
    show_default=True,
    help="Node nI: RPC on P+I-1, peers on P+100+I-1.",
)
@click.option("--chain-id", default=None, help="Chain id [derived from the directory name].")
@click.option(
    "--genesis-time-ms",
    type=int,
    default=None,
    help="Genesis timestamp in Unix ms [now]; fix it for reproducible genesis hashes.",
)
@click.option(
    "--auditor-org",
    "auditor_orgs",
    multiple=True,
    help="An organisation designated as auditing (its auditor identities read everything).",
)
@click.option(
    "--rpc-auth",
    type=click.Choice(["members", "open"]),
    default="members",
    show_default=True,
    help="members: every read signed by a registered key and under the read policy.",
)
@click.option(
    "--rpc-tls/--no-rpc-tls",
    default=True,
    show_default=True,
    help="Serve the RPC over TLS with each node's certificate.",
)
@click.option("--force", is_flag=True, help="Replace an existing consortium in DIR.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def command(
    directory: Path,
    nodes: int,
    orgs: int | None,
    consensus: str,
    base_port: int,
    chain_id: str | None,
    genesis_time_ms: int | None,
    auditor_orgs: tuple[str, ...],
    rpc_auth: str,
    rpc_tls: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Create a local consortium in DIR: each organisation's admin and app identities,
    node keys, its own TLS CA and node certificates; the genesis built from their public
    bundles; one config per node. Keys are written 0600. For organisations on separate
    hosts use 'grantchain org init' and 'grantchain genesis build' (deploy/README.md)."""
    now = datetime.datetime.now(datetime.UTC)
    spec = ConsortiumSpec(
        nodes=nodes,
        orgs=orgs if orgs is not None else min(nodes, 3),
        consensus=consensus,
        base_port=base_port,
        chain_id=chain_id or chain_id_from_name(directory.absolute().name),
        genesis_time_ms=(
            genesis_time_ms if genesis_time_ms is not None else int(now.timestamp() * 1000)
        ),
        auditor_orgs=auditor_orgs,
        rpc_auth=rpc_auth,
        rpc_tls=rpc_tls,
    )
    try:
        manifest = create_consortium(directory, spec, now=now, force=force)
    except ConsortiumError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(manifest_summary(manifest)))
        return
    click.echo(
        f"consortium {manifest.chain_id!r} ({manifest.consensus}, {len(manifest.nodes)} nodes, "
        f"{spec.orgs} orgs) in {manifest.directory}"
    )
    click.echo(f"genesis {manifest.genesis_hash.hex()}")
    for n in manifest.nodes:
        click.echo(
            f"  {n.node_id} ({n.org_id})  rpc {n.rpc_url}  peer {n.peer_host}:{n.peer_port}  "
            f"config {n.config}"
        )
