"""The MQTT load generator: pre-signed txs published to the broker at a fixed rate, each
message answered on the publisher's MQTT v5 Response Topic (``node.api.mqtt``).

The twin of ``node.cluster.load.run_load`` for ``grantchain bench mqtt``: the same
pre-signed txs, the same batch period and in-flight bound, the same report, so the two
paths are compared like for like. A message's latency runs from its publish call to
the node's answer with its committed results.

Publishes are QoS 1 and pipelined (the paho client may hold ``PUBLISH_INFLIGHT_MAX``
unacknowledged); each message carries its index as Correlation Data.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence

import aiomqtt
import msgpack
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from node.cluster.load import BATCH_PERIOD_S, IN_FLIGHT_MAX, IN_FLIGHT_TXS_MAX, LoadReport
from node.runtime.mqtt_tcp import no_delay

PUBLISH_INFLIGHT_MAX = 1024
ANSWER_TIMEOUT_S = 60.0
"""How long after the last publish the generator waits for the last answers."""


async def run_mqtt_load(
    host: str,
    port: int,
    prefix: str,
    org: str,
    txs: Sequence[bytes],
    *,
    rate_per_s: float,
    batch: int | None = None,
    receipts: bool = True,
) -> LoadReport:
    """Publish ``txs`` to ``<prefix>/tx/<org>`` at ``rate_per_s``: ``batch`` txs a message
    (default: what one ``BATCH_PERIOD_S`` holds, as the HTTP load does); without
    ``receipts`` the answers carry results only (the ``receipts: false`` user property)."""
    size = batch or max(1, round(rate_per_s * BATCH_PERIOD_S))
    messages = [txs[i : i + size] for i in range(0, len(txs), size)]
    period_s = size / rate_per_s
    report = LoadReport()
    sem = asyncio.Semaphore(max(1, min(IN_FLIGHT_MAX * 4, IN_FLIGHT_TXS_MAX // size)))
    sent_at: dict[int, float] = {}
    answered: set[int] = set()
    reply_topic = f"{prefix}/bench-replies/{uuid.uuid4().hex}"
    all_answered = asyncio.Event()
    async with aiomqtt.Client(
        host,
        port,
        protocol=aiomqtt.ProtocolVersion.V5,
        max_inflight_messages=PUBLISH_INFLIGHT_MAX,
        max_queued_outgoing_messages=0,
        timeout=30,
    ) as client:
        no_delay(client)
        client.pending_calls_threshold = PUBLISH_INFLIGHT_MAX * 4
        await client.subscribe(reply_topic, qos=1)

        async def receive() -> None:
            async for msg in client.messages:
                correlation = getattr(msg.properties, "CorrelationData", None)
                if correlation is None:
                    continue
                i = int.from_bytes(correlation, "big")
                if i in answered or i not in sent_at:
                    continue
                answered.add(i)
                sem.release()
                payload = msg.payload if isinstance(msg.payload, bytes) else b""
                results = json.loads(payload).get("results", [])
                done = [r["tx_id"] for r in results if r.get("status") == "committed"]
                latency_ms = (time.perf_counter() - sent_at[i]) * 1000
                report.latencies_ms.extend([latency_ms] * len(done))
                report.committed += len(done)
                report.committed_ids.extend(done)
                if len(done) != len(messages[i]):
                    report.failed_batches += 1
                if len(answered) == len(messages):
                    all_answered.set()

        receiver = asyncio.create_task(receive())
        started = time.perf_counter()
        publishes = []
        try:
            for i, chunk in enumerate(messages):
                delay = started + i * period_s - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)  # the offered rate
                await sem.acquire()
                props = Properties(PacketTypes.PUBLISH)
                props.ResponseTopic = reply_topic
                props.CorrelationData = i.to_bytes(8, "big")
                props.ContentType = "application/msgpack"
                if not receipts:
                    props.UserProperty = [("receipts", "false")]
                sent_at[i] = time.perf_counter()
                report.submitted += len(chunk)
                publishes.append(
                    asyncio.create_task(
                        client.publish(
                            f"{prefix}/tx/{org}",
                            msgpack.packb(list(chunk), use_bin_type=True),
                            qos=1,
                            properties=props,
                        )
                    )
                )
            await asyncio.gather(*publishes)
            try:
                async with asyncio.timeout(ANSWER_TIMEOUT_S):
                    await all_answered.wait()
            except TimeoutError:
                report.failed_batches += len(messages) - len(answered)
        finally:
            receiver.cancel()
        report.duration_s = time.perf_counter() - started
    return report
