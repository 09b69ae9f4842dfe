"""``grantchain demo --dir DIR``: build a chain of signed sample transactions in an LMDB
store, verify it, and say what was done. The quickstart's ``make run`` uses it until the
local cluster exists."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click

from chain import signing
from chain.assemble import assemble_block
from chain.block import BlockHeader
from chain.genesis import Genesis, Identity, Organisation, Validator
from chain.merkle import Frontier
from chain.tx import sign_tx
from storage.lmdb_store import LmdbBlockStore
from storage.verify import verify_store

PURPOSES = ("training", "fine_tuning", "evaluation", "inference")


def demo_genesis(keys: dict[str, signing.PrivateKey]) -> Genesis:
    pub = {name: signing.public_key_bytes(k) for name, k in keys.items()}
    return Genesis(
        chain_id="grantchain-demo",
        consensus="raft",
        timestamp_ms=1_767_225_600_000,
        organisations=(
            Organisation("hospital", "St. Example Hospital"),
            Organisation("lab", "Example AI Lab"),
        ),
        identities=(
            Identity("hospital", "hospital-admin", "admin", pub["hospital-admin"]),
            Identity("lab", "lab-admin", "admin", pub["lab-admin"]),
            Identity("lab", "lab-trainer", "app", pub["lab-trainer"]),
        ),
        validators=(Validator("n1", "hospital", pub["n1"]),),
        governance_quorum=2,
    )


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    default="./.grantchain-demo",
    type=click.Path(path_type=Path),
    show_default=True,
)
@click.option("--blocks", default=20, show_default=True, help="Blocks to build.")
@click.option("--txs-per-block", default=100, show_default=True)
def command(directory: Path, blocks: int, txs_per_block: int) -> None:
    """Build, store and verify a sample chain of signed audit events."""
    keys = {
        n: signing.generate_private_key()
        for n in ("hospital-admin", "lab-admin", "lab-trainer", "n1")
    }
    genesis = demo_genesis(keys)
    data_dir = directory / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "genesis.json").write_text(genesis.to_json())
    click.echo(f"genesis {genesis.hash.hex()} written to {directory / 'genesis.json'}")
    started = time.perf_counter()
    head: BlockHeader | None = None
    frontier = Frontier()
    nonce = 0
    with LmdbBlockStore.open(data_dir) as store:
        for height in range(1, blocks + 1):
            txs = []
            for _ in range(txs_per_block):
                nonce += 1
                tx = sign_tx(
                    keys["lab-trainer"],
                    chain_id=genesis.chain_id,
                    kind="audit.data_access",
                    nonce=nonce,
                    timestamp_ms=genesis.timestamp_ms + nonce,
                    payload={
                        "dataset_id": "hospital/chest-xray",
                        "purpose": PURPOSES[nonce % len(PURPOSES)],
                        "run_id": f"run-{nonce // 50}",
                    },
                )
                txs.append(tx.to_bytes())
            block, frontier = assemble_block(
                chain_id=genesis.chain_id,
                prev=head,
                anchor=genesis.hash,
                frontier=frontier,
                txs=txs,
                results=[0] * len(txs),
                state_root=b"\x00" * 32,
                timestamp_ms=genesis.timestamp_ms + height * 1000,
                proposer="n1",
                round=1,
            )
            store.append(block)
            head = block.header
        built = time.perf_counter() - started
        click.echo(
            f"stored {store.height} blocks, {store.log_size} signed txs in {data_dir} ({built:.2f} s)"
        )
        report = verify_store(store, check_signatures=True, anchor=genesis.hash)
    if not report.ok:
        raise click.ClickException(
            f"verification failed at block {report.bad_height}: {report.problem}"
        )
    click.echo(
        f"verified: {report.height} blocks linked to genesis, {report.txs_checked} txs, "
        f"{report.signatures_checked} signatures; head {report.head_hash}"
    )
    click.echo(f"re-check any time with: grantchain verify --data-dir {data_dir} --signatures")
