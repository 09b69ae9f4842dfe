"""``grantchain query ...``: the grant and audit queries, blocks, proofs and status."""

from __future__ import annotations

from typing import Any

import click
import orjson

from node.cli import reader
from node.cli.tx import emit
from node.client import RpcError, StreamError

_URL = click.option("--url", required=True, help="A node's RPC URL.")


def URL(f: Any) -> Any:
    """``--url`` and who reads (``node.cli.reader``: --key, --consortium, --ca-cert)."""
    return _URL(reader.options(f))


JSON = click.option("--json", "as_json", is_flag=True)


def _run(url: str, path: str, as_json: bool, **params: Any) -> None:
    try:
        with reader.read_as().client(url) as client:
            emit(client.query(path, **params), as_json)
    except RpcError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("query")
def command() -> None:
    """Ask a node: access checks, grants, history, lineage, violations, reports, blocks."""


@command.command("status")
@URL
@JSON
def status(url: str, as_json: bool) -> None:
    """Role, leader, term, height and head hash of a node."""
    _run(url, "/v1/status", as_json)


@command.command("access")
@click.option("--org", required=True)
@click.option("--dataset", required=True)
@click.option("--purpose", required=True)
@click.option("--at-ms", type=int)
@click.option("--identity")
@click.option("--version", type=int)
@URL
@JSON
def access(
    org: str,
    dataset: str,
    purpose: str,
    at_ms: int | None,
    identity: str | None,
    version: int | None,
    url: str,
    as_json: bool,
) -> None:
    """May ORG (or IDENTITY) use DATASET for PURPOSE (now, or at AT_MS), under which grant?"""
    _run(
        url,
        "/v1/access",
        as_json,
        org=org,
        dataset=dataset,
        purpose=purpose,
        at_ms=at_ms,
        identity=identity,
        version=version,
    )


@command.command("grants")
@click.option("--dataset")
@click.option("--grantee")
@click.option("--at-ms", type=int, help="Only grants in force then.")
@URL
@JSON
def grants(
    dataset: str | None, grantee: str | None, at_ms: int | None, url: str, as_json: bool
) -> None:
    """Grants of a dataset, or to a grantee organisation."""
    if (dataset is None) == (grantee is None):
        raise click.UsageError("give exactly one of --dataset or --grantee")
    _run(url, "/v1/grants", as_json, dataset=dataset, grantee=grantee, at_ms=at_ms)


@command.command("dataset")
@click.argument("dataset_id")
@URL
@JSON
def dataset(dataset_id: str, url: str, as_json: bool) -> None:
    """A dataset and its versions."""
    _run(url, f"/v1/datasets/{dataset_id}", as_json)


@command.command("history")
@click.argument("dataset_id")
@URL
@JSON
def history(dataset_id: str, url: str, as_json: bool) -> None:
    """Every event about a dataset."""
    _run(url, f"/v1/datasets/{dataset_id}/history", as_json)


@command.command("lineage")
@click.argument("model_name")
@click.argument("model_version", type=int)
@URL
@JSON
def lineage(model_name: str, model_version: int, url: str, as_json: bool) -> None:
    """A model's lineage: runs, datasets and the grants that allowed their use."""
    _run(url, f"/v1/models/{model_name}/{model_version}/lineage", as_json)


@command.command("violations")
@click.option("--from-ms", type=int, default=0)
@click.option("--until-ms", type=int)
@URL
@JSON
def violations(from_ms: int, until_ms: int | None, url: str, as_json: bool) -> None:
    """Audit events recorded as no_grant in a time range."""
    _run(url, "/v1/violations", as_json, from_ms=from_ms, until_ms=until_ms)


@command.command("report")
@click.option("--from-ms", type=int, default=0)
@click.option("--until-ms", type=int)
@URL
@JSON
def report(from_ms: int, until_ms: int | None, url: str, as_json: bool) -> None:
    """Counts by organisation, dataset, purpose and result in a time range."""
    _run(url, "/v1/audit/report", as_json, from_ms=from_ms, until_ms=until_ms)


@command.command("block")
@click.argument("height", type=int)
@URL
@JSON
def block(height: int, url: str, as_json: bool) -> None:
    """A block's header, tx ids and results, and its certificate."""
    _run(url, f"/v1/blocks/{height}", as_json)


@command.command("consistency")
@click.option("--from", "first", type=int, required=True)
@click.option("--to", "second", type=int)
@URL
@JSON
def consistency(first: int, second: int | None, url: str, as_json: bool) -> None:
    """An RFC 9162 consistency proof between two log sizes."""
    params: dict[str, Any] = {"from": first}
    if second is not None:
        params["to"] = second
    _run(url, "/v1/proofs/consistency", as_json, **params)


@command.command("kinds")
@URL
@JSON
def kinds(url: str, as_json: bool) -> None:
    """Every tx kind the node knows, with a description."""
    _run(url, "/v1/kinds", as_json)


@command.command("stream")
@click.option("--from-height", type=click.IntRange(min=1), help="First height (default: next).")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many blocks.")
@click.option(
    "--url",
    "urls",
    required=True,
    multiple=True,
    help="A node's RPC URL; repeat it to resume on another node when one stops.",
)
@reader.options
def stream(from_height: int | None, count: int | None, urls: tuple[str, ...]) -> None:
    """Follow committed blocks: one JSON line per block, in height order, resumed across
    nodes without a gap or a repeat."""
    try:
        with reader.read_as().client(list(urls)) as client:
            for n, doc in enumerate(client.stream(from_height), 1):
                click.echo(orjson.dumps(doc))
                if count is not None and n >= count:
                    break
    except (RpcError, StreamError) as exc:
        raise click.ClickException(str(exc)) from None
