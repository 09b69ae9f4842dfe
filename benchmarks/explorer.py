"""``grantchain bench explorer``: how long each page of the audit explorer (``/ui/``)
waits for the node with ``--txs`` (default 1,000,000) txs in the chain.

The chain is made with ``bench acl``'s mixed traffic (``acl.samples.traffic``: access
events with ~5% violations, inference batches, training runs, evaluations, grants and
revocations, dataset versions, model registrations), applied and appended through the
node's commit path (``benchmarks.acl.run_node``) into an LMDB block store; no consensus
and no signatures (neither is read by a page). The node's real RPC app
(``node.api.routes.make_app``) then serves it over HTTP on loopback, and each page's
requests (those ``node/api/ui/app.js`` makes to render it, in its order) are timed from
an HTTP client in the same process: the figure is what the page waits for, wall clock,
over ``--repeat`` loads (median and worst; ``REPORT_REPEAT`` for the report).

Deep pages (a cursor in the middle or at the old end of the chain) are timed beside the
first pages: a cursor is the last key returned, so a page should cost the same wherever
it starts. The baseline, measured in the same run: ``GET /v1/status``, the cheapest
request the node answers. The target: every page under ``TARGET_MS``.

The audit report (``/v1/audit/report``) is counted from the audit counters the state
keeps (``acl.audit_counters``: at most two seeks per label, whatever the range holds) and
lists the first violations and events of its range: it is timed for the whole chain (no
seek: every label lies inside), the last hour of block time, and the middle half of the
chain (two seeks per label: both ends cut blocks off), under the same target as the
pages.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import click
from aiohttp import ClientSession, web

from acl import keys as K
from benchmarks.acl import prepare, run_node
from chain.block import Block
from node.api.routes import make_app
from node.api.service import NodeService
from node.runtime.metrics import NodeMetrics
from storage.lmdb_store import LmdbBlockStore

TARGET_MS = 200.0
TXS_PER_BLOCK = 1_000


class StoreNode:
    """What the routes read of a node, over a block store alone (no consensus)."""

    def __init__(self, store: LmdbBlockStore, chain_id: str) -> None:
        self._store = store
        self._chain_id = chain_id
        self._metrics = NodeMetrics()

    @property
    def store(self) -> LmdbBlockStore:
        return self._store

    @property
    def metrics(self) -> NodeMetrics:
        return self._metrics

    def status(self) -> dict[str, Any]:
        head = self._store.head()
        return {
            "node_id": "bench",
            "chain_id": self._chain_id,
            "consensus": "raft",
            "role": "leader",
            "leader": "bench",
            "term": 1,
            "commit_index": self._store.height,
            "height": self._store.height,
            "head_hash": head.hash.hex() if head else "",
            "log_size": self._store.log_size,
            "mempool_txs": 0,
            "kernels": "reference",
            "kernels_warmup_s": 0.0,
            "consensus_inbox_dropped": 0,
        }

    def block(self, height: int) -> Block | None:
        return self._store.block(height)

    def is_queued(self, tx_id: bytes) -> bool:
        return False


def _pick(state: Any) -> dict[str, Any]:
    """Ids the pages are opened on: a dataset, its owner, a model, a violation's time."""
    from chain import codec

    ds = codec.decode(next(iter(state.range(K.DATASET, K.VERSION)))[1])
    model = None
    for key, raw in state.range(K.MODEL, K.MODEL_USE):
        if key[-4:] != b"\x00\x00\x00\x00":
            model = codec.decode(raw)
            break
    return {"dataset": ds["dataset_id"], "org": ds["owner_org"], "model": model}


