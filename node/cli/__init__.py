"""The ``grantchain`` command line. Subcommands load lazily so ``grantchain --help`` and
small commands never pay for numba, lmdb or the node runtime.

One module per command (``node.cli.<command>``), each exporting ``command``. The CLI sits
on top: it may import every other sub-package of ``node`` (``node.app`` to run a node,
``node.client``, ``node.cluster``, ``node.runtime``) and ``benchmarks``; nothing in
``node`` imports it."""

from __future__ import annotations

import click

from node.cli.lazy_group import LazyGroup

COMMANDS: dict[str, tuple[str, str]] = {
    "verify": ("node.cli.verify", "Re-check a data directory: hash links, roots, signatures."),
    "prune": ("node.cli.prune", "Drop the bytes of old txs, keeping ids, roots and proofs."),
    "snapshot": ("node.cli.snapshot", "State sync: export a node's chain pruned; import it."),
    "demo": (
        "node.cli.demo",
        "make run: a local cluster, the audit story, a report, a receipt.",
    ),
    "bench": ("node.cli.bench", "Benchmarks: storage, crypto, acl, e2e."),
    "init": (
        "node.cli.init",
        "A local consortium: every org's org init, genesis build, configs.",
    ),
    "org": ("node.cli.org", "An organisation's own keys and bundle; its node configs."),
    "genesis": ("node.cli.genesis", "Build the genesis from the members' public bundles."),
    "node": ("node.cli.node", "Run a node: grantchain node run --config FILE."),
    "verify-receipt": (
        "node.cli.verify_receipt",
        "Check a receipt offline against the genesis.",
    ),
    "cluster": (
        "node.cli.cluster",
        "A local cluster: up, status, stop-node, start-node, down.",
    ),
    "load": ("node.cli.load", "Submit pre-signed access events to a cluster at a rate."),
    "tx": ("node.cli.tx", "Sign and submit a tx of any kind; look a tx up."),
    "query": (
        "node.cli.query",
        "Access checks, grants, history, lineage, violations, reports.",
    ),
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(package_name="grantchain")
def main() -> None:
    """grantchain: a permissioned ledger of dataset access grants and AI audit events."""
