"""``grantchain tx submit|sign|get``: sign and submit any kind of tx, or look one up.

Payloads are JSON. JSON has no bytes, so a byte field (digests, grant ids, public keys)
is written as a string ``"hex:<64 hex digits>"``; the payload is checked against its
kind's schema before it is signed (``grantchain kinds`` lists the kinds).
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from acl.kinds import KINDS
from acl.payloads import PayloadError, build
from chain.tx import Tx
from node.cli import reader
from node.client import RpcError, TxSigner
from node.runtime.keys import KeyFileError

HEX_PREFIX = "hex:"


def decode_hex_fields(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(HEX_PREFIX):
        try:
            return bytes.fromhex(value[len(HEX_PREFIX) :])
        except ValueError:
            raise click.BadParameter(f"{value!r} is not hex after 'hex:'") from None
    if isinstance(value, list):
        return [decode_hex_fields(v) for v in value]
    if isinstance(value, dict):
        return {k: decode_hex_fields(v) for k, v in value.items()}
    return value


def read_payload(text: str) -> dict[str, Any]:
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    if not isinstance(doc, dict):
        raise click.BadParameter("a payload is a JSON object", param_hint="--payload")
    doc.pop("v", None)
    result: dict[str, Any] = decode_hex_fields(doc)
    return result


def emit(doc: Any, as_json: bool) -> None:
    click.echo(json.dumps(doc) if as_json else json.dumps(doc, indent=2))


def _tx_to_sign(f: Callable[..., None]) -> Callable[..., None]:
    """The KIND argument and the --payload, --key and --chain-id options of a tx to sign."""
    for option in reversed(
        (
            click.argument("kind", type=click.Choice(sorted(KINDS))),
            click.option(
                "--payload", required=True, help='JSON object, or @FILE. Bytes as "hex:...".'
            ),
            click.option(
                "--key",
                "key_file",
                required=True,
                type=click.Path(path_type=Path, exists=True),
                help="Signer's key file.",
            ),
            click.option("--chain-id", required=True),
        )
    ):
        f = option(f)
    return f


@click.group("tx")
def command() -> None:
    """Submit signed txs of any kind, look txs up."""


@command.command("submit")
@_tx_to_sign
@click.option(
    "--url", "urls", multiple=True, required=True, help="Node RPC URL (repeat to fail over)."
)
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Wait for commit and the receipt."
)
@click.option("--json", "as_json", is_flag=True)
@reader.CA_CERT
@reader.TLS_SERVER_NAME
def submit(
    kind: str,
    payload: str,
    key_file: Path,
    chain_id: str,
    urls: tuple[str, ...],
    wait: bool,
    as_json: bool,
    ca_cert: Path | None,
    tls_server_name: tuple[str, ...],
) -> None:
    """Sign a KIND tx with KEY and submit it; prints the node's answer (with the receipt).
    Submitting needs no signed request (the tx is signed); --ca-cert verifies an https node."""
    tx = _signed(kind, payload, key_file, chain_id)
    try:
        with reader.make_client(list(urls), ca_cert, tls_server_name) as client:
            doc = client.submit([tx], wait=wait)["results"][0]
    except RpcError as exc:
        raise click.ClickException(str(exc)) from None
    emit(doc, as_json)
    if doc.get("status") == "rejected":
        sys.exit(1)


def _signed(kind: str, payload: str, key_file: Path, chain_id: str) -> Tx:
    try:
        body = build(kind, **read_payload(payload))
        signer = TxSigner.from_key_file(key_file, chain_id=chain_id)
    except (PayloadError, KeyFileError) as exc:
        raise click.ClickException(str(exc)) from None
    return signer.sign(kind, body)


@command.command("sign")
@_tx_to_sign
def sign(kind: str, payload: str, key_file: Path, chain_id: str) -> None:
    """Sign a KIND tx with KEY and print it as a request body, {"tx": base64}: what
    POST /v1/txs and the MQTT topic <prefix>/tx/<org> take (e.g. piped to mosquitto_pub)."""
    tx = _signed(kind, payload, key_file, chain_id)
    click.echo(json.dumps({"tx": base64.b64encode(tx.to_bytes()).decode()}))


@command.command("get")
@click.argument("tx_id")
@click.option("--url", required=True)
@click.option("--json", "as_json", is_flag=True)
@reader.options
def get(tx_id: str, url: str, as_json: bool) -> None:
    """A committed tx: height, position, result and its receipt."""
    try:
        with reader.read_as().client(url) as client:
            emit(client.tx(tx_id), as_json)
    except RpcError as exc:
        raise click.ClickException(str(exc)) from None
