"""The peer transport over real TLS sockets on 127.0.0.1: frames flow both ways, only
consortium certificates naming a current peer get in, bad frames cost only their own
connection, and a restarted peer is redialled with a bounded queue in between.

No sleeps: every wait is on a future or event, under a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import random
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvloop

from node.cluster.consortium import ConsortiumSpec, create_consortium
from node.runtime.config import load_config
from node.runtime.keys import write_secret_file
from node.transport.framer import encode_frame
from node.transport.peer import (
    HELLO,
    OnFrame,
    PeerNetwork,
    PeerOptions,
    backoff_delay_ms,
    network_from_config,
)
from node.transport.tls import PeerIdentityError, client_context, peer_identity, server_context
from node.transport.tlsca import Issued, create_ca, issue_node_cert

NOW = datetime.datetime.now(datetime.UTC)
WAIT_S = 10.0
OPTIONS = PeerOptions(
    frame_bytes_max=4096,
    queue_frames_max=32,
    backoff_ms_initial=5,
    backoff_ms_max=50,
    connect_timeout_ms=2000,
)


@dataclass(frozen=True)
class Creds:
    ca_cert: Path
    cert: Path
    key: Path

    def server(self) -> ssl.SSLContext:
        return server_context(ca_cert=self.ca_cert, cert=self.cert, key=self.key)

    def client(self) -> ssl.SSLContext:
        return client_context(ca_cert=self.ca_cert, cert=self.cert, key=self.key)


def _write_pair(directory: Path, name: str, issued: Issued, ca_cert: Path) -> Creds:
    (directory / f"{name}.crt").write_bytes(issued.cert_pem)
    write_secret_file(directory / f"{name}.key", issued.key_pem)
    return Creds(ca_cert, directory / f"{name}.crt", directory / f"{name}.key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Creds]:
    """n1..n3 and n9 (not a peer) from the consortium CA; 'foreign-n2' from another CA
    but trusting ours, so it reaches the server's certificate check."""
    d = tmp_path_factory.mktemp("pki")
    ca = create_ca("test consortium CA", now=NOW)
    (d / "ca.crt").write_bytes(ca.cert_pem)
    out = {
        nid: _write_pair(d, nid, issue_node_cert(ca, nid, ip="127.0.0.1", now=NOW), d / "ca.crt")
        for nid in ("n1", "n2", "n3", "n9")
    }
    other = create_ca("someone else's CA", now=NOW)
    foreign = issue_node_cert(other, "n2", ip="127.0.0.1", now=NOW)
    out["foreign-n2"] = _write_pair(d, "foreign-n2", foreign, d / "ca.crt")
    return out


