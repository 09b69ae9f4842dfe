"""``grantchain bench mqtt``: committed signed txs/s through a real Mosquitto against the
HTTP batch path, on one 3-node cluster in the same run, and publish-to-answer latency
at 1,000 txs/s.

Three runs on one fresh cluster whose nodes all run the MQTT bridge:

1. **HTTP baseline**: ``run_load`` (``POST /v1/txs?wait=commit``, msgpack batches every
   50 ms, to the leader), offered ``--rate`` txs/s for ``--duration`` s.
2. **MQTT**: the same number of other pre-signed txs, the same batch size and period,
   published at QoS 1 to ``<prefix>/tx/<org>``; each message is answered on its
   Response Topic once its txs are committed (``node.api.mqtt``). The shared
   subscription spreads messages over the three bridges; followers forward to the
   leader. Ratio = MQTT committed txs/s / HTTP committed txs/s.
3. **Latency** at 1,000 txs/s: publish to answer (with receipts), p50 and p99, in
   messages of ``--latency-batch`` txs (default 50 a message every 50 ms, the shape of
   the HTTP latency run of ``bench e2e``; ``--latency-batch 1`` is one device message a
   tx, 1,000 messages/s, which costs the bridges ~1 ms of CPU each).
4. **Latency baseline**: the HTTP path at 1,000 txs/s in 50 ms batches (``bench e2e``'s
   latency run), just before step 3, so that the MQTT latency can be read against
   what the same machine did at the same moment: this machine is shared and noisy, and
   an absolute p50 alone says as much about the neighbours as about the bridge.

Both throughput paths skip receipts in their answers (HTTP ``receipts=false``, MQTT the
``receipts: false`` user property), so they do the same work; the latency run asks for
receipts, as a device would (the receipt needs the block's certificate).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import tempfile
import time
from pathlib import Path

import click
import httpx

from node.cluster.broker import start_broker
from node.cluster.load import LoadReport, leader_first, presign, run_load, start_for_load
from node.cluster.local import (
    bench_consortium,
    stop_node,
)
from node.cluster.mqtt_load import run_mqtt_load
from node.runtime import gc_policy
from node.runtime.config import MqttConfig, load_config, write_config

PREFIX = "bench"
LOW_RATE_PER_S = 1_000.0
RATIO_TARGET = 0.8
P50_TARGET_MS = 30.0
CONNECT_TIMEOUT_S = 30.0


def _summary(r: LoadReport) -> dict[str, float]:
    return {
        "committed": r.committed,
        "submitted": r.submitted,
        "failed_batches": r.failed_batches,
        "committed_txs_per_s": round(r.committed / r.duration_s, 1) if r.duration_s else 0.0,
        "latency_ms_p50": round(r.percentile_ms(50), 2),
        "latency_ms_p99": round(r.percentile_ms(99), 2),
    }


def _bridges_connected(urls: list[str], expected: int) -> None:
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while time.monotonic() < deadline:
        up = 0.0
        for url in urls:
            for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
                if line.startswith("grantchain_mqtt_connected "):
                    up += float(line.split()[1])
        if up >= expected:
            return
        time.sleep(0.1)  # polling other processes' state, with a deadline
    raise click.ClickException(f"the MQTT bridges did not connect within {CONNECT_TIMEOUT_S} s")


@click.command("mqtt")
@click.option("--duration", default=8.0, show_default=True, help="Seconds of each throughput run.")
@click.option("--rate", default=25_000.0, show_default=True, help="Offered txs/s of both runs.")
@click.option(
    "--latency-batch",
    type=click.IntRange(1, 1000),
    default=50,
    show_default=True,
    help="Txs per message in the 1,000 txs/s latency run.",
)
@click.option("--json", "as_json", is_flag=True)
def command(duration: float, rate: float, latency_batch: int, as_json: bool) -> None:
    """MQTT ingest vs the HTTP batch path (committed txs/s), and publish-to-answer latency."""
    gc_policy.tune()
    nodes = 3
    with tempfile.TemporaryDirectory(prefix="grantchain-bench-mqtt-") as tmp:
        broker = start_broker(Path(tmp) / "mosquitto")
        manifest = bench_consortium(Path(tmp) / "c", nodes, "bench-mqtt")
        mqtt = MqttConfig(enabled=True, port=broker.port, topic_prefix=PREFIX)
        for n in manifest.nodes:
            write_config(dataclasses.replace(load_config(n.config), mqtt=mqtt), n.config)
        try:
            urls, dataset_id = start_for_load(manifest, lambda m: click.echo(m, err=True))
            _bridges_connected(urls, nodes)
            publish = functools.partial(run_mqtt_load, broker.host, broker.port, PREFIX, "org2")
            n_high = int(rate * duration)
            n_low = int(LOW_RATE_PER_S * max(3.0, duration / 2))
            click.echo(f"signing {2 * n_high + n_low:,} txs ...", err=True)
            # Each run's txs are stamped from when it starts: sign them just before it.
            http_txs = presign(manifest, dataset_id, n_high, rate_per_s=rate)
            click.echo(f"HTTP batch path: offering {rate:,.0f} txs/s ...", err=True)
            http = asyncio.run(run_load(leader_first(urls), http_txs, rate_per_s=rate))
            mqtt_txs = presign(manifest, dataset_id, n_high, rate_per_s=rate)
            click.echo(f"MQTT: offering {rate:,.0f} txs/s ...", err=True)
            mq = asyncio.run(publish(mqtt_txs, rate_per_s=rate, receipts=False))
            base_txs = presign(manifest, dataset_id, n_low, rate_per_s=LOW_RATE_PER_S)
            click.echo("HTTP latency baseline: 1,000 txs/s ...", err=True)
            base = asyncio.run(run_load(leader_first(urls), base_txs, rate_per_s=LOW_RATE_PER_S))
            low_txs = presign(manifest, dataset_id, n_low, rate_per_s=LOW_RATE_PER_S)
            click.echo(f"MQTT latency: 1,000 txs/s, {latency_batch} a message ...", err=True)
            low = asyncio.run(publish(low_txs, rate_per_s=LOW_RATE_PER_S, batch=latency_batch))
        finally:
            for n in manifest.nodes:
                stop_node(n)
            broker.stop()
    h, m, lo, b = _summary(http), _summary(mq), _summary(low), _summary(base)
    ratio = (
        round(m["committed_txs_per_s"] / h["committed_txs_per_s"], 3)
        if h["committed_txs_per_s"]
        else 0.0
    )
    result = {
        "nodes": nodes,
        "offered_txs_per_s": rate,
        "http_committed_txs_per_s": h["committed_txs_per_s"],
        "mqtt_committed_txs_per_s": m["committed_txs_per_s"],
        "mqtt_vs_http": ratio,
        "mqtt_vs_http_target": RATIO_TARGET,
        "http": h,
        "mqtt": m,
        "latency_ms_p50_at_1000": lo["latency_ms_p50"],
        "latency_ms_p99_at_1000": lo["latency_ms_p99"],
        "latency_batch_txs": latency_batch,
        "latency_run": lo,
        "http_latency_ms_p50_at_1000": b["latency_ms_p50"],
        "http_latency_run": b,
        "latency_p50_vs_http": (
            round(lo["latency_ms_p50"] / b["latency_ms_p50"], 2) if b["latency_ms_p50"] else 0.0
        ),
        "p50_target_ms": P50_TARGET_MS,
    }
    click.echo(
        f"HTTP batch path {h['committed_txs_per_s']:,} committed txs/s, MQTT "
        f"{m['committed_txs_per_s']:,} ({ratio}x; target {RATIO_TARGET}x)\n"
        f"publish to answer at 1,000 txs/s: p50 {lo['latency_ms_p50']} ms, "
        f"p99 {lo['latency_ms_p99']} ms (target p50 <= {P50_TARGET_MS:.0f} ms); the HTTP "
        f"path in the same run: p50 {b['latency_ms_p50']} ms, p99 {b['latency_ms_p99']} ms"
    )
    if as_json:
        click.echo(json.dumps(result))
