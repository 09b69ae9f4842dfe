"""The peer transport: opaque messages between validator nodes over mutually
authenticated TLS, in length-prefixed frames (``node.transport.framer``).

Shape
    Each node dials one outgoing connection to every peer and only *sends* on it; it
    *receives* on the connections its peers dialled to it. One direction per connection
    keeps each side simple (no request/response matching, no tie-breaking between two
    connections for one pair) and lets a stalled reader only ever stall its own link.

Authentication
    TLS 1.3 with certificates from the consortium CA in both directions (``node.transport.tls``).
    The dialler checks that the server's certificate names the node it meant to reach;
    the acceptor takes the remote node id from the client's verified certificate (its
    DNS SAN), never from a payload, and closes connections whose certificate names a
    node that is not a current peer. A certificate naming IP addresses is accepted only
    from (and, dialling, at) one of them; a node listening on one address dials from
    it. A second connection from the same peer replaces the first, so a valid
    certificate cannot be used to pile up connections.

Session start
    The dialler sends one ``HELLO`` frame; the acceptor answers with ``HELLO`` once it
    has authenticated the dialler. Only then does the dialler count the link as up and
    start draining its queue, so frames are never poured into a connection the other
    side is about to reject. The acceptor sends nothing else.

Loss, not back-pressure
    ``send`` never blocks: it appends to a bounded per-peer queue (frames and bytes) and
    drops, counts and returns False when the queue is full. Consensus retransmits, so a
    slow or dead peer costs a bounded amount of memory and nothing else. Frames written
    into a connection that then breaks are lost too. A peer that stops reading is cut
    off after ``write_timeout_ms`` and redialled.

Reconnection
    Capped exponential backoff with jitter drawn from an injected ``random.Random``, so
    a test or the simulator can reproduce the exact schedule, while real nodes that lost
    a peer together do not redial it in lockstep.

Bad input
    A frame over ``frame_bytes_max``, a zero-length frame, a wrong ``HELLO`` or data on
    a send-only connection closes that connection (logged and counted); the node keeps
    serving everyone else.

``send``, ``broadcast``, ``add_peer`` and ``remove_peer`` must be called on the event
loop's thread. ``on_frame`` runs on the event loop and must not block; exceptions it
raises are logged and counted, and do not close the connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import random
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from node.runtime.config import FRAME_BYTES_MAX_DEFAULT, NodeConfig
from node.transport.framer import FrameDecoder, FrameError, encode_frame
from node.transport.tls import (
    PeerIdentityError,
    check_peer_address,
    client_context,
    peer_identity,
    server_context,
)

log = logging.getLogger(__name__)

HELLO = b"grantchain-peer/1"
"""The first frame in each direction; a new wire format gets a new version here."""

OnFrame = Callable[[str, bytes], None]
OnLink = Callable[[str, bool], None]


class PeerProtocolError(Exception):
    """The remote side broke the session protocol; the connection is closed."""


_CONNECTION_ERRORS = (
    OSError,  # includes ssl.SSLError and ssl.CertificateError
    TimeoutError,
    EOFError,
    FrameError,
    PeerProtocolError,
    PeerIdentityError,
)


@dataclass(frozen=True, slots=True)
class PeerOptions:
    frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT
    queue_frames_max: int = 4096
    queue_bytes_max: int = 64 * 1024 * 1024
    batch_bytes_max: int = 1024 * 1024
    """Frames are coalesced into one write of up to this many bytes."""
    backoff_ms_initial: int = 50
    backoff_ms_max: int = 5000
    connect_timeout_ms: int = 5000
    """TCP connect, TLS handshake and HELLO exchange, each side."""
    write_timeout_ms: int = 10_000
    read_chunk_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) < 1:
                raise ValueError(f"PeerOptions.{f.name} must be positive")
        if self.backoff_ms_max < self.backoff_ms_initial:
            raise ValueError("PeerOptions.backoff_ms_max must be >= backoff_ms_initial")


def backoff_delay_ms(attempt: int, options: PeerOptions, rng: random.Random) -> float:
    """Delay before redial number ``attempt`` (0 = first after a failure): the cap grows
    as ``initial * 2**attempt`` up to ``backoff_ms_max``; the delay is half the cap plus
    a random part of the other half ("equal jitter"), so it never collapses to zero."""
    cap = min(options.backoff_ms_max, options.backoff_ms_initial * 2 ** min(attempt, 32))
    return cap / 2 + rng.random() * cap / 2


@dataclass(slots=True)
class PeerCounters:
    """Per-peer counters for metrics; monotonic except ``queued_frames``."""

    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    bytes_received: int = 0
    frames_dropped: int = 0
    """Refused by a full queue, or lost in a connection that broke."""
    queued_frames: int = 0
    connects: int = 0
    reconnects: int = 0
    """Successful connects after the first."""
    connect_failures: int = 0
    disconnects: int = 0
    bad_frames: int = 0
    """Incoming connections from this peer closed for a framing or protocol error."""
    callback_errors: int = 0


@dataclass(slots=True)
class NetworkCounters:
    """Events that cannot be attributed to a known peer."""

    rejected_connections: int = 0
    """Verified TLS, but the certificate names no current peer (or not exactly one)."""
    unknown_peer_sends: int = 0


class _Link:
    """The outgoing side towards one peer: its address, queue and dialler task."""

    __slots__ = (
        "counters",
        "ever_connected",
        "host",
        "peer_id",
        "port",
        "queue",
        "queued_bytes",
        "task",
        "up",
        "wakeup",
    )

    def __init__(self, peer_id: str, host: str, port: int) -> None:
        self.peer_id = peer_id
        self.host = host
        self.port = port
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.counters = PeerCounters()
        self.ever_connected = False
        self.up = False


class PeerNetwork:
    """All peer connections of one node. See the module docstring for the protocol.

    ``peers`` maps node id -> (host, port). ``server_ssl`` and ``client_ssl`` come from
    ``node.transport.tls.server_context`` and ``client_context``. ``on_link(peer_id, up)`` is told
    the outcome of every dial (True once the link is up, False when a dial failed) and
    every disconnect (False), for health reporting and for tests to wait on.
    """

    def __init__(
        self,
        node_id: str,
        listen_host: str,
        listen_port: int,
        peers: Mapping[str, tuple[str, int]],
        server_ssl: ssl.SSLContext,
        client_ssl: ssl.SSLContext,
        on_frame: OnFrame,
        *,
        rng: random.Random,
        options: PeerOptions | None = None,
        on_link: OnLink | None = None,
    ) -> None:
        self.node_id = node_id
        self.options = options or PeerOptions()
        self.network_counters = NetworkCounters()
        self._listen = (listen_host, listen_port)
        # Dial from the address we listen on when it is one address: a peer that checks
        # our certificate's address against the connection's then sees the right one.
        self._source = (listen_host, 0) if _is_one_address(listen_host) else None
        self._server_ssl = server_ssl
        self._client_ssl = client_ssl
        self._on_frame = on_frame
        self._on_link = on_link
        self._rng = rng
        self._links: dict[str, _Link] = {}
        self._server: asyncio.Server | None = None
        self._incoming: dict[str, asyncio.StreamWriter] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._started = False
        self._closing = False
        for peer_id, (host, port) in peers.items():
            self._add_link(peer_id, host, port)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Listen for peers and start dialling them."""
        if self._started:
            raise RuntimeError("PeerNetwork already started")
        self._started = True
        host, port = self._listen
        self._server = await asyncio.start_server(
            self._on_connection,
            host,
            port,
            ssl=self._server_ssl,
            ssl_handshake_timeout=self.options.connect_timeout_ms / 1000,
        )
        for link in self._links.values():
            self._spawn(link)
        log.info("%s: peer transport listening on %s:%d", self.node_id, host, self.listen_port)

    async def close(self) -> None:
        """Stop dialling and listening and close every connection. Queued frames are lost."""
        if self._closing:
            return
        self._closing = True
        if self._server is not None:
            self._server.close()
        tasks = [link.task for link in self._links.values() if link.task is not None]
        for writer in list(self._incoming.values()):
            writer.close()
        tasks += list(self._handlers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    @property
    def listen_port(self) -> int:
        """The bound port (useful when listening on port 0)."""
        if self._server is None or not self._server.sockets:
            return self._listen[1]
        return int(self._server.sockets[0].getsockname()[1])

    # -- membership ------------------------------------------------------------------

    def add_peer(self, peer_id: str, host: str, port: int) -> None:
        """Start talking to a new peer (and accept it); replaces its address if known."""
        if peer_id in self._links:
            self.remove_peer(peer_id)
        link = self._add_link(peer_id, host, port)
        if self._started and not self._closing:
            self._spawn(link)

    def remove_peer(self, peer_id: str) -> None:
        """Stop talking to a peer: drop its queue and close its connections."""
        link = self._links.pop(peer_id, None)
        if link is not None and link.task is not None:
            link.task.cancel()
        writer = self._incoming.pop(peer_id, None)
        if writer is not None:
            writer.close()

    @property
    def peer_ids(self) -> tuple[str, ...]:
        return tuple(self._links)

    def _add_link(self, peer_id: str, host: str, port: int) -> _Link:
        if peer_id == self.node_id:
            raise ValueError(f"a node is not its own peer: {peer_id!r}")
        link = _Link(peer_id, host, port)
        self._links[peer_id] = link
        return link

    def _spawn(self, link: _Link) -> None:
        link.task = asyncio.get_running_loop().create_task(
            self._run_link(link), name=f"peer-link-{self.node_id}->{link.peer_id}"
        )

    # -- sending ---------------------------------------------------------------------

    def send(self, peer_id: str, payload: bytes) -> bool:
        """Queue ``payload`` for ``peer_id``; False (and counted) if the queue is full,
        the peer is unknown or the network is closed. Never blocks.

        Raises ValueError for an empty payload or one over ``frame_bytes_max``: those
        are bugs in the caller, not network conditions."""
        n = len(payload)
        if not 0 < n <= self.options.frame_bytes_max:
            raise ValueError(
                f"peer payload must be 1..{self.options.frame_bytes_max} bytes, got {n}"
            )
        link = self._links.get(peer_id)
        if link is None:
            self.network_counters.unknown_peer_sends += 1
            return False
        if (
            self._closing
            or len(link.queue) >= self.options.queue_frames_max
            or link.queued_bytes + n > self.options.queue_bytes_max
        ):
            link.counters.frames_dropped += 1
            return False
        link.queue.append(payload)
        link.queued_bytes += n
        link.counters.queued_frames = len(link.queue)
        link.wakeup.set()
        return True

    def broadcast(self, payload: bytes) -> int:
        """Queue ``payload`` for every peer; how many queues took it."""
        return sum(self.send(peer_id, payload) for peer_id in list(self._links))

    # -- observation -----------------------------------------------------------------

    def is_connected(self, peer_id: str) -> bool:
        """Whether the outgoing link to ``peer_id`` is up (HELLO answered)."""
        link = self._links.get(peer_id)
        return link is not None and link.up

    def counters(self, peer_id: str) -> PeerCounters:
        """A copy of the counters for one peer."""
        return dataclasses.replace(self._links[peer_id].counters)

    def totals(self) -> PeerCounters:
        """Counters summed over current peers."""
        total = PeerCounters()
        for link in self._links.values():
            for f in dataclasses.fields(PeerCounters):
                setattr(total, f.name, getattr(total, f.name) + getattr(link.counters, f.name))
        return total

    # -- outgoing links --------------------------------------------------------------

    async def _run_link(self, link: _Link) -> None:
        attempt = 0
        while not self._closing and self._links.get(link.peer_id) is link:
            try:
                await self._dial(link)
            except _CONNECTION_ERRORS as exc:
                # A dead peer fails every redial: say so once, then only at debug level.
                level = logging.INFO if link.up or attempt == 0 else logging.DEBUG
                log.log(level, "%s -> %s: %s", self.node_id, link.peer_id, _describe(exc))
            except Exception:
                # Never let one surprise end the dialler for good: log it and redial.
                log.exception("%s -> %s: unexpected error", self.node_id, link.peer_id)
            if link.up:
                log.info("%s -> %s: disconnected", self.node_id, link.peer_id)
                link.up = False
                link.counters.disconnects += 1
                self._tell_link(link.peer_id, False)
                attempt = 0
            else:
                link.counters.connect_failures += 1
                self._tell_link(link.peer_id, False)
            delay_ms = backoff_delay_ms(attempt, self.options, self._rng)
            attempt += 1
            await asyncio.sleep(delay_ms / 1000)

    async def _dial(self, link: _Link) -> None:
        timeout_s = self.options.connect_timeout_ms / 1000
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(
                link.host,
                link.port,
                ssl=self._client_ssl,
                server_hostname=link.peer_id,
                ssl_handshake_timeout=timeout_s,
                local_addr=self._source,
            )
        clean = False
        try:
            peercert = writer.get_extra_info("peercert")
            remote = peer_identity(peercert)
            if remote != link.peer_id:  # check_hostname already did; never rely on one check
                raise PeerIdentityError(f"dialled {link.peer_id!r} but reached {remote!r}")
            check_peer_address(peercert, link.host)
            writer.write(encode_frame(HELLO))
            async with asyncio.timeout(timeout_s):
                await writer.drain()
                answer = await _read_frame(reader, FrameDecoder(len(HELLO)), self.options)
            if answer != HELLO:
                raise PeerProtocolError(f"unexpected HELLO answer {answer[:32]!r}")
            link.up = True
            link.counters.connects += 1
            if link.ever_connected:
                link.counters.reconnects += 1
            link.ever_connected = True
            self._tell_link(link.peer_id, True)
            log.info("%s -> %s: connected", self.node_id, link.peer_id)
            await self._stream(link, reader, writer)
            clean = True
        finally:
            await _close_writer(writer, self.options, abort=not clean)

    async def _stream(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Drain the queue into the connection until either side fails or closes."""
        loop = asyncio.get_running_loop()
        pump = loop.create_task(self._pump(link, writer))
        watch = loop.create_task(_watch_closed(reader))
        try:
            done, _ = await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watch):
                task.cancel()
            await asyncio.gather(pump, watch, return_exceptions=True)
        for task in done:
            exc = task.exception()
            if exc is not None:
                raise exc

    async def _pump(self, link: _Link, writer: asyncio.StreamWriter) -> None:
        opts = self.options
        while True:
            while not link.queue:
                link.wakeup.clear()
                await link.wakeup.wait()
            batch: list[bytes] = []
            size = 0
            while link.queue and (not batch or size + len(link.queue[0]) <= opts.batch_bytes_max):
                payload = link.queue.popleft()
                batch.append(encode_frame(payload))
                size += len(payload)
            link.queued_bytes -= size
            link.counters.queued_frames = len(link.queue)
            try:
                writer.write(b"".join(batch))
                async with asyncio.timeout(opts.write_timeout_ms / 1000):
                    await writer.drain()
            except BaseException:
                link.counters.frames_dropped += len(batch)
                raise
            link.counters.frames_sent += len(batch)
            link.counters.bytes_sent += size

    def _tell_link(self, peer_id: str, up: bool) -> None:
        if self._on_link is not None:
            try:
                self._on_link(peer_id, up)
            except Exception:
                log.exception("%s: on_link callback failed", self.node_id)

    # -- incoming connections --------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        peer_id: str | None = None
        clean = False
        try:
            try:
                peercert = writer.get_extra_info("peercert")
                peer_id = peer_identity(peercert)
                check_peer_address(peercert, str(writer.get_extra_info("peername")[0]))
            except PeerIdentityError as exc:
                self.network_counters.rejected_connections += 1
                log.warning("%s: rejected peer connection: %s", self.node_id, exc)
                return
            link = self._links.get(peer_id)
            if link is None or self._closing:
                self.network_counters.rejected_connections += 1
                log.warning("%s: rejected connection from unknown node %r", self.node_id, peer_id)
                return
            clean = await self._serve(peer_id, link, reader, writer)
        except asyncio.CancelledError:
            pass  # close() or remove_peer(); the finally block tidies up
        except Exception:
            log.exception("%s <- %s: unexpected error", self.node_id, peer_id)
        finally:
            if peer_id is not None and self._incoming.get(peer_id) is writer:
                del self._incoming[peer_id]
            await _close_writer(writer, self.options, abort=not clean)
            self._handlers.discard(task)

    async def _serve(
        self,
        peer_id: str,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Deliver frames until the peer closes (True) or errs (False)."""
        opts = self.options
        decoder = FrameDecoder(opts.frame_bytes_max)
        try:
            async with asyncio.timeout(opts.connect_timeout_ms / 1000):
                frames = await _read_frames(reader, decoder, opts)
                if frames[0] != HELLO:
                    raise PeerProtocolError(f"expected HELLO, got {frames[0][:32]!r}")
                old = self._incoming.get(peer_id)
                if old is not None:
                    old.close()
                self._incoming[peer_id] = writer
                writer.write(encode_frame(HELLO))
                await writer.drain()
            self._deliver(peer_id, link, frames[1:])
            while True:
                data = await reader.read(opts.read_chunk_bytes)
                if not data:
                    return True
                self._deliver(peer_id, link, decoder.feed(data))
        except (FrameError, PeerProtocolError) as exc:
            link.counters.bad_frames += 1
            log.warning("%s <- %s: closing connection: %s", self.node_id, peer_id, exc)
        except (OSError, TimeoutError, EOFError) as exc:
            log.info("%s <- %s: %s", self.node_id, peer_id, _describe(exc))
        return False

    def _deliver(self, peer_id: str, link: _Link, frames: list[bytes]) -> None:
        for payload in frames:
            link.counters.frames_received += 1
            link.counters.bytes_received += len(payload)
            try:
                self._on_frame(peer_id, payload)
            except Exception:
                link.counters.callback_errors += 1
                log.exception("%s: on_frame failed for a frame from %s", self.node_id, peer_id)


def network_from_config(
    cfg: NodeConfig,
    on_frame: OnFrame,
    *,
    rng: random.Random,
    on_link: OnLink | None = None,
) -> PeerNetwork:
    """The peer network a node's config describes: its listen address, peers, TLS files
    and the ``peer_*`` limits. Raises ``node.runtime.keys.KeyFileError`` for a TLS key file that
    others can read, and ``OSError``/``ssl.SSLError`` for unreadable or mismatched TLS
    files."""
    tls_files = {"ca_cert": cfg.ca_cert, "cert": cfg.tls_cert, "key": cfg.tls_key}
    return PeerNetwork(
        cfg.node_id,
        cfg.peer_host,
        cfg.peer_port,
        {p.node_id: (p.host, p.port) for p in cfg.peers},
        server_context(**tls_files),
        client_context(**tls_files),
        on_frame,
        rng=rng,
        options=PeerOptions(
            frame_bytes_max=cfg.peer_frame_bytes_max,
            queue_frames_max=cfg.peer_queue_frames_max,
        ),
        on_link=on_link,
    )


async def _read_frames(
    reader: asyncio.StreamReader, decoder: FrameDecoder, options: PeerOptions
) -> list[bytes]:
    """Read until the decoder yields at least one frame; EOFError if the stream ends."""
    while True:
        data = await reader.read(options.read_chunk_bytes)
        if not data:
            raise EOFError("connection closed before a whole frame arrived")
        frames = decoder.feed(data)
        if frames:
            return frames


async def _read_frame(
    reader: asyncio.StreamReader, decoder: FrameDecoder, options: PeerOptions
) -> bytes:
    frames = await _read_frames(reader, decoder, options)
    if len(frames) != 1:
        raise PeerProtocolError("peer sent frames after HELLO on a send-only connection")
    return frames[0]


async def _watch_closed(reader: asyncio.StreamReader) -> None:
    """Return when the acceptor closes a send-only connection; fail if it sends data."""
    data = await reader.read(1)
    if data:
        raise PeerProtocolError("peer sent data on a send-only connection")


async def _close_writer(writer: asyncio.StreamWriter, options: PeerOptions, *, abort: bool) -> None:
    """Close a connection without waiting long. After an error (``abort``) the socket is
    dropped at once: a graceful close would first flush data a stalled peer never reads
    and then wait for a TLS close_notify a faulty peer never sends (asyncio's shutdown
    timeout is 30 s), holding the socket and delaying the redial."""
    if abort:
        writer.transport.abort()
        return
    writer.close()
    try:
        async with asyncio.timeout(options.connect_timeout_ms / 1000):
            await writer.wait_closed()
    except Exception:
        writer.transport.abort()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _is_one_address(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False
