"""``grantchain node run --config FILE``: run one node in the foreground."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
import uvloop

from node.runtime.config import ConfigError, load_config


@click.group("node")
def command() -> None:
    """Run a node."""


@command.command("run")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The node's TOML config.",
)
@click.option("--log-level", default="INFO", show_default=True)
def run(config_path: Path, log_level: str) -> None:
    """Run the node until SIGTERM or Ctrl-C (exit 0), or a fatal error (exit 1)."""
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    from chain.kernels.selfcheck import KernelMismatch
    from node.app import serve
    from storage.blockstore import StoreError

    try:
        code = uvloop.run(serve(cfg))
    except (ValueError, OSError, StoreError, KernelMismatch) as exc:  # say which
        raise click.ClickException(f"node {cfg.node_id} cannot start: {exc}") from None
    sys.exit(code)
