"""``grantchain verify --data-dir DIR [--signatures] [--json]``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import NoReturn

import click
import lmdb
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from chain.genesis import Genesis, GenesisError
from storage.blockstore import NotAGrantchainStore, StoreError
from storage.lmdb_store import LmdbBlockStore
from storage.verify import VerifyReport, verify_store


def run_verify(
    data_dir: Path, *, signatures: bool, show_progress: bool, anchor: bytes | None = None
) -> tuple[VerifyReport, float]:
    started = time.perf_counter()
    with LmdbBlockStore.open(data_dir, create=False, readonly=True) as store:
        if not show_progress or store.height == 0:
            report = verify_store(store, check_signatures=signatures, anchor=anchor)
        else:
            with Progress(
                TextColumn("verifying"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("blocks"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            ) as bar:
                task = bar.add_task("verify", total=store.height)
                report = verify_store(
                    store,
                    check_signatures=signatures,
                    anchor=anchor,
                    on_block=lambda h, _n: bar.update(task, completed=h),
                )
    return report, time.perf_counter() - started


@click.command("verify")
@click.option(
    "--data-dir",
    "data_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="The node's data directory.",
)
@click.option("--signatures", is_flag=True, help="Also decode every tx and verify its signature.")
@click.option(
    "--genesis",
    "genesis_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Also check that block 1 links to this genesis.",
)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
def command(data_dir: Path, signatures: bool, genesis_file: Path | None, as_json: bool) -> None:
    """Re-check a data directory: hash links, tx/results/log roots, the tx index, and with
    --signatures every signature (with --genesis, that the chain starts at that genesis).
    Exit 0 when intact, 1 when not (naming the first bad height), 2 when the directory is
    not a readable grantchain store or the genesis file is unreadable."""
    try:
        anchor = Genesis.from_json(genesis_file.read_text()).hash if genesis_file else None
        report, seconds = run_verify(
            data_dir,
            signatures=signatures,
            show_progress=sys.stderr.isatty() and not as_json,
            anchor=anchor,
        )
    except lmdb.Error as exc:  # damaged beyond what LMDB can open, or read the head of
        _unreadable(f"{data_dir}: not a readable store: {exc}", as_json)
    except (NotAGrantchainStore, StoreError, GenesisError) as exc:
        _unreadable(str(exc), as_json)
    rate = report.txs_checked / seconds if seconds > 0 else 0.0
    if report.ok:
        click.echo(
            f"intact: height {report.height}, head {report.head_hash or '(empty chain)'}, "
            f"{report.txs_checked} txs checked"
            + (f" ({report.signatures_checked} signatures)" if signatures else "")
            + f" in {seconds:.2f} s ({rate:,.0f} txs/s)"
        )
    else:
        click.echo(
            f"NOT INTACT at block {report.bad_height}: {report.problem} "
            f"(blocks 1..{report.height} verified)",
            err=not as_json,
        )
    if as_json:
        doc = report.to_json() | {"seconds": round(seconds, 3), "txs_per_s": round(rate)}
        click.echo(json.dumps(doc))
    sys.exit(0 if report.ok else 1)


def _unreadable(error: str, as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": error}))
    else:
        click.echo(f"error: {error}", err=True)
    sys.exit(2)