class Inbox:
    """Collects delivered frames; waiters wake on each arrival."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, bytes]] = []
        self._changed = asyncio.Event()

    def on_frame(self, peer_id: str, payload: bytes) -> None:
        self.frames.append((peer_id, payload))
        self._changed.set()

    def from_peer(self, peer_id: str) -> list[bytes]:
        return [p for src, p in self.frames if src == peer_id]

    async def wait_count(self, count: int) -> None:
        await self.wait(lambda: len(self.frames) >= count)
        assert len(self.frames) == count

    async def wait(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not done():
                self._changed.clear()
                await self._changed.wait()


class Links:
    """Records on_link calls so tests can wait for a link to go up or down."""

    def __init__(self) -> None:
        self.state: dict[str, bool] = {}
        self.downs: dict[str, int] = {}
        self._changed = asyncio.Event()

    def on_link(self, peer_id: str, up: bool) -> None:
        self.state[peer_id] = up
        if not up:
            self.downs[peer_id] = self.downs.get(peer_id, 0) + 1
        self._changed.set()

    async def wait_downs(self, peer_id: str, count: int) -> None:
        """Until ``count`` failed dials or disconnects towards ``peer_id`` were reported."""
        async with asyncio.timeout(WAIT_S):
            while self.downs.get(peer_id, 0) < count:
                self._changed.clear()
                await self._changed.wait()

    async def wait(self, peer_id: str, up: bool) -> None:
        async with asyncio.timeout(WAIT_S):
            while self.state.get(peer_id) is not up:
                self._changed.clear()
                await self._changed.wait()


@dataclass
class Node:
    net: PeerNetwork
    inbox: Inbox
    links: Links


def make_node(
    pki: dict[str, Creds],
    node_id: str,
    *,
    port: int = 0,
    peers: dict[str, tuple[str, int]] | None = None,
    seed: int = 1,
    wrap: Callable[[OnFrame], OnFrame] | None = None,
    options: PeerOptions = OPTIONS,
) -> Node:
    inbox, links = Inbox(), Links()
    creds = pki[node_id]
    net = PeerNetwork(
        node_id,
        "127.0.0.1",
        port,
        peers or {},
        creds.server(),
        creds.client(),
        wrap(inbox.on_frame) if wrap else inbox.on_frame,
        rng=random.Random(seed),
        options=options,
        on_link=links.on_link,
    )
    return Node(net, inbox, links)


async def start_mesh(
    pki: dict[str, Creds], ids: list[str], wrap: Callable[[OnFrame], OnFrame] | None = None
) -> dict[str, Node]:
    nodes = {nid: make_node(pki, nid, seed=i, wrap=wrap) for i, nid in enumerate(ids)}
    for node in nodes.values():
        await node.net.start()
    for nid, node in nodes.items():
        for other in ids:
            if other != nid:
                node.net.add_peer(other, "127.0.0.1", nodes[other].net.listen_port)
    return nodes


async def close_all(nodes: dict[str, Node]) -> None:
    await asyncio.gather(*(n.net.close() for n in nodes.values()))


def run(coro: Coroutine[Any, Any, None], *, loop: str = "asyncio") -> None:
    factory = uvloop.new_event_loop if loop == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(asyncio.wait_for(coro, 30))


async def raw_connect(
    creds: Creds, port: int, server_name: str = "n1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(
        "127.0.0.1", port, ssl=creds.client(), server_hostname=server_name
    )


async def closed_by_remote(reader: asyncio.StreamReader) -> bool:
    """True once the remote closes (EOF or a TLS alert/reset), within the timeout."""
    try:
        async with asyncio.timeout(WAIT_S):
            while await reader.read(4096):
                pass
    except (ConnectionError, ssl.SSLError):
        pass
    return True


# -- tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_three_nodes_exchange_frames_both_ways_in_order(pki: dict[str, Creds], loop: str) -> None:
    ids = ["n1", "n2", "n3"]
    per_pair = OPTIONS.queue_frames_max - 2

    async def main() -> None:
        nodes = await start_mesh(pki, ids)
        try:
            for src in ids:
                for dst in ids:
                    if src != dst:
                        for k in range(per_pair):
                            assert nodes[src].net.send(dst, f"{src}>{dst}#{k}".encode())
            for dst in ids:
                inbox = nodes[dst].inbox
                await inbox.wait_count(2 * per_pair)
                for src in ids:
                    if src != dst:
                        assert inbox.from_peer(src) == [
                            f"{src}>{dst}#{k}".encode() for k in range(per_pair)
                        ]
            for src in ids:
                total = nodes[src].net.totals()
                assert total.frames_sent == 2 * per_pair
                assert total.frames_received == 2 * per_pair
                assert total.frames_dropped == 0 and total.bad_frames == 0
            assert nodes["n1"].net.is_connected("n2")
        finally:
            await close_all(nodes)

    run(main(), loop=loop)


def test_broadcast_reaches_every_peer(pki: dict[str, Creds]) -> None:
    async def main() -> None:
        nodes = await start_mesh(pki, ["n1", "n2", "n3"])
        try:
            assert nodes["n1"].net.broadcast(b"hello all") == 2
            for nid in ("n2", "n3"):
                inbox = nodes[nid].inbox
                await inbox.wait_count(1)
                assert inbox.frames == [("n1", b"hello all")]
        finally:
            await close_all(nodes)

    run(main())


def test_client_cert_from_another_ca_is_rejected(pki: dict[str, Creds]) -> None:
    async def main() -> None:
        nodes = await start_mesh(pki, ["n1", "n2"])
        n1 = nodes["n1"]
        try:
            try:
                reader, writer = await raw_connect(pki["foreign-n2"], n1.net.listen_port)
            except (ConnectionError, ssl.SSLError):
                pass  # refused during the handshake
            else:
                # TLS 1.3: the server checks the client certificate after the client has
                # finished its side, so the refusal shows up on the next read.
                writer.write(encode_frame(HELLO) + encode_frame(b"forged"))
                with contextlib.suppress(ConnectionError, ssl.SSLError):
                    await writer.drain()
                assert await closed_by_remote(reader)
                writer.close()
            # The genuine n2 still gets through, and nothing forged was delivered.
            assert nodes["n2"].net.send("n1", b"genuine")
            await n1.inbox.wait(lambda: bool(n1.inbox.frames))
            assert n1.inbox.frames == [("n2", b"genuine")]
        finally:
            await close_all(nodes)

    run(main())


def test_server_with_cert_from_another_ca_is_not_dialled(pki: dict[str, Creds]) -> None:
    async def main() -> None:
        impostor = make_node(pki, "foreign-n2")
        impostor.net.node_id = "n2"
        await impostor.net.start()
        n1 = make_node(pki, "n1", peers={"n2": ("127.0.0.1", impostor.net.listen_port)})
        await n1.net.start()
        try:
            n1.net.send("n2", b"secret")
            await n1.links.wait_downs("n2", 3)
            assert n1.net.counters("n2").connects == 0
            assert impostor.inbox.frames == []
        finally:
            await asyncio.gather(n1.net.close(), impostor.net.close())

    run(main())


def test_dialling_checks_the_server_names_the_intended_node(pki: dict[str, Creds]) -> None:
    """n1 believes n2 lives where n3 listens: the TLS hostname check refuses it."""

    async def main() -> None:
        n3 = make_node(pki, "n3", peers={"n1": ("127.0.0.1", 1)})
        await n3.net.start()
        n1 = make_node(pki, "n1", peers={"n2": ("127.0.0.1", n3.net.listen_port)})
        await n1.net.start()
        try:
            n1.net.send("n2", b"for n2 only")
            await n1.links.wait_downs("n2", 2)
            assert n1.net.counters("n2").connects == 0
            assert n3.inbox.frames == []
        finally:
            await asyncio.gather(n1.net.close(), n3.net.close())

    run(main())


def test_cert_naming_an_unknown_node_is_closed(pki: dict[str, Creds]) -> None:
    async def main() -> None:
        nodes = await start_mesh(pki, ["n1", "n2"])
        n1 = nodes["n1"]
        try:
            reader, writer = await raw_connect(pki["n9"], n1.net.listen_port)
            writer.write(encode_frame(HELLO) + encode_frame(b"from n9"))
            assert await closed_by_remote(reader)
            writer.close()
            assert n1.net.network_counters.rejected_connections == 1
            assert nodes["n2"].net.send("n1", b"still serving")
            await n1.inbox.wait(lambda: bool(n1.inbox.frames))
            assert n1.inbox.frames == [("n2", b"still serving")]
        finally:
            await close_all(nodes)

    run(main())


@pytest.mark.parametrize(
    "bad",
    [
        (OPTIONS.frame_bytes_max + 1).to_bytes(4, "big") + b"x" * 100,  # oversize
        b"\x00\x00\x00\x00",  # zero-length frame
        b"\xde\xad\xbe\xef" * 8,  # garbage: announces ~3.7 GB
    ],
    ids=["oversize", "zero-length", "garbage"],
)
def test_bad_frames_close_only_that_connection(pki: dict[str, Creds], bad: bytes) -> None:
    async def main() -> None:
        nodes = await start_mesh(pki, ["n1", "n2"])
        n1 = nodes["n1"]
        # n3 is a known peer of n1, played by hand here (n1's dials to it just fail).
        n1.net.add_peer("n3", "127.0.0.1", 1)

        async def speak_as_n3(*payloads: bytes) -> tuple[asyncio.StreamReader, Any]:
            reader, writer = await raw_connect(pki["n3"], n1.net.listen_port)
            writer.write(b"".join(encode_frame(p) for p in (HELLO, *payloads)))
            await writer.drain()
            assert await reader.readexactly(4 + len(HELLO)) == encode_frame(HELLO)
            return reader, writer

        try:
            reader, writer = await speak_as_n3(b"ok before")
            writer.write(bad)
            await writer.drain()
            assert await closed_by_remote(reader)
            writer.close()
            assert n1.net.counters("n3").bad_frames == 1
            assert ("n3", b"ok before") in n1.inbox.frames
            # n1 keeps serving n2, and a well-behaved n3 connection is served again.
            nodes["n2"].net.send("n1", b"from n2")
            _, writer = await speak_as_n3(b"from n3 again")
            await n1.inbox.wait(
                lambda: {("n2", b"from n2"), ("n3", b"from n3 again")} <= set(n1.inbox.frames)
            )
            writer.close()
        finally:
            await close_all(nodes)

    run(main())


def test_restarted_peer_is_redialled_and_the_queue_stays_bounded(pki: dict[str, Creds]) -> None:
    queue_max = OPTIONS.queue_frames_max

    async def main() -> None:
        n2 = make_node(pki, "n2", peers={"n1": ("127.0.0.1", 1)})
        await n2.net.start()
        port = n2.net.listen_port
        n1 = make_node(pki, "n1", peers={"n2": ("127.0.0.1", port)})
        await n1.net.start()
        try:
            assert n1.net.send("n2", b"before")
            await n2.inbox.wait(lambda: bool(n2.inbox.frames))
            await n1.links.wait("n2", True)

            await n2.net.close()
            await n1.links.wait("n2", False)
            results = [n1.net.send("n2", f"queued {k}".encode()) for k in range(queue_max + 3)]
            assert results == [True] * queue_max + [False] * 3
            assert n1.net.counters("n2").frames_dropped == 3
            assert n1.net.counters("n2").queued_frames == queue_max

            n2b = make_node(pki, "n2", port=port, peers={"n1": ("127.0.0.1", 1)})
            await n2b.net.start()
            try:
                await n2b.inbox.wait(lambda: len(n2b.inbox.frames) == queue_max)
                assert n2b.inbox.from_peer("n1") == [
                    f"queued {k}".encode() for k in range(queue_max)
                ]
                assert n1.net.send("n2", b"after")
                await n2b.inbox.wait(lambda: ("n1", b"after") in n2b.inbox.frames)
                c = n1.net.counters("n2")
                assert c.reconnects == 1 and c.connects == 2 and c.disconnects == 1
                assert c.queued_frames == 0
                assert c.frames_sent == 1 + queue_max + 1
            finally:
                await n2b.net.close()
        finally:
            await n1.net.close()

    run(main())


def test_send_contract(pki: dict[str, Creds]) -> None:
    async def main() -> None:
        n1 = make_node(pki, "n1", peers={"n2": ("127.0.0.1", 1)})
        with pytest.raises(ValueError, match=r"1\.\.4096 bytes"):
            n1.net.send("n2", b"")
        with pytest.raises(ValueError, match="got 4097"):
            n1.net.send("n2", b"x" * 4097)
        assert n1.net.send("n7", b"x") is False
        assert n1.net.network_counters.unknown_peer_sends == 1
        with pytest.raises(ValueError, match="own peer"):
            n1.net.add_peer("n1", "127.0.0.1", 1)
        await n1.net.start()
        await n1.net.close()
        assert n1.net.send("n2", b"x") is False

    run(main())


def test_removed_peer_is_no_longer_accepted(pki: dict[str, Creds]) -> None:
    async def main() -> None:
        nodes = await start_mesh(pki, ["n1", "n2"])
        n1, n2 = nodes["n1"], nodes["n2"]
        try:
            n2.net.send("n1", b"one")
            await n1.inbox.wait(lambda: bool(n1.inbox.frames))
            n1.net.remove_peer("n2")
            assert n1.net.peer_ids == ()
            # n2's link drops, and its next dial is refused as coming from an unknown node.
            await n2.links.wait_downs("n1", 2)
            assert n1.net.network_counters.rejected_connections >= 1
            assert not n2.net.is_connected("n1")
            assert n1.inbox.frames == [("n2", b"one")]
        finally:
            await close_all(nodes)

    run(main())


def test_consortium_from_init_talks_over_its_own_certificates(tmp_path: Path) -> None:
    """The files ``grantchain init`` writes are what the transport runs on."""
    spec = ConsortiumSpec(nodes=3, orgs=2, chain_id="wire", genesis_time_ms=0)
    manifest = create_consortium(tmp_path / "c", spec, now=NOW)
    configs = [dataclasses.replace(load_config(n.config), peer_port=0) for n in manifest.nodes]

    async def main() -> None:
        inboxes = {c.node_id: Inbox() for c in configs}
        nets = {
            c.node_id: network_from_config(c, inboxes[c.node_id].on_frame, rng=random.Random(3))
            for c in configs
        }
        for net in nets.values():
            await net.start()
        try:
            for c in configs:  # the configured ports are not ours to bind in a test
                for p in c.peers:
                    nets[c.node_id].add_peer(p.node_id, "127.0.0.1", nets[p.node_id].listen_port)
            for c in configs:
                assert nets[c.node_id].broadcast(f"from {c.node_id}".encode()) == 2
            for nid, inbox in inboxes.items():
                await inbox.wait_count(2)
                assert sorted(inbox.frames) == sorted(
                    (c.node_id, f"from {c.node_id}".encode()) for c in configs if c.node_id != nid
                )
            assert nets["n1"].options.frame_bytes_max == configs[0].peer_frame_bytes_max
        finally:
            await asyncio.gather(*(net.close() for net in nets.values()))

    run(main())


def test_silent_peer_is_cut_after_the_connect_timeout(pki: dict[str, Creds]) -> None:
    async def main() -> None:
        creds = pki["n1"]
        n1 = PeerNetwork(
            "n1", "127.0.0.1", 0, {"n2": ("127.0.0.1", 1)}, creds.server(), creds.client(),
            Inbox().on_frame, rng=random.Random(1),
            options=dataclasses.replace(OPTIONS, connect_timeout_ms=200),
        )  # fmt: skip
        await n1.start()
        try:
            reader, writer = await raw_connect(pki["n2"], n1.listen_port)
            assert await closed_by_remote(reader)  # no HELLO: closed, not held open
            writer.close()
        finally:
            await n1.close()

    run(main())


def test_a_failing_callback_is_counted_and_the_connection_stays(pki: dict[str, Creds]) -> None:
    async def main() -> None:
        def flaky(deliver: OnFrame) -> OnFrame:
            def on_frame(peer_id: str, payload: bytes) -> None:
                if payload == b"boom":
                    raise RuntimeError("handler bug")
                deliver(peer_id, payload)

            return on_frame

        nodes = await start_mesh(pki, ["n1", "n2"], wrap=flaky)
        n1 = nodes["n1"]
        try:
            for payload in (b"boom", b"after"):
                nodes["n2"].net.send("n1", payload)
            await n1.inbox.wait(lambda: bool(n1.inbox.frames))
            assert n1.inbox.frames == [("n2", b"after")]
            c = n1.net.counters("n2")
            assert c.callback_errors == 1 and c.frames_received == 2 and c.bad_frames == 0
            assert nodes["n2"].net.counters("n1").connects == 1
        finally:
            await close_all(nodes)

    run(main())


def test_a_peer_that_stops_reading_is_cut_off_and_redialled(pki: dict[str, Creds]) -> None:
    """Writes that cannot drain for ``write_timeout_ms`` end the connection, so a stalled
    peer holds at most its queue's worth of memory and gets a fresh connection."""
    options = dataclasses.replace(
        OPTIONS, frame_bytes_max=1 << 20, queue_frames_max=32, write_timeout_ms=300
    )

    async def main() -> None:
        hello_seen = 0
        stalled = asyncio.Event()  # never set: the handler just stops reading
        accepted: list[asyncio.StreamWriter] = []

        async def stalled_n2(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal hello_seen
            assert await reader.readexactly(4 + len(HELLO)) == encode_frame(HELLO)
            hello_seen += 1
            accepted.append(writer)
            writer.write(encode_frame(HELLO))
            with contextlib.suppress(asyncio.CancelledError):
                await stalled.wait()

        server = await asyncio.start_server(stalled_n2, "127.0.0.1", 0, ssl=pki["n2"].server())
        port = server.sockets[0].getsockname()[1]
        n1 = make_node(pki, "n1", peers={"n2": ("127.0.0.1", port)}, options=options)
        await n1.net.start()
        try:
            await n1.links.wait("n2", True)
            payload = b"x" * (1 << 20)
            assert all(n1.net.send("n2", payload) for _ in range(options.queue_frames_max))
            await n1.links.wait("n2", False)  # write timeout: cut off
            await n1.links.wait("n2", True)  # and redialled
            c = n1.net.counters("n2")
            assert c.disconnects == 1 and c.reconnects == 1 and c.frames_dropped >= 1
            assert hello_seen == 2
        finally:
            await n1.net.close()
            server.close()
            for w in accepted:
                w.transport.abort()
            await server.wait_closed()

    run(main())


def test_backoff_is_capped_exponential_with_seeded_jitter() -> None:
    opts = PeerOptions(backoff_ms_initial=100, backoff_ms_max=1000)
    delays = [backoff_delay_ms(a, opts, random.Random(7)) for a in range(8)]
    caps = [100, 200, 400, 800, 1000, 1000, 1000, 1000]
    for delay, cap in zip(delays, caps, strict=True):
        assert cap / 2 <= delay <= cap
    again = [backoff_delay_ms(a, opts, random.Random(7)) for a in range(8)]
    assert delays == again, "the same seed gives the same schedule"
    assert backoff_delay_ms(10_000, opts, random.Random(1)) <= 1000


def test_peer_options_are_checked() -> None:
    with pytest.raises(ValueError, match="queue_frames_max must be positive"):
        PeerOptions(queue_frames_max=0)
    with pytest.raises(ValueError, match="backoff_ms_max"):
        PeerOptions(backoff_ms_initial=100, backoff_ms_max=10)


def test_peer_identity_needs_exactly_one_dns_name() -> None:
    assert peer_identity({"subjectAltName": (("DNS", "n1"), ("IP Address", "127.0.0.1"))}) == "n1"
    with pytest.raises(PeerIdentityError, match="no verified certificate"):
        peer_identity(None)
    with pytest.raises(PeerIdentityError, match="exactly one DNS SAN"):
        peer_identity({"subjectAltName": (("DNS", "n1"), ("DNS", "n2"))})
    with pytest.raises(PeerIdentityError, match="exactly one DNS SAN"):
        peer_identity({"subject": ((("commonName", "n1"),),)})
