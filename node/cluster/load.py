"""The load generator: pre-signed access events from several app identities, submitted
concurrently at a fixed rate, through leader changes.

Signing happens before the measured window (in a process pool). Each batch is posted
with ``?wait=commit`` and counts as acknowledged only when the node answers that its txs
are committed; a batch that fails (a node down, 503 while there is no leader, a timeout)
is retried on the next node — resubmitting is safe, since a tx id is applied at most
once and an already committed tx is reported as such.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx
import msgpack
import orjson

from acl import kinds as k
from acl import payloads as pl
from chain.tx import sign_tx
from node.client import Client, RequestSigner
from node.client.rpc import tls_verify
from node.cluster.consortium import Manifest
from node.cluster.local import start_node, wait_for_leader, warm_kernels
from node.cluster.scenario import signer_for
from node.runtime.config import load_config
from node.runtime.keys import load_private_key

YEAR_MS = 365 * 24 * 3600 * 1000
BATCH_PERIOD_S = 0.05
"""One request per 50 ms: fewer, larger requests cost the nodes less per tx (measured)."""
IN_FLIGHT_MAX = 256
"""Requests in flight at most (and connections)."""
IN_FLIGHT_TXS_MAX = 50_000
"""Txs in flight at most: half a default mempool. Past the cluster's capacity the
generator waits for answers instead of flooding the leader with txs it must shed."""
REQUEST_TIMEOUT_S = 15.0
SUBMIT_PARAMS = {"wait": "commit", "timeout_ms": "10000", "receipts": "false"}
SUBMIT_TARGET = "/v1/txs?" + urllib.parse.urlencode(SUBMIT_PARAMS)


@dataclass(frozen=True)
class RpcAccess:
    """How the load reaches the nodes: TLS verified with ``ca_cert`` (``https://``
    URLs), and each request signed by ``signer`` (a node with ``rpc_auth = "members"``
    checks a signature wherever one is presented, so this is the authenticated path)."""

    ca_cert: Path | None = None
    signer: RequestSigner | None = None

    def ssl(self) -> ssl.SSLContext | bool:
        return tls_verify(self.ca_cert) if self.ca_cert is not None else True

    def headers(self, method: str, target: str, body: bytes) -> dict[str, str]:
        if self.signer is None:
            return {}
        return {"Authorization": self.signer.header(method, target, body)}


def access_for(manifest: Manifest) -> RpcAccess:
    """The consortium's CA bundle where its nodes serve TLS, and a signer (the first
    organisation's app) where they keep reads for members."""
    ca_cert = manifest.ca_cert if any(n.rpc_tls for n in manifest.nodes) else None
    members = any(load_config(n.config).rpc_auth == "members" for n in manifest.nodes)
    signer = None
    if members:
        app = next(i for i in manifest.identities if i.role == "app")
        signer = RequestSigner.from_key_file(app.key, chain_id=manifest.chain_id)
    return RpcAccess(ca_cert, signer)


RETRY_STATUSES = frozenset({"pending", "no_leader", "mempool_full", "accepted", "duplicate"})


@dataclass
class LoadReport:
    submitted: int = 0
    committed: int = 0
    failed_batches: int = 0
    retried_batches: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    committed_ids: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(q / 100 * len(xs)))]


def start_for_load(manifest: Manifest, say: Callable[[str], None]) -> tuple[list[str], str]:
    """Warm the kernels, start every node, wait for a leader and prepare a dataset the
    load may use: the nodes' RPC URLs and the dataset id (what every benchmark starts with)."""
    warm_kernels(say)
    for n in manifest.nodes:
        start_node(n, die_with_parent=True)
    wait_for_leader(manifest)
    urls = [n.rpc_url for n in manifest.nodes]
    access = access_for(manifest)
    with Client(urls, ca_cert=access.ca_cert, signer=access.signer) as client:
        return urls, prepare_dataset(manifest, client)


def prepare_dataset(manifest: Manifest, client: Client) -> str:
    """Register a dataset of the first organisation and grant every other one training
    use, so that the load's access events are all allowed."""
    orgs = sorted({n.org_id for n in manifest.nodes})
    owner = signer_for(manifest, orgs[0], "admin")
    dataset_id = f"{orgs[0]}/load-{time.time_ns()}"
    now = time.time_ns() // 1_000_000
    txs = [
        owner.sign(
            k.DATASET_REGISTER,
            pl.dataset_register(
                dataset_id,
                content_hash=hashlib.sha256(dataset_id.encode()).digest(),
                location="s3://load/",
                sensitivity="internal",
                licence="CC-BY-4.0",
            ),
        )
    ]
    client.submit(txs, wait=True)
    grants = [
        owner.sign(
            k.GRANT_ISSUE,
            pl.grant_issue(
                dataset_id,
                grantee_org=org,
                purposes=["training"],
                valid_from_ms=now - 60_000,
                valid_until_ms=now + YEAR_MS,
            ),
        )
        for org in orgs[1:]
    ]
    if grants:
        client.submit(grants, wait=True)
    return dataset_id


def _sign_chunk(args: tuple[str, str, str, int, int, int, int, int, float]) -> list[bytes]:
    key_path, chain_id, dataset_id, start, count, now_ms, app, apps, rate_per_s = args
    key = load_private_key(key_path)
    out = []
    for i in range(start, start + count):
        payload = pl.data_access(
            dataset_id,
            purpose="training",
            access_type="read",
            record_count=1 + i % 1000,
            run_id=f"load-{i // 1000}",
        )
        out.append(
            sign_tx(
                key,
                chain_id=chain_id,
                kind=k.AUDIT_DATA_ACCESS,
                nonce=now_ms * 1000 + i,
                # The event's own time: the i-th event of this app is the (i * apps + app)-th
                # of the load, which is offered at rate_per_s.
                timestamp_ms=now_ms + int((i * apps + app) * 1000 / rate_per_s),
                payload=payload,
            ).to_bytes()
        )
    return out


