"""``grantchain snapshot export|import``: state sync for a new node."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import click
import lmdb

from chain.genesis import Genesis, GenesisError
from storage.blockstore import NotAGrantchainStore, StoreError
from storage.lmdb_store import LmdbBlockStore
from storage.snapshot import export_snapshot, import_snapshot


@click.group("snapshot")
def command() -> None:
    """A node's chain as of its head, every block pruned (headers, certificates, results,
    log nodes, tx ids and index, state): export it from a running node's data directory,
    import it (verified) as a new node's data directory instead of replaying from genesis."""


@command.command("export")
@click.option("--data-dir", "data_dir", required=True, type=click.Path(path_type=Path))
@click.option(
    "--out", "out", required=True, type=click.Path(path_type=Path), help="A new directory."
)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
def export(data_dir: Path, out: Path, as_json: bool) -> None:
    """Write the snapshot (one consistent read; the node may keep running)."""
    try:
        with LmdbBlockStore.open(data_dir, create=False, readonly=True) as store:
            height = export_snapshot(store, out)
    except (NotAGrantchainStore, StoreError, lmdb.Error, OSError) as exc:
        _fail(str(exc), as_json)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())  # with the index
    if as_json:
        click.echo(json.dumps({"ok": True, "height": height, "bytes": size}))
    else:
        click.echo(f"snapshot of height {height} in {out} ({size:,} bytes)")


@command.command("import")
@click.option("--snapshot", "snapshot", required=True, type=click.Path(path_type=Path))
@click.option("--data-dir", "data_dir", required=True, type=click.Path(path_type=Path))
@click.option(
    "--genesis",
    "genesis_file",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
def import_(snapshot: Path, data_dir: Path, genesis_file: Path, as_json: bool) -> None:
    """Verify the snapshot against the genesis and install it as --data-dir. Exit 0
    installed, 1 the snapshot does not verify, 2 unreadable input."""
    try:
        genesis = Genesis.from_json(genesis_file.read_text())
        report = import_snapshot(snapshot, data_dir, genesis_hash=genesis.hash)
    except (GenesisError, NotAGrantchainStore, lmdb.Error, OSError) as exc:
        _fail(str(exc), as_json)
    except StoreError as exc:
        _fail(str(exc), as_json, code=1)
    if as_json:
        click.echo(json.dumps({"ok": True, "height": report.height, "head_hash": report.head_hash}))
    else:
        click.echo(f"imported: height {report.height}, head {report.head_hash}, verified")


def _fail(error: str, as_json: bool, code: int = 2) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": error}))
    else:
        click.echo(f"error: {error}", err=True)
    sys.exit(code)
