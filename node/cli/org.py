"""``grantchain org init DIR --org ID --node ID=HOST[:RPC_PORT:PEER_PORT]... [--name NAME]``
, ``grantchain org configure DIR --genesis-dir GDIR [--listen-host H] [--rpc-auth open]
[--no-rpc-tls]`` and
``grantchain org renew-tls DIR --node ID``: one organisation's side of setting up and
running a consortium (``node.cluster.org``, ``node.cluster.genesis_build``;
deploy/README.md walks through it)."""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import click

from node.cluster.genesis_build import GenesisBuildError, RpcSettings, configure_org
from node.cluster.org import BUNDLE, NodeAddress, OrgError, OrgSpec, init_org, renew_node_cert

DIR = click.argument("directory", type=click.Path(path_type=Path, file_okay=False))


@click.group("org")
def command() -> None:
    """An organisation's own keys, its public bundle, and its nodes' configs."""


@command.command("init")
@DIR
@click.option("--org", "org_id", required=True, help="Organisation id (a-z, 0-9, '-').")
@click.option("--name", default="", help="Display name in the genesis [the org id].")
@click.option(
    "--node",
    "nodes",
    multiple=True,
    help="A node of this organisation: ID=HOST[:RPC_PORT:PEER_PORT] (ports 7700:7800). "
    "Repeat; none for a member that runs no node.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the bundle's path and summary.")
def init(directory: Path, org_id: str, name: str, nodes: tuple[str, ...], as_json: bool) -> None:
    """Make this organisation's keys in DIR (never shared) and its public bundle
    (DIR/bundle.json: send it to the consortium)."""
    try:
        spec = OrgSpec(org_id, tuple(NodeAddress.parse(n) for n in nodes), name)
        bundle = init_org(directory, spec, now=datetime.datetime.now(datetime.UTC))
    except OrgError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    path = directory.absolute() / BUNDLE
    if as_json:
        click.echo(
            json.dumps(
                {
                    "org_id": bundle.org_id,
                    "bundle": str(path),
                    "nodes": [n.node_id for n in bundle.nodes],
                }
            )
        )
        return
    click.echo(f"organisation {bundle.org_id}: keys in {directory.absolute()} (keep them there)")
    click.echo(f"public bundle {path}: send it to whoever builds the genesis")


@command.command("configure")
@DIR
@click.option(
    "--genesis-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    required=True,
    help="Where genesis.json, tls-cas.pem and network.json from 'genesis build' are.",
)
@click.option(
    "--listen-host",
    default=None,
    help="Address the nodes listen on [their own host]; 0.0.0.0 in a container.",
)
@click.option(
    "--rpc-auth",
    type=click.Choice(["members", "open"]),
    default="members",
    show_default=True,
    help="members: every read signed by a registered key and under the read policy; "
    "open: anyone who reaches the port reads everything.",
)
@click.option(
    "--rpc-tls/--no-rpc-tls",
    default=True,
    show_default=True,
    help="Serve the RPC over TLS with the node's certificate (--no-rpc-tls: plain HTTP).",
)
def configure(
    directory: Path, genesis_dir: Path, listen_host: str | None, rpc_auth: str, rpc_tls: bool
) -> None:
    """Check that the genesis holds this organisation's keys as its bundle says, copy the
    public files into DIR and write DIR/nodes/<id>/config.toml for each of its nodes."""
    rpc = RpcSettings(rpc_auth=rpc_auth, rpc_tls=rpc_tls)
    try:
        configs = configure_org(directory, genesis_dir, listen_host=listen_host, rpc=rpc)
    except (OrgError, GenesisBuildError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for node_id, path in configs.items():
        click.echo(f"{node_id}: grantchain node run --config {path}")


@command.command("renew-tls")
@DIR
@click.option("--node", "node_id", required=True, help="The node whose certificate to renew.")
def renew_tls(directory: Path, node_id: str) -> None:
    """Issue one of this organisation's nodes a new TLS key and certificate from its own
    CA (same node id and address); restart the node to use them. No other member need
    do anything: the trust bundle does not change."""
    try:
        cert = renew_node_cert(directory, node_id, now=datetime.datetime.now(datetime.UTC))
    except OrgError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"{node_id}: new certificate {cert}; restart the node to use it")