def presign(
    manifest: Manifest, dataset_id: str, n: int, *, rate_per_s: float = 1000.0
) -> list[bytes]:
    """``n`` signed access events, round-robin over the organisations' app identities,
    stamped as events that happen at ``rate_per_s`` from now on: each one no later than
    ``run_load`` at that rate submits it.

    Distinct event times matter beyond realism: the replay marker of a tx is keyed by its
    timestamp first (``acl.keys.tx_key``), so a block's markers land on the right edge of
    the B-tree. Thousands of txs with one timestamp would scatter them over random pages,
    each insert rewriting a page (measured: ~1 KB written per tx instead of ~0.1 KB)."""
    if rate_per_s <= 0:
        raise ValueError("rate_per_s must be positive")
    apps = [i for i in manifest.identities if i.role == "app"]
    now_ms = time.time_ns() // 1_000_000
    per = -(-n // len(apps))
    chunk = 5_000
    jobs = [
        (
            str(app.key),
            manifest.chain_id,
            dataset_id,
            start,
            min(chunk, per - start),
            now_ms,
            a,
            len(apps),
            rate_per_s,
        )
        for a, app in enumerate(apps)
        for start in range(0, per, chunk)
    ]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        parts = list(pool.map(_sign_chunk, jobs))
    # Interleave the apps so every batch mixes senders.
    chunks_per_app = len(range(0, per, chunk))
    per_app = [
        [tx for part in parts[a * chunks_per_app : (a + 1) * chunks_per_app] for tx in part]
        for a in range(len(apps))
    ]
    mixed = [t for group in zip(*per_app, strict=False) for t in group]
    return mixed[:n]


def leader_first(urls: Sequence[str], access: RpcAccess | None = None) -> list[str]:
    """The URLs with the current leader's first (writes sent to a follower are forwarded,
    which costs a hop); unchanged when no node names a leader."""
    by_id: dict[str, str] = {}
    leader = None
    with httpx.Client(timeout=2.0, verify=(access or RpcAccess()).ssl()) as client:
        for url in urls:
            try:
                doc = client.get(url + "/v1/status").json()
            except (httpx.HTTPError, ValueError):
                continue
            by_id[doc["node_id"]] = url
            leader = leader or doc.get("leader")
    first = by_id.get(leader or "")
    return [first, *(u for u in urls if u != first)] if first else list(urls)


async def run_load(
    urls: Sequence[str],
    txs: Sequence[bytes],
    *,
    rate_per_s: float,
    out: Path | None = None,
    access: RpcAccess | None = None,
) -> LoadReport:
    """Submit ``txs`` at ``rate_per_s``, a batch every ``BATCH_PERIOD_S``, each to the
    first URL (the leader, see ``leader_first``) and to the next ones on failure; over
    TLS and signed as ``access`` says."""
    access = access or RpcAccess()
    report = LoadReport()
    batch = max(1, round(rate_per_s * BATCH_PERIOD_S))
    batches = [txs[i : i + batch] for i in range(0, len(txs), batch)]
    sem = asyncio.Semaphore(max(1, min(IN_FLIGHT_MAX, IN_FLIGHT_TXS_MAX // batch)))
    out_file = out.open("w") if out else None
    started = time.perf_counter()

    async def send(i: int, chunk: Sequence[bytes], client: aiohttp.ClientSession) -> None:
        todo = list(chunk)
        t0 = time.perf_counter()
        try:
            for attempt in range(len(urls) * 4):
                url = urls[attempt % len(urls)]
                body = msgpack.packb(todo, use_bin_type=True)
                headers = {
                    "content-type": "application/msgpack",
                    **access.headers("POST", SUBMIT_TARGET, body),
                }
                try:
                    async with client.post(url + SUBMIT_TARGET, data=body, headers=headers) as r:
                        status = r.status
                        doc = await r.json(loads=orjson.loads) if status in (200, 202) else None
                except (TimeoutError, aiohttp.ClientError, ValueError):
                    report.retried_batches += 1
                    await asyncio.sleep(0.05 * (attempt + 1))
                    continue
                if doc is not None:
                    results = doc["results"]
                    done = [d["tx_id"] for d in results if d.get("status") == "committed"]
                    latency = (time.perf_counter() - t0) * 1000
                    report.latencies_ms.extend([latency] * len(done))
                    report.committed += len(done)
                    report.committed_ids.extend(done)
                    if out_file:
                        out_file.write("".join(f"{x}\n" for x in done))
                    if len(done) == len(todo):
                        return
                    # Some are pending (e.g. a leader change): send those again.
                    pending = {d["tx_id"] for d in results if d.get("status") in RETRY_STATUSES}
                    if not pending:
                        report.failed_batches += 1
                        return
                    todo = [t for t, d in zip(todo, results, strict=True) if d["tx_id"] in pending]
                else:
                    await asyncio.sleep(0.05 * (attempt + 1))
                report.retried_batches += 1
            report.failed_batches += 1
        finally:
            sem.release()

    connector = aiohttp.TCPConnector(limit=IN_FLIGHT_MAX, ssl=access.ssl())
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        tasks = []
        for i, chunk in enumerate(batches):
            target = started + i * BATCH_PERIOD_S
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await sem.acquire()
            report.submitted += len(chunk)
            tasks.append(asyncio.create_task(send(i, chunk, client)))
        await asyncio.gather(*tasks)
    report.duration_s = time.perf_counter() - started
    if out_file:
        out_file.close()
    return report
