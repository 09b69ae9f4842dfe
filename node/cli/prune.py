"""``grantchain prune --data-dir DIR --before-height H [--json]``: drop old txs' bytes."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import lmdb

from storage.blockstore import NotAGrantchainStore, StoreError
from storage.lmdb_store import LmdbBlockStore


@click.command("prune")
@click.option(
    "--data-dir",
    "data_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="The node's data directory (the node stopped).",
)
@click.option(
    "--before-height",
    "before_height",
    required=True,
    type=click.IntRange(min=1),
    help="Prune the txs of every block below this height.",
)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
def command(data_dir: Path, before_height: int, as_json: bool) -> None:
    """Replace the txs of the blocks below --before-height by their ids (32-byte leaf
    hashes). Headers, certificates, results, the Merkle log's nodes, the tx index and the
    ACL state are kept: every root and proof still answers, duplicates are still refused,
    receipts issued before still verify, and ``grantchain verify`` checks every root of
    what is left; only the txs' bytes (and their signatures) are gone. Safe to interrupt:
    it resumes where it stopped. Exit 0 done, 2 when the directory or height is wrong."""
    started = time.perf_counter()
    try:
        with LmdbBlockStore.open(data_dir, create=False) as store:
            before = store.pruned_height
            done = store.prune(before_height)
            txs = 0
            header = store.header(done) if done else None
            first = store.header(before) if before else None
            if header is not None:
                txs = header.log_size - (first.log_size if first is not None else 0)
    except (NotAGrantchainStore, StoreError, lmdb.Error) as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "error": str(exc)}))
        else:
            click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    seconds = time.perf_counter() - started
    if as_json:
        doc = {"ok": True, "pruned_height": done, "txs_pruned": txs, "seconds": round(seconds, 3)}
        click.echo(json.dumps(doc))
    else:
        click.echo(f"pruned: blocks 1..{done} keep their txs' ids only ({txs:,} txs now)")
