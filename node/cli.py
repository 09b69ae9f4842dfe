"""The ``grantchain`` command line. Subcommands load lazily so ``grantchain --help`` and
small commands never pay for numba, lmdb or the node runtime."""

from __future__ import annotations

import importlib
from typing import Any

import click

COMMANDS: dict[str, tuple[str, str]] = {
    "verify": ("node.commands.verify", "Re-check a data directory: hash links, roots, signatures."),
    "demo": (
        "node.commands.demo",
        "make run: a local cluster, the audit story, a report, a receipt.",
    ),
    "bench": ("node.commands.bench", "Benchmarks: storage, crypto, acl, e2e."),
    "init": ("node.commands.init", "Create a consortium: keys, TLS CA, genesis, node configs."),
    "node": ("node.commands.node", "Run a node: grantchain node run --config FILE."),
    "verify-receipt": (
        "node.commands.verify_receipt",
        "Check a receipt offline against the genesis.",
    ),
    "cluster": (
        "node.commands.cluster",
        "A local cluster: up, status, stop-node, start-node, down.",
    ),
    "load": ("node.commands.load", "Submit pre-signed access events to a cluster at a rate."),
    "tx": ("node.commands.tx", "Sign and submit a tx of any kind; look a tx up."),
    "query": (
        "node.commands.query",
        "Access checks, grants, history, lineage, violations, reports.",
    ),
}


class LazyGroup(click.Group):
    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module = importlib.import_module(self._lazy[cmd_name][0])
            command: click.Command = module.command
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self._lazy[name][1]) for name in sorted(self._lazy)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(package_name="grantchain")
def main() -> None:
    """grantchain: a permissioned ledger of dataset access grants and AI audit events."""


if __name__ == "__main__":
    main()
