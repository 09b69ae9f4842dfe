"""A bridge connection's life, without a broker: it says connected only once subscribed,
and its ``P/blocks`` publisher ends when the connection does, even when the cancellation
is swallowed by the publish it was awaiting (``node.runtime.waits``): a publisher that
went on would hold the bridge's task group, and the bridge, for ever."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from node.api import mqtt as bridge_module
from node.api.mqtt import MqttBridge
from node.runtime.config import MqttConfig
from node.runtime.metrics import NodeMetrics


class ChainThatGrows:
    """A node whose head moves on at every wait, every block proposed by ``node_id``."""

    def __init__(self, node_id: str) -> None:
        self.metrics = NodeMetrics()
        self.store = self
        self.height = 0
        self.proposer = node_id

    async def wait_for_height(self, height: int, timeout_s: float) -> int:
        await asyncio.sleep(0)
        self.height = max(self.height, height)
        return self.height

    def header(self, height: int) -> Any:
        return SimpleNamespace(proposer=self.proposer)

    def block(self, height: int) -> Any:
        return height


class SwallowingClient:
    """A client whose publish, like aiomqtt's (``asyncio.wait_for`` on Python 3.11), returns
    normally when it is cancelled as its acknowledgement arrives."""

    def __init__(self) -> None:
        self.published = 0
        self.swallowed = 0
        self.first = asyncio.Event()

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        self.published += 1
        self.first.set()
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed += 1  # the acknowledgement "arrived" in the same iteration


def test_the_block_publisher_ends_when_a_publish_swallowed_its_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bridge_module, "summary_json", lambda height: {"height": height})
    node = ChainThatGrows("n1")
    bridge = MqttBridge(node, MqttConfig(enabled=True), node_id="n1", chain_id="c")  # type: ignore[arg-type]
    client = SwallowingClient()

    async def main() -> None:
        task = asyncio.create_task(bridge._publish_blocks(client))  # type: ignore[arg-type]
        await client.first.wait()
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        if not done:  # it went on publishing: stop it (it lets a second cancel through)
            task.cancel()
            await asyncio.wait([task])
        assert done and task.cancelled(), "the publisher went on after its cancellation"

    asyncio.run(main())
    assert client.swallowed == 1


def test_the_bridge_says_connected_only_once_it_is_subscribed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``connected`` and ``grantchain_mqtt_connected`` mean "taking messages": a message
    published before the broker has the subscription is dropped (PUBACK 0x10), so a
    caller that publishes once the bridge says connected must never be too early."""
    node = ChainThatGrows("n1")
    bridge = MqttBridge(node, MqttConfig(enabled=True), node_id="n1", chain_id="c")  # type: ignore[arg-type]
    seen: list[tuple[str, bool, float]] = []

    def state(what: str) -> None:
        gauge = node.metrics.registry.get_sample_value("grantchain_mqtt_connected") or 0.0
        seen.append((what, bridge.connected.is_set(), gauge))

    class Client:
        async def __aenter__(self) -> Client:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        async def subscribe(self, topic: str, qos: int) -> None:
            state("subscribe")

    async def serve(client: object) -> None:
        state("serve")
        raise asyncio.CancelledError  # the end of the node

    monkeypatch.setattr(bridge_module, "no_delay", lambda client: None)
    monkeypatch.setattr(bridge, "_client", Client)
    monkeypatch.setattr(bridge, "_serve", serve)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(bridge.run())
    assert seen == [("subscribe", False, 0.0), ("serve", True, 1.0)]