def _pages(store: LmdbBlockStore, picks: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(page, its requests in the order the page makes them)."""
    head = store.height
    mid = head // 2
    block = store.block(mid)
    assert block is not None
    tx_id = block.tx_ids()[len(block.txs) // 2].hex()
    first_ms = (store.header(1) or block.header).timestamp_ms
    last_ms = (store.head() or block.header).timestamp_ms
    mid_ms = (first_ms + last_ms) // 2
    deep_violation = K.time_position(mid_ms, 0, 0).hex()
    ds = picks["dataset"]
    org = picks["org"]
    pages: list[tuple[str, list[str]]] = [
        ("dashboard", ["/v1/explore/dashboard"]),
        ("blocks", ["/v1/explore/blocks?limit=25"]),
        ("blocks, old end", ["/v1/explore/blocks?limit=25&cursor=30"]),
        (f"block {mid} ({len(block.txs)} txs)", [f"/v1/explore/blocks/{mid}/txs?limit=25"]),
        (
            "block, last tx page",
            [f"/v1/explore/blocks/{mid}/txs?limit=25&cursor={max(0, len(block.txs) - 25)}"],
        ),
        ("tx", [f"/v1/explore/txs/{tx_id}"]),
        ("datasets", ["/v1/explore/datasets?limit=25"]),
        ("datasets, deep cursor", ["/v1/explore/datasets?limit=25&cursor=" + "80" * 32]),
        (
            "dataset",
            [
                f"/v1/explore/datasets/{ds}",
                f"/v1/explore/datasets/{ds}/versions?limit=25",
                f"/v1/explore/grants?dataset={ds}&limit=25",
                f"/v1/explore/datasets/{ds}/history?limit=25",
            ],
        ),
        (
            "grants by grantee",
            ["/v1/explore/consortium", f"/v1/explore/grants?grantee={org}&limit=25"],
        ),
        ("violations (all time)", ["/v1/explore/violations?from_ms=0&limit=25"]),
        (
            "violations, mid-chain cursor",
            [f"/v1/explore/violations?from_ms=0&limit=25&cursor={deep_violation}"],
        ),
        ("models", ["/v1/explore/models?limit=25"]),
        ("search (dataset)", [f"/v1/explore/search?q={ds}"]),
        ("search (tx id)", [f"/v1/explore/search?q={tx_id}"]),
    ]
    m = picks["model"]
    if m is not None:
        base = f"/v1/explore/models/{m['model_name']}/{m['model_version']}"
        pages.append(("model lineage", [f"{base}/lineage", f"{base}/uses?limit=25"]))
    span = last_ms - first_ms
    quarter, three_quarters = first_ms + span // 4, first_ms + 3 * span // 4
    pages.append(("report, last hour", [f"/v1/audit/report?from_ms={last_ms - 3_600_000}"]))
    pages.append(("report, whole chain", ["/v1/audit/report?from_ms=0"]))
    pages.append(
        (
            "report, middle half",
            [f"/v1/audit/report?from_ms={quarter}&until_ms={three_quarters}"],
        )
    )
    return pages


async def _time(session: ClientSession, base: str, paths: Sequence[str]) -> float:
    t0 = time.perf_counter()
    for path in paths:
        async with session.get(base + path) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{path}: {resp.status} {await resp.text()}")
    return (time.perf_counter() - t0) * 1000


async def _measure(
    store: LmdbBlockStore, chain_id: str, repeat: int
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    app = make_app(cast(NodeService, StoreNode(store, chain_id)))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    with store.snapshot() as view:
        picks = _pick(view)
    rows = []
    try:
        async with ClientSession() as session:
            status = [await _time(session, base, ["/v1/status"]) for _ in range(repeat)]
            for name, paths in _pages(store, picks):
                times = [await _time(session, base, paths) for _ in range(repeat)]
                rows.append(
                    {
                        "page": name,
                        "requests": list(paths),
                        "median_ms": round(statistics.median(times), 2),
                        "max_ms": round(max(times), 2),
                        "paginated": not name.startswith("report"),
                    }
                )
    finally:
        await runner.cleanup()
    baseline = {"median_ms": round(statistics.median(status), 2), "max_ms": round(max(status), 2)}
    return rows, baseline


@click.command("explorer")
@click.option("--txs", "n_txs", default=1_000_000, show_default=True, help="Txs in the chain.")
@click.option("--repeat", default=20, show_default=True, help="Loads of each page.")
@click.option("--seed", default=1, show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where to build the chain (default: a temporary directory, removed after); "
    "a chain already there (DIR/store) is reused as it is.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def command(n_txs: int, repeat: int, seed: int, data_dir: Path | None, as_json: bool) -> None:
    """Each explorer page's wait on a chain of --txs txs, against GET /v1/status."""
    blocks = max(1, n_txs // TXS_PER_BLOCK)
    with tempfile.TemporaryDirectory(prefix="bench-explorer-") as tmp:
        path = (data_dir or Path(tmp)) / "store"
        t0 = t1 = t2 = time.perf_counter()
        if not path.exists():
            work = prepare(seed, blocks, TXS_PER_BLOCK, "mixed")
            t1 = time.perf_counter()
            run_node(work, path, mode="snapshot")
            t2 = time.perf_counter()
        with LmdbBlockStore.open(path) as store:
            txs = store.log_size
            height = store.height
            chain_id = (store.state().get(K.META_CHAIN) or b"bench").decode()
            rows, baseline = asyncio.run(_measure(store, chain_id, repeat))
    worst_paginated = max(r["max_ms"] for r in rows if r["paginated"])
    worst = max(r["max_ms"] for r in rows)
    doc = {
        "txs": txs,
        "blocks": height,
        "prepare_s": round(t1 - t0, 1),
        "build_s": round(t2 - t1, 1),
        "repeat": repeat,
        "pages": rows,
        "baseline_status": baseline,
        "target_ms": TARGET_MS,
        "paginated_pages_max_ms": worst_paginated,
        "pages_max_ms": worst,
        "target_met": worst < TARGET_MS,
    }
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(
        f"{txs:,} txs in {doc['blocks']} blocks (made in {doc['prepare_s']} s, "
        f"applied and stored in {doc['build_s']} s); each page loaded {repeat} times"
    )
    click.echo(f"{'page':<34} {'median ms':>10} {'max ms':>9}  requests")
    for r in rows:
        click.echo(
            f"{r['page']:<34} {r['median_ms']:>10.1f} {r['max_ms']:>9.1f}  {len(r['requests'])}"
        )
    click.echo(
        f"baseline GET /v1/status: median {baseline['median_ms']} ms, max {baseline['max_ms']} ms"
    )
    click.echo(
        f"every page, the reports included: worst {worst:.1f} ms "
        f"(paginated pages {worst_paginated:.1f} ms) against the {TARGET_MS:.0f} ms target: "
        + ("met" if doc["target_met"] else "NOT met")
    )
