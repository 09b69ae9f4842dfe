"""The MQTT bridge: apps and devices publish signed txs to a broker, the node takes them.

Topics, under ``[mqtt] topic_prefix`` (``P``):

- ``P/tx/<org>``: one signed tx or a batch, the same bodies as ``POST /v1/txs``
  (msgpack: a bin or an array of bin; JSON: ``{"tx": b64}`` or ``{"txs": [...]}``),
  told apart by the MQTT v5 Content Type (``application/msgpack`` or
  ``application/json``) or, without one, by the first byte (``{`` is JSON). The
  bridge subscribes as ``$share/<share_group>/P/tx/+``, so each message is taken by one
  node of the consortium, and another node's bridge goes on when one node dies.
- ``P/receipts/<tx id hex>``: the committed result and receipt of each tx (QoS 1); or,
  when the publisher set an MQTT v5 Response Topic, one message there with the results
  of all the message's txs and the publisher's Correlation Data. The user property
  ``receipts: false`` leaves the receipts out (as ``?receipts=false`` on the RPC).
- ``P/errors/<org>``: a message that is not txs in a form we take, or a tx that was
  refused (bad signature, unknown sender, stale, ...), with the reason. A malformed
  message is acknowledged: redelivering it could never succeed.
- ``P/blocks``: each committed block as the HTTP commit stream sends it
  (``node.api.block_json.summary_json``), published by the node that proposed it (one publisher per block; a subscriber that needs every block without a
  gap resumes from the HTTP commit stream).

Delivery: QoS 1 in, at-least-once; exactly-once on chain because txs are deduplicated
by tx id (in the mempool, and against the chain) on every node, so a message redelivered
after a reconnect or to another node commits nothing twice. The bridge acknowledges a
message (PUBACK, in the order the messages arrived, as MQTT requires) only once every
tx in it is committed or refused, so a message the broker accepted is never lost to a
node crash: the broker redelivers it. The session is persistent (``clean_start`` off,
``session_expiry_s``), so the broker queues messages while the bridge is down. A
publisher's PUBACK must say success: 0x10 (no subscriber) is a message the broker
dropped, as Mosquitto does right after a restart until a bridge subscribes again
(``node.client.mqtt_publish``; ``deploy/README.md``).

Back-pressure and memory: the bridge asks for at most ``inflight_max`` unacknowledged
messages (MQTT v5 Receive Maximum) and holds no others, each at most
``PAYLOAD_BYTES_MAX``; when the mempool is full or there is no leader it retries with a
backoff and does not acknowledge, so the broker stops sending (``paused`` in the
metrics). QoS 0 messages cannot be acknowledged, so nothing could hold them back: they
are refused with an error. The broker's own limits matter too: see ``deploy/README.md``.

paho acknowledges on delivery unless ``manual_ack`` is set; aiomqtt (2.5) does not expose
that switch or ``ack``, so the bridge sets them on aiomqtt's paho client.

aiomqtt can miss a disconnection (empicano/aiomqtt#326, #381): seen here once in ~40
broker restarts, a bridge whose socket was reset never left its message loop, and the
messages queued for its session waited for ever. And paho can miss one: under uvloop, a
socket error can close the loop's poll handle for the socket without a read event
(MagicStack/uvloop#552; logged as ``RuntimeError ... <UVPoll closed=True>`` when paho next
writes), so paho never reads the end of the connection, and a bridge stalled for ~20 s
after a broker restart, until a publish timed out. ``watch_connection`` polls
``paho_alive`` every ``LIVENESS_S``: paho's own state and, beside it, the socket itself
(``peer_closed``), and ends a connection that either says is gone.

A connection ends only once every task of its task group has ended; on Python 3.11 a
cancellation is lost when an ``asyncio.wait_for`` it interrupts completes at the same
moment (``node.runtime.waits``), which once kept the block publisher, and so the bridge,
from ever reconnecting. The node's waits do not lose it, and the publisher's loop checks
for a cancellation that aiomqtt's own waits lost.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import select
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from node.api.block_json import committed_doc, summary_json
from node.api.service import NodeService
from node.api.tx_body import MSGPACK_TYPE, TxBodyError, parse_txs
from node.pipeline.admission import Status
from node.runtime.config import MqttConfig
from node.runtime.mqtt_tcp import no_delay
from node.runtime.waits import raise_if_cancelled
from storage.blockstore import TxLocation

log = logging.getLogger("grantchain.mqtt")

PAYLOAD_BYTES_MAX = 1024 * 1024
COMMIT_WAIT_S = 10.0
"""How long one wait for commits lasts before the txs not yet seen are submitted again
(a leader change can drop a mempool; resubmitting is safe: txs are deduplicated)."""
RETRY_S_MIN = 0.02
RETRY_S_MAX = 1.0
RECONNECT_S_MAX = 5.0
CERT_WAIT_S = 2.0
BLOCK_WAIT_S = 15.0
ORG_CHARS_MAX = 64
LIVENESS_S = 1.0
LIVENESS_MISSES = 3
PENDING_PUBLISHES_WARN = 20_000


@dataclass(slots=True)
class _Slot:
    """One message taken from the broker, until it may be acknowledged."""

    mid: int
    qos: int
    done: bool = False


@dataclass(slots=True)
class Outcome:
    """What became of one message's txs: the docs to publish, the errors to report."""

    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def topic_org(topic: str, prefix: str) -> str | None:
    """The ``<org>`` of ``<prefix>/tx/<org>``, or None for any other topic."""
    head = f"{prefix}/tx/"
    if not topic.startswith(head):
        return None
    org = topic[len(head) :]
    if not org or "/" in org or len(org) > ORG_CHARS_MAX:
        return None
    return org


