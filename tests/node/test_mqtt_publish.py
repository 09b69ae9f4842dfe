"""``node.client.mqtt_publish``: a publisher learns when the broker acknowledged a
message without passing it on (PUBACK 0x10), against a real Mosquitto."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from node.client.mqtt_publish import NO_MATCHING_SUBSCRIBERS, AckedPublisher, NotDelivered
from node.cluster.broker import Broker, start_broker

SHARED = "$share/nodes/pub/tx/+"


def _session(broker: Broker, identifier: str) -> aiomqtt.Client:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    return aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=props,
    )


def _publisher(broker: Broker) -> aiomqtt.Client:
    return aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5)


async def _taken_by_a_bridge(broker: Broker, publisher: AckedPublisher, payload: bytes) -> None:
    """A bridge's session subscribes (again), and a message published now reaches it."""
    async with _session(broker, "bridge") as bridge:
        await bridge.subscribe(SHARED, qos=1)
        await publisher.publish("pub/tx/org2", payload)
        async with asyncio.timeout(10):
            msg = await anext(aiter(bridge.messages))
        assert msg.payload == payload


def test_a_message_no_node_takes_is_not_delivered_and_one_taken_is(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "mosquitto")

    async def main() -> None:
        async with _publisher(broker) as client:
            publisher = AckedPublisher(client)
            with pytest.raises(NotDelivered) as refused:
                await publisher.publish("pub/tx/org2", b"nobody")
            assert refused.value.reason_code == NO_MATCHING_SUBSCRIBERS
            await _taken_by_a_bridge(broker, publisher, b"taken")

    try:
        asyncio.run(main())
    finally:
        broker.stop()


def test_after_a_broker_restart_nothing_is_delivered_until_a_bridge_subscribes_again(
    tmp_path: Path,
) -> None:
    """Mosquitto 2.0 keeps a persistent session's plain subscriptions across a restart but
    not its shared ones: the window in which a publisher must republish."""
    broker = start_broker(tmp_path / "mosquitto")

    async def main() -> None:
        async with _session(broker, "bridge") as bridge:
            await bridge.subscribe(SHARED, qos=1)
        broker.stop()  # SIGTERM: Mosquitto saves its sessions
        broker.start()
        async with _publisher(broker) as client:
            publisher = AckedPublisher(client)
            with pytest.raises(NotDelivered):
                await publisher.publish("pub/tx/org2", b"dropped")
            await _taken_by_a_bridge(broker, publisher, b"kept")

    try:
        asyncio.run(main())
    finally:
        broker.stop()


def test_a_connection_that_ends_before_the_puback_raises(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "mosquitto")
    raised: list[BaseException] = []

    async def main() -> None:
        async with _publisher(broker) as client:
            publisher = AckedPublisher(client)
            broker.stop(kill=True)
            with pytest.raises(aiomqtt.MqttError) as ended:
                await publisher.publish("pub/tx/org2", b"lost", timeout_s=5)
            raised.append(ended.value)

    try:
        asyncio.run(main())
    except aiomqtt.MqttError:
        pass  # leaving the client of a broker that is gone
    finally:
        broker.stop()
    assert raised and not isinstance(raised[0], NotDelivered), raised
