"""``grantchain verify-receipt RECEIPT.json --genesis GENESIS``: check a receipt offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from chain.genesis import Genesis, GenesisError
from chain.receipt import Receipt, ReceiptError, verify_receipt


@click.command("verify-receipt")
@click.argument("receipt_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--genesis",
    "genesis_file",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
def command(receipt_file: Path, genesis_file: Path, as_json: bool) -> None:
    """Check, with nothing but the genesis, that a tx is in the chain: its inclusion in the
    block and in the log since genesis, its result, and the block's certificate by the
    validators in force at its height (walking the receipt's certified validator-set
    history from the genesis set when governance changed it). Accepts a receipt, or a tx
    lookup / submit answer that holds one. Exit 0 valid, 1 invalid."""
    try:
        genesis = Genesis.from_json(genesis_file.read_text())
        doc = json.loads(receipt_file.read_text())
        if isinstance(doc, dict) and "receipt" in doc:
            doc = doc["receipt"]
        elif isinstance(doc, dict) and isinstance(doc.get("results"), list) and doc["results"]:
            doc = doc["results"][0].get("receipt")
        check = verify_receipt(Receipt.from_json(doc), genesis)
    except (GenesisError, ReceiptError, ValueError) as exc:
        if as_json:
            click.echo(json.dumps({"valid": False, "error": str(exc)}))
        else:
            click.echo(f"INVALID: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "valid": True,
                    "tx_id": check.tx_id,
                    "height": check.height,
                    "result": check.result,
                    "signers": list(check.signers),
                    "quorum": check.quorum,
                    "validators": list(check.validators),
                    "validator_set_changes": check.changes,
                }
            )
        )
    else:
        click.echo(
            f"valid: tx {check.tx_id} is at height {check.height} of chain {genesis.chain_id} "
            f"(result code {check.result}); certified by {', '.join(check.signers)} "
            f"({len(check.signers)} of {len(check.validators)}, quorum {check.quorum}"
            + (
                f"; validators in force {', '.join(check.validators)} after "
                f"{check.changes} validator-set changes since genesis"
                if check.changes
                else ""
            )
            + ")"
        )
