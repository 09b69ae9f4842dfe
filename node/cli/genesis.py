"""``grantchain genesis build --out DIR BUNDLE... --chain-id ID [--consensus raft|pbft]
[--genesis-time-ms MS] [--governance-quorum Q] [--auditor-org ORG]... [--force] [--json]``: the genesis from the
members' public bundles (``node.cluster.genesis_build``); it opens no private key."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from node.cluster.genesis_build import GenesisBuildError, GenesisParams, build_from_files


@click.group("genesis")
def command() -> None:
    """The consortium's genesis, from its members' public bundles."""


@command.command("build")
@click.argument("bundles", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write genesis.json, tls-cas.pem and network.json.",
)
@click.option("--chain-id", required=True, help="The chain id.")
@click.option("--consensus", type=click.Choice(["raft", "pbft"]), default="raft", show_default=True)
@click.option("--genesis-time-ms", type=int, default=None, help="Genesis time in Unix ms [now].")
@click.option(
    "--governance-quorum", type=int, default=None, help="Approving orgs needed [a majority]."
)
@click.option(
    "--auditor-org",
    "auditor_orgs",
    multiple=True,
    help="An organisation designated as auditing: its auditor identities read everything "
    "over the RPC (repeat for several).",
)
@click.option("--force", is_flag=True, help="Replace a build in --out.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def build(
    bundles: tuple[Path, ...],
    out_dir: Path,
    chain_id: str,
    consensus: str,
    genesis_time_ms: int | None,
    governance_quorum: int | None,
    auditor_orgs: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Build the genesis from the organisations' bundle.json files. Every member can run
    it and compare the genesis hash: the order of the bundles does not matter."""
    params = GenesisParams(
        chain_id=chain_id,
        genesis_time_ms=genesis_time_ms if genesis_time_ms is not None else time.time_ns() // 10**6,
        consensus=consensus,
        governance_quorum=governance_quorum,
        auditor_orgs=auditor_orgs,
    )
    try:
        built = build_from_files(bundles, params, out_dir, force=force)
    except GenesisBuildError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    g = built.genesis
    if as_json:
        click.echo(
            json.dumps(
                {
                    "chain_id": g.chain_id,
                    "genesis_hash": g.hash.hex(),
                    "trust_bundle_sha256": built.network.trust_bundle_sha256.hex(),
                    "organisations": [o.org_id for o in g.organisations],
                    "validators": [v.node_id for v in g.validators],
                    "auditor_orgs": list(g.auditor_orgs),
                }
            )
        )
        return
    click.echo(f"genesis {g.hash.hex()} ({g.chain_id}, {g.consensus}) in {out_dir}")
    click.echo(
        f"  {len(g.organisations)} organisations, {len(g.validators)} validators, "
        f"governance quorum {g.governance_quorum}"
    )
