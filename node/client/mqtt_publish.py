"""Publishing txs to the nodes' MQTT bridge so that the broker's acknowledgement means
what the bridge promises.

The bridge's promise (``node.api.mqtt``): a message the broker acknowledged at QoS 1 is
committed exactly once. A PUBACK can still say the message went nowhere: reason code
0x10, *No matching subscribers*, is the broker accepting and dropping a message that no
node's bridge was subscribed to take. That happens right after a broker restart:
Mosquitto 2.0 does not restore shared subscriptions (``$share/...``) from its
persistence file, so until the first bridge has reconnected and subscribed again each
message published is acknowledged with 0x10 and dropped (the persistent sessions keep
what was queued for them before the restart). aiomqtt (2.5) does not report PUBACK
reason codes; ``AckedPublisher.publish`` does, raising ``NotDelivered`` for 0x10 and for
any error code, and the caller publishes again (safe: txs are deduplicated by id).

    async with aiomqtt.Client(host, port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        publisher = AckedPublisher(client)
        await publisher.publish("grantchain/tx/org2", msgpack.packb(tx_bytes))
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as paho_mqtt
from paho.mqtt.properties import Properties

NO_MATCHING_SUBSCRIBERS = 0x10
"""PUBACK reason code: accepted, but no subscriber took it (MQTT v5 §3.4.2.1)."""
PUBACK_WAIT_S = 10.0


class NotDelivered(aiomqtt.MqttError):
    """The broker acknowledged the message without passing it on: publish it again."""

    def __init__(self, reason_code: int) -> None:
        self.reason_code = reason_code
        what = "no node is subscribed" if reason_code == NO_MATCHING_SUBSCRIBERS else "refused"
        super().__init__(f"PUBACK reason code 0x{reason_code:02x}: {what}; publish it again")


class AckedPublisher:
    """QoS 1 publishes on a connected aiomqtt client (MQTT v5) that return only once the
    broker acknowledged the message with success (0x00)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._client = client
        self._paho = client._client  # aiomqtt exposes no PUBACK reason code: see above
        self._waiting: dict[int, asyncio.Future[int]] = {}
        inner: Callable[..., None] | None = self._paho.on_publish

        def on_publish(c: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
            fut = self._waiting.pop(mid, None)
            if fut is not None and not fut.done():
                fut.set_result(int(getattr(reason, "value", reason)))
            if inner is not None:
                inner(c, userdata, mid, reason, props)

        self._paho.on_publish = on_publish

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        properties: Properties | None = None,
        timeout_s: float = PUBACK_WAIT_S,
    ) -> None:
        """Publish at QoS 1 and wait for the PUBACK: ``NotDelivered`` when its reason code
        is not success, ``aiomqtt.MqttError`` when the connection ends or none comes."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        info = self._paho.publish(topic, payload, qos=1, properties=properties)
        if info.rc != paho_mqtt.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
        self._waiting[info.mid] = fut  # the PUBACK is read on this loop, after this returns
        gone = self._client._disconnected
        either: list[asyncio.Future[Any]] = [fut, gone]
        try:
            await asyncio.wait(either, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._waiting.pop(info.mid, None)
        if not fut.done():
            raise aiomqtt.MqttError(
                "the connection ended before the broker acknowledged"
                if gone.done()
                else f"no PUBACK within {timeout_s} s"
            )
        if fut.result() != 0:
            raise NotDelivered(fut.result())
