"""``grantchain cluster up|status|stop-node|start-node|down DIR``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from node.cluster.consortium import ConsortiumError, Manifest, NodeEntry, load_manifest
from node.cluster.local import (
    ClusterError,
    cluster_status,
    ensure_consortium,
    start_node,
    stop_node,
    wait_for_leader,
    warm_kernels,
)

DIR = click.argument("directory", type=click.Path(path_type=Path, file_okay=False))


def _manifest(directory: Path) -> Manifest:
    try:
        return load_manifest(directory)
    except (ConsortiumError, OSError) as exc:
        raise click.ClickException(
            f"{directory}: not a consortium directory ({exc}); run 'grantchain cluster up' or 'grantchain init'"
        ) from None


def _node(directory: Path, node_id: str) -> NodeEntry:
    try:
        return _manifest(directory).node(node_id)
    except KeyError:
        raise click.ClickException(f"no node {node_id!r} in {directory}") from None


@click.group("cluster")
def command() -> None:
    """Run a consortium's nodes locally as background processes."""


@command.command("up")
@DIR
@click.option("--nodes", default=3, show_default=True, help="Nodes, if the directory is new.")
@click.option("--consensus", type=click.Choice(["raft", "pbft"]), default="raft", show_default=True)
@click.option("--base-port", default=7700, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def up(directory: Path, nodes: int, consensus: str, base_port: int, as_json: bool) -> None:
    """Create the consortium if needed, start every node, return once a quorum of them
    answer and agree on a leader (PBFT: a primary): the cluster can commit. PBFT needs
    n = 3f+1 nodes to tolerate f faulty ones (4 for 1)."""
    try:
        manifest = ensure_consortium(
            directory, nodes=nodes, consensus=consensus, base_port=base_port
        )
        warm_kernels(lambda m: click.echo(m, err=True))
        for n in manifest.nodes:
            start_node(n)
        leader = wait_for_leader(manifest)
    except (ConsortiumError, ClusterError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(
            json.dumps({"leader": leader, "nodes": [s.to_json() for s in cluster_status(manifest)]})
        )
        return
    click.echo(f"cluster {manifest.chain_id} is up; leader {leader}")
    for n in manifest.nodes:
        click.echo(f"  {n.node_id}  {n.rpc_url}")


@command.command("status")
@DIR
@click.option("--json", "as_json", is_flag=True)
def status(directory: Path, as_json: bool) -> None:
    """Each node's pid, RPC URL, role, height and head hash."""
    states = cluster_status(_manifest(directory))
    if as_json:
        click.echo(json.dumps({"nodes": [s.to_json() for s in states]}))
        return
    for s in states:
        if s.up:
            click.echo(
                f"{s.node_id}  pid {s.pid}  {s.rpc_url}  {s.role:<9}  height {s.height}  head {s.head_hash[:16] if s.head_hash else '-'}"
            )
        else:
            click.echo(
                f"{s.node_id}  {'pid ' + str(s.pid) + ' (not answering)' if s.pid else 'stopped'}  {s.rpc_url}"
            )


@command.command("stop-node")
@DIR
@click.argument("node_id")
@click.option("--kill", is_flag=True, help="SIGKILL instead of SIGTERM.")
def stop(directory: Path, node_id: str, kill: bool) -> None:
    """Stop one node (SIGTERM, or SIGKILL with --kill)."""
    node = _node(directory, node_id)
    click.echo(f"{node_id}: {'stopped' if stop_node(node, kill=kill) else 'was not running'}")


@command.command("start-node")
@DIR
@click.argument("node_id")
def start(directory: Path, node_id: str) -> None:
    """Start one node again (it catches up from its peers)."""
    click.echo(f"{node_id}: pid {start_node(_node(directory, node_id))}")


@command.command("down")
@DIR
def down(directory: Path) -> None:
    """Stop every node."""
    manifest = _manifest(directory)
    for n in manifest.nodes:
        if stop_node(n):
            click.echo(f"{n.node_id}: stopped")