def content_type_of(payload: bytes, declared: str | None) -> str:
    """The body's media type: the MQTT v5 Content Type if given, else JSON for a body
    that starts with ``{`` and msgpack for anything else."""
    if declared:
        return declared.split(";")[0].strip().lower()
    return "application/json" if payload[:1] == b"{" else MSGPACK_TYPE


def wants_receipts(props: Properties | None) -> bool:
    """False when the publisher set the MQTT v5 user property ``receipts: false`` (as
    ``POST /v1/txs?receipts=false``): results without receipts, sooner and lighter."""
    pairs = getattr(props, "UserProperty", None) if props is not None else None
    return not any(k == "receipts" and v == "false" for k, v in pairs or ())


def _reason(exc: BaseException) -> str:
    """An error for the log; a task group's first distinct causes, not just their count."""
    if isinstance(exc, BaseExceptionGroup):
        causes = sorted({f"{type(e).__name__}: {e}" for e in exc.exceptions})
        return f"{len(exc.exceptions)} failures: " + "; ".join(causes[:3])
    return f"{type(exc).__name__}: {exc}"


async def watch_connection(
    is_connected: Callable[[], bool],
    interval_s: float = LIVENESS_S,
    misses: int = LIVENESS_MISSES,
) -> None:
    """Raise ``MqttError`` once ``is_connected`` (``paho_alive``) has said no ``misses``
    times in a row, ``interval_s`` apart: a connection aiomqtt or paho did not see end
    (module docstring)."""
    missed = 0
    while missed < misses:
        await asyncio.sleep(interval_s)  # a liveness poll, not a wait for a known event
        missed = 0 if is_connected() else missed + 1
    raise aiomqtt.MqttError("the connection was lost without a disconnection event")


def peer_closed(sock: Any) -> bool:
    """True when the kernel says the socket's peer closed it or it failed (or it is closed
    here), whether or not anything read it: a poll of the descriptor, so TLS sockets too."""
    fd = sock.fileno()
    if fd < 0:
        return True
    gone = select.POLLHUP | select.POLLERR | select.POLLNVAL | getattr(select, "POLLRDHUP", 0)
    poller = select.poll()
    poller.register(fd, select.POLLIN | gone)
    return any(events & gone for _, events in poller.poll(0))


