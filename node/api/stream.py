"""The commit stream: ``GET /v1/stream/blocks``, committed blocks and their tx results
pushed to apps and auditors as they commit, resumable from a height.

**Why Server-Sent Events** (``text/event-stream``, WHATWG HTML §9.2) rather than
WebSockets, long polling or gRPC streaming:

- The stream goes one way, node to reader, which is exactly what SSE is; nothing needs
  to flow back but the resume point, and that is the request itself.
- It is plain HTTP/1.1: a GET answered with a long chunked body. It passes the reverse
  proxies, load balancers and TLS terminators operators already put in front of the RPC
  (WebSocket upgrades often need their own proxy configuration, gRPC needs HTTP/2 end to
  end), and any client can read it: ``curl -N``, httpx, a browser's ``EventSource``.
- Resuming is part of the protocol: each event's ``id`` is the block height, and a
  client that reconnects sends the last one back as ``Last-Event-ID`` (``EventSource``
  does so by itself) to get exactly the blocks after it; ``?from_height=N`` does the
  same for clients that build URLs. ``Last-Event-ID`` wins when both are given: a
  reconnecting ``EventSource`` repeats the original URL, so the header is the newer
  position.
- Idle connections are kept open with comment lines (``: keep-alive``) every
  ``KEEPALIVE_S``, shorter than the usual proxy idle timeouts (nginx: 60 s).

Wire form, one event per block in height order, never a gap or a repeat::

    id: 7
    event: block
    data: {"height": 7, "hash": "..", "prev_hash": "..", "timestamp_ms": .., "proposer": "n1",
           "tx_count": 2, "state_root": "..", "log_size": 12,
           "txs": [{"tx_id": "..", "kind": "dataset.register", "result": "accepted"}, ..]}

(``data`` is one line; ``node.api.block_json.summary_json`` builds it, from the same
functions as ``GET /v1/blocks/{height}``). Where reads are for members, a member's stream
carries every block's header fields but only its own txs (``"txs_filtered": true``), as
``GET /v1/blocks/{height}`` answers it. The answer's ``X-Grantchain-From-Height``
header names the first height the stream will send, so a client that asked for "from
now" can resume elsewhere without a gap. A failure inside the stream (a damaged store)
ends it with an ``event: error`` whose data is ``{"error": ".."}``.

Bounds:

- At most ``STREAMS_MAX`` open streams per node; the next request is answered 503 with
  a JSON error and ``Retry-After`` (a reader can try another node).
- Past blocks are read and encoded on this module's own ``READ_THREADS`` threads, off
  the event loop: a reader starting from genesis decodes, hashes and encodes every block
  (up to ``chain.limits.BLOCK_BYTES_MAX`` each). Catch-ups queue behind each other there,
  not in front of the RPC or the receipts (``Node.io``). One read takes at most
  ``READ_BLOCKS_MAX`` blocks or ``READ_BATCH_BYTES`` of events (or one block's event,
  if that alone is bigger), which bounds a stream's memory.
- A slow reader slows only its own connection: ``await resp.write`` waits for the
  socket to drain (TCP back-pressure), and the commit path never waits for a stream: new
  blocks are awaited with ``NodeService.wait_for_height`` and read from the store.
- A reader that leaves is noticed within ``IDLE_CHECK_S`` while its stream is idle (the
  transport closes) or at the next write; its slot is released, and
  ``wait_for_height`` drops its waiter on timeout or cancel, so nothing is left behind.
- On node shutdown every stream ends within ``IDLE_CHECK_S`` (``on_shutdown``), so the
  server's graceful shutdown does not wait on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import orjson
from aiohttp import web

from acl.read_policy import Reader, sees_sender
from chain.block import Block
from node.api import auth
from node.api.block_json import summary_json
from node.api.params import bad_request, int_param
from node.api.read_guard import SenderOrgs
from node.api.service import NodeService

log = logging.getLogger("grantchain.rpc")

PATH = "/v1/stream/blocks"
STREAMS_MAX = 64
"""Open streams per node; read when the app is made (``add_routes``)."""
KEEPALIVE_S = 15.0
IDLE_CHECK_S = 1.0
READ_THREADS = 2
READ_BLOCKS_MAX = 64
READ_BATCH_BYTES = 1024 * 1024
RETRY_MS = 2000
"""The reconnection delay an ``EventSource`` is told to use (the ``retry:`` field)."""
FROM_HEADER = "X-Grantchain-From-Height"
HEIGHT_MAX = 2**63 - 2
_EVENT_ID = re.compile(r"[0-9]{1,19}")


def event_bytes(block: Block, keep: Callable[[bytes], bool] | None = None) -> bytes:
    """One SSE event for a block (orjson never writes a newline, so ``data`` is one line);
    with ``keep``, only the txs it keeps (a member's stream: its own txs, and
    ``"txs_filtered": true``)."""
    doc = summary_json(block)
    if keep is not None:
        doc["txs"] = [t for t, raw in zip(doc["txs"], block.txs, strict=True) if keep(raw)]
        doc["txs_filtered"] = True
    return b"id: %d\nevent: block\ndata: " % block.header.height + orjson.dumps(doc) + b"\n\n"


class Streams:
    """The commit streams of one node's app: the slots, the readers' threads and the
    shutdown signal."""

    def __init__(self, node: NodeService, limit: int) -> None:
        self.node = node
        self.limit = limit
        self.active = 0
        self.closing = False
        self._pool: ThreadPoolExecutor | None = None

    def _reader(self) -> ThreadPoolExecutor:
        if self._pool is None:  # threads only once a stream reads
            self._pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="stream")
        return self._pool

    async def on_shutdown(self, app: web.Application) -> None:
        self.closing = True

    async def on_cleanup(self, app: web.Application) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def start_height(self, request: web.Request) -> int:
        """Where the stream starts: after ``Last-Event-ID`` if sent, else ``from_height``,
        else the block after the head."""
        first = int_param(request, "from_height", self.node.store.height + 1, 1, HEIGHT_MAX)
        last_id = request.headers.get("Last-Event-ID")
        if last_id is None:
            return first
        last_id = last_id.strip()
        if not _EVENT_ID.fullmatch(last_id) or int(last_id) >= HEIGHT_MAX:
            raise bad_request(
                f"Last-Event-ID must be the height of a block already received "
                f"(an integer in [0, {HEIGHT_MAX - 1}]), got {last_id[:40]!r}"
            )
        return int(last_id) + 1

    async def handle(self, request: web.Request) -> web.StreamResponse:
        start = self.start_height(request)
        if self.active >= self.limit:
            return web.json_response(
                {
                    "error": f"this node already serves {self.active} block streams, its "
                    f"limit; retry later or stream from another node",
                    "streams_max": self.limit,
                },
                status=503,
                headers={"Retry-After": "5"},
            )
        self.active += 1
        try:
            return await self._serve(request, start, auth.reader_of(request))
        finally:
            self.active -= 1

    def _read(self, first: int, head: int, reader: Reader | None) -> tuple[bytes, int]:
        """Events of the blocks from ``first`` (on a reader thread); the next height. A
        member's stream (``reader``) shows only its own txs, as ``/v1/blocks`` does
        (``node.api.read_guard``)."""
        out: list[bytes] = []
        size = 0
        height = first
        end = min(head, first + READ_BLOCKS_MAX - 1)
        with contextlib.ExitStack() as stack:
            keep = None
            if reader is not None and not reader.sees_all:
                orgs = SenderOrgs(stack.enter_context(self.node.store.snapshot()))
                keep = lambda raw: sees_sender(reader, orgs.of_tx(raw))  # noqa: E731
            while height <= end and size < READ_BATCH_BYTES:
                block = self.node.block(height)
                if block is None:
                    raise LookupError(f"block {height} is missing below the head {head}")
                out.append(event_bytes(block, keep))
                size += len(out[-1])
                height += 1
        return b"".join(out), height

    async def _serve(
        self, request: web.Request, start: int, reader: Reader | None
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # nginx: pass each event on, do not buffer
                FROM_HEADER: str(start),
            }
        )
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        node = self.node
        try:
            await resp.write(b"retry: %d\n: blocks from height %d\n\n" % (RETRY_MS, start))
            next_height = start
            idle_since = loop.time()
            while not self.closing:
                head = node.store.height
                if next_height <= head:
                    events, next_height = await loop.run_in_executor(
                        self._reader(), self._read, next_height, head, reader
                    )
                    await resp.write(events)  # waits while the reader's socket is full
                    idle_since = loop.time()
                    continue
                transport = request.transport
                if transport is None or transport.is_closing():
                    break  # the reader left
                idle_s = loop.time() - idle_since
                if idle_s >= KEEPALIVE_S:
                    await resp.write(b": keep-alive\n\n")
                    idle_since = loop.time()
                    idle_s = 0.0
                await node.wait_for_height(next_height, min(IDLE_CHECK_S, KEEPALIVE_S - idle_s))
        except ConnectionError:
            pass  # the reader left while we wrote
        except Exception as exc:
            log.exception("block stream from %d failed", start)
            error = orjson.dumps({"error": f"the stream failed on the node: {exc}"})
            with contextlib.suppress(ConnectionError):
                await resp.write(b"event: error\ndata: " + error + b"\n\n")
        return resp


def add_routes(app: web.Application, node: NodeService) -> None:
    """Serve the commit stream of ``node`` on ``app`` (before its catch-all route)."""
    streams = Streams(node, STREAMS_MAX)
    app.router.add_get(PATH, streams.handle, allow_head=False)  # a HEAD would never end
    app.on_shutdown.append(streams.on_shutdown)
    app.on_cleanup.append(streams.on_cleanup)