def paho_alive(paho: Any) -> bool:
    """What ``watch_connection`` polls: paho's state, its socket, and that socket's peer."""
    sock = paho.socket()
    return bool(paho.is_connected()) and sock is not None and not peer_closed(sock)


class MqttBridge:
    """Runs until cancelled: connects, takes messages, reconnects after any failure."""

    def __init__(self, node: NodeService, cfg: MqttConfig, *, node_id: str, chain_id: str) -> None:
        self.node = node
        self.cfg = cfg
        self.node_id = node_id
        self.client_id = f"grantchain-{chain_id}-{node_id}"[:128]
        self.prefix = cfg.topic_prefix
        self.subscription = f"$share/{cfg.share_group}/{cfg.topic_prefix}/tx/+"
        self.metrics = node.metrics
        self.connected = asyncio.Event()
        self._blocks_after: int | None = None

    # -- connection ---------------------------------------------------------------------
    def _client(self) -> aiomqtt.Client:
        cfg = self.cfg
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = cfg.session_expiry_s
        props.ReceiveMaximum = cfg.inflight_max
        password = None
        if cfg.password_file is not None:
            password = cfg.password_file.read_text(encoding="utf-8").splitlines()[0]
        tls = None
        if cfg.ca_file is not None:
            tls = aiomqtt.TLSParameters(
                ca_certs=str(cfg.ca_file),
                certfile=str(cfg.cert_file) if cfg.cert_file else None,
                keyfile=str(cfg.key_file) if cfg.key_file else None,
            )
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            identifier=self.client_id,
            username=cfg.username,
            password=password,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
            tls_params=tls,
            max_inflight_messages=max(20, cfg.inflight_max),
            timeout=10,
        )
        client._client.manual_ack_set(True)  # see the module docstring
        # aiomqtt warns past 10 unanswered publishes; a batch's receipts are many more.
        client.pending_calls_threshold = PENDING_PUBLISHES_WARN
        return client

    async def run(self) -> None:
        backoff = RETRY_S_MIN
        while True:
            try:
                async with self._client() as client:
                    no_delay(client)
                    # Connected means subscribed: a message published before the broker
                    # has the subscription is dropped (PUBACK 0x10; module docstring).
                    await client.subscribe(self.subscription, qos=1)
                    self.metrics.mqtt_connected.set(1)
                    self.connected.set()
                    backoff = RETRY_S_MIN
                    log.info("MQTT bridge connected to %s:%d", self.cfg.host, self.cfg.port)
                    await self._serve(client)
            except (aiomqtt.MqttError, OSError, ExceptionGroup) as exc:
                log.warning("MQTT bridge: %s; reconnecting in %.2f s", _reason(exc), backoff)
            except Exception:  # the bridge must outlive any one connection's trouble
                log.exception("MQTT bridge: unexpected failure; reconnecting in %.2f s", backoff)
            finally:
                self.connected.clear()
                self.metrics.mqtt_connected.set(0)
            await asyncio.sleep(backoff)  # a backoff between attempts, not a wait for state
            backoff = min(RECONNECT_S_MAX, backoff * 2)

    async def _serve(self, client: aiomqtt.Client) -> None:
        """One connection's life: a task per message, acknowledgements in arrival order,
        and the block topic. Any failure ends all of them; unacknowledged messages are
        redelivered on the next connection."""
        slots: collections.deque[_Slot] = collections.deque()
        progressed = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._acknowledge(client, slots, progressed))
            tg.create_task(self._publish_blocks(client))
            paho = client._client
            tg.create_task(watch_connection(lambda: paho_alive(paho)))
            async for msg in client.messages:
                self.metrics.mqtt_messages.labels("in").inc()
                if msg.qos == 0:
                    self.metrics.mqtt_messages.labels("qos0_refused").inc()
                    org = topic_org(str(msg.topic), self.prefix) or "unknown"
                    tg.create_task(
                        self._report(client, org, [{"error": "publish txs with QoS 1"}], msg)
                    )
                    continue
                slot = _Slot(msg.mid, msg.qos)
                slots.append(slot)
                self.metrics.mqtt_inflight.set(len(slots))
                tg.create_task(self._take(client, msg, slot, progressed))

    async def _acknowledge(
        self, client: aiomqtt.Client, slots: collections.deque[_Slot], progressed: asyncio.Event
    ) -> None:
        paho = client._client
        while True:
            await progressed.wait()
            progressed.clear()
            while slots and slots[0].done:
                slot = slots.popleft()
                paho.ack(slot.mid, slot.qos)
            self.metrics.mqtt_inflight.set(len(slots))

    # -- one message ----------------------------------------------------------------------
    async def _take(
        self,
        client: aiomqtt.Client,
        msg: aiomqtt.Message,
        slot: _Slot,
        progressed: asyncio.Event,
    ) -> None:
        topic = str(msg.topic)
        org = topic_org(topic, self.prefix)
        payload = msg.payload if isinstance(msg.payload, bytes) else str(msg.payload).encode()
        props = msg.properties
        try:
            if org is None:
                raise TxBodyError(f"topic {topic!r} is not {self.prefix}/tx/<org>")
            if len(payload) > PAYLOAD_BYTES_MAX:
                raise TxBodyError(
                    f"message is {len(payload)} bytes, over the limit of {PAYLOAD_BYTES_MAX}"
                )
            declared = getattr(props, "ContentType", None) if props is not None else None
            raws = parse_txs(payload, content_type_of(payload, declared))
        except TxBodyError as exc:
            self.metrics.mqtt_messages.labels("malformed").inc()
            await self._report(client, org or "unknown", [{"error": str(exc)}], msg)
        else:
            outcome = await self._commit_until_done(raws, wants_receipts(props))
            await self._publish(client, org, outcome, msg)
            self.metrics.mqtt_messages.labels("committed").inc()
        slot.done = True
        progressed.set()

    async def _commit_until_done(self, raws: Sequence[bytes], receipts: bool) -> Outcome:
        """``commit``, retried after an unexpected failure of the node (a store error,
        say): one message's trouble must not end the connection, which would have the
        broker redeliver every unacknowledged message of this bridge at once."""
        backoff = RETRY_S_MIN
        while True:
            try:
                return await self.commit(raws, receipts=receipts)
            except Exception:
                self.metrics.mqtt_messages.labels("retried").inc()
                log.exception("MQTT bridge: committing a message failed; retrying")
                await self._pause(backoff)
                backoff = min(RETRY_S_MAX, backoff * 2)

    async def commit(self, raws: Sequence[bytes], *, receipts: bool = True) -> Outcome:
        """Submit ``raws`` until each is committed or refused; never gives up while the
        node runs (the caller's message stays unacknowledged meanwhile). With
        ``receipts`` off the results carry no receipt, and need no certificate."""
        outcome = Outcome()
        pending = list(raws)
        backoff = RETRY_S_MIN
        committed: dict[bytes, TxLocation] = {}
        while pending:
            while not self.node.can_wait(len(pending)):
                await self._pause(backoff)
                backoff = min(RETRY_S_MAX, backoff * 2)
            verdicts = await self.node.submit(pending)
            retry: list[bytes] = []
            want: dict[bytes, bytes] = {}
            for raw, v in zip(pending, verdicts, strict=True):
                if v.status is Status.MEMPOOL_FULL or v.status is Status.NO_LEADER:
                    retry.append(raw)
                elif v.status is Status.REJECTED or v.tx_id is None:
                    self.metrics.mqtt_txs.labels("rejected").inc()
                    outcome.errors.append(v.to_json())
                else:
                    if v.status is not Status.ACCEPTED:
                        self.metrics.mqtt_txs.labels("deduplicated").inc()
                    want[v.tx_id] = raw
            if want:
                found = await self.node.wait_committed(list(want), COMMIT_WAIT_S)
                committed.update(found)
                retry += [raw for tx_id, raw in want.items() if tx_id not in found]
            if retry and len(retry) == len(pending) and not want:
                await self._pause(backoff)
                backoff = min(RETRY_S_MAX, backoff * 2)
            elif not retry:
                backoff = RETRY_S_MIN
            pending = retry
        self.metrics.mqtt_txs.labels("committed").inc(len(committed))
        if committed and receipts:
            outcome.results = await self._receipts(committed)
        elif committed:
            outcome.results = [committed_doc(t, loc, None) for t, loc in committed.items()]
        outcome.results += [{**e, "status": "refused"} for e in outcome.errors]
        return outcome

    async def _pause(self, seconds: float) -> None:
        started = time.perf_counter()
        await asyncio.sleep(seconds)  # a retry backoff: the node said "not now"
        self.metrics.mqtt_paused_seconds.inc(time.perf_counter() - started)

    async def _receipts(self, committed: dict[bytes, TxLocation]) -> list[dict[str, Any]]:
        for height in sorted({loc.height for loc in committed.values()}):
            await self.node.wait_certified(height, CERT_WAIT_S)
        receipts = await self.node.receipts(list(committed))
        return [committed_doc(t, loc, receipts.get(t)) for t, loc in committed.items()]

    # -- publishing ---------------------------------------------------------------------
    async def _publish(
        self, client: aiomqtt.Client, org: str, outcome: Outcome, msg: aiomqtt.Message
    ) -> None:
        response = getattr(msg.properties, "ResponseTopic", None) if msg.properties else None
        if response:
            await self._respond(client, response, {"results": outcome.results}, msg)
        else:
            for doc in outcome.results:
                if doc.get("status") == "committed":
                    await client.publish(
                        f"{self.prefix}/receipts/{doc['tx_id']}", orjson.dumps(doc), qos=1
                    )
        if outcome.errors:
            await self._report(client, org, outcome.errors, msg, respond=False)

    async def _report(
        self,
        client: aiomqtt.Client,
        org: str,
        errors: list[dict[str, Any]],
        msg: aiomqtt.Message,
        *,
        respond: bool = True,
    ) -> None:
        doc = {"topic": str(msg.topic), "errors": errors}
        await client.publish(f"{self.prefix}/errors/{org}", orjson.dumps(doc), qos=1)
        response = getattr(msg.properties, "ResponseTopic", None) if msg.properties else None
        if respond and response:
            await self._respond(client, response, doc, msg)

    async def _respond(
        self, client: aiomqtt.Client, topic: str, doc: dict[str, Any], msg: aiomqtt.Message
    ) -> None:
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/json"
        correlation = getattr(msg.properties, "CorrelationData", None)
        if correlation is not None:
            props.CorrelationData = correlation
        with contextlib.suppress(ValueError):  # a response topic with wildcards: drop it
            await client.publish(topic, orjson.dumps(doc), qos=1, properties=props)

    async def _publish_blocks(self, client: aiomqtt.Client) -> None:
        """``P/blocks``: the blocks this node proposed, from where the last connection
        left off (or the head at the first connection)."""
        if self._blocks_after is None:
            self._blocks_after = self.node.store.height
        while True:
            raise_if_cancelled()  # the connection ended while a publish was acknowledged
            head = await self.node.wait_for_height(self._blocks_after + 1, BLOCK_WAIT_S)
            while self._blocks_after < head:
                height = self._blocks_after + 1
                header = self.node.store.header(height)  # a header, not every block body
                block = (
                    self.node.block(height) if header and header.proposer == self.node_id else None
                )
                if block is not None:
                    await client.publish(
                        f"{self.prefix}/blocks", orjson.dumps(summary_json(block)), qos=1
                    )
                self._blocks_after = height
