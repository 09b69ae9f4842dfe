"""The commit stream (issue 16 §3): the SSE parser and the client's sequence checks as
pure units, then ``GET /v1/stream/blocks`` on a real 3-node cluster, read with curl-like
raw HTTP, with ``Client.stream`` and ``AsyncClient.stream`` (resuming on another node
after a SIGKILL), and with ``grantchain query stream``."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from node.client import AsyncClient, Client, StreamError
from node.client.block_stream import BlockSequence, StreamInterrupted
from node.client.sse import SseError, SseEvent, SseParser
from node.cluster.consortium import Manifest
from node.cluster.local import stop_node
from tests.conftest import grantchain
from tests.node.clusters import register_dataset, running_cluster, wait_converged

# -- the parser (WHATWG HTML §9.2.6) ---------------------------------------------------


def _feed_all(chunks: list[bytes]) -> list[SseEvent]:
    p = SseParser()
    return [e for c in chunks for e in p.feed(c)]


def test_parser_reads_fields_comments_and_multi_line_data() -> None:
    raw = b": hello\nid: 3\nevent: block\ndata: a\ndata:b\n\ndata: c\n\n"
    events = _feed_all([raw])
    assert events == [SseEvent("block", "a\nb", "3"), SseEvent("message", "c", "3")]


def test_parser_takes_any_line_end_and_any_chunking() -> None:
    raw = b"\xef\xbb\xbfid: 1\r\nevent: block\r\ndata: x\r\n\r\nid: 2\rdata: y\r\r"
    want = [SseEvent("block", "x", "1"), SseEvent("message", "y", "2")]
    assert _feed_all([raw]) == want
    for cut in range(1, len(raw)):  # a CRLF split between chunks is one line end
        assert _feed_all([raw[:cut], raw[cut:]]) == want, cut
    assert _feed_all([bytes([b]) for b in raw]) == want


def test_parser_drops_an_unfinished_event_and_an_event_without_data() -> None:
    assert _feed_all([b"event: block\n\n", b"data: never finished\n"]) == []


def test_parser_bounds_what_it_buffers() -> None:
    p = SseParser(bytes_max=100)
    with pytest.raises(SseError):
        p.feed(b"data: " + b"x" * 200)
    p = SseParser(bytes_max=100)
    with pytest.raises(SseError):
        for _ in range(20):
            p.feed(b"data: " + b"x" * 10 + b"\n")


# -- the client's promise ----------------------------------------------------------------


def _block(height: int) -> SseEvent:
    return SseEvent("block", json.dumps({"height": height}), str(height))


def test_sequence_learns_its_start_and_refuses_gaps_and_repeats() -> None:
    seq = BlockSequence(None)
    assert seq.params() == {}
    seq.started({"X-Grantchain-From-Height": "5"})
    assert seq.params() == {"from_height": 5}
    assert seq.block(_block(5)) == {"height": 5}
    assert seq.block(SseEvent("other", "{}", None)) is None
    with pytest.raises(StreamError, match="repeat"):
        seq.block(_block(5))
    with pytest.raises(StreamError, match="gap"):
        seq.block(_block(7))
    with pytest.raises(StreamError, match="starts it at 9"):
        seq.started({"X-Grantchain-From-Height": "9"})
    with pytest.raises(StreamInterrupted):
        seq.block(SseEvent("error", '{"error": "x"}', None))
    with pytest.raises(StreamError, match="not JSON"):
        seq.block(SseEvent("block", "{", None))
    with pytest.raises(ValueError):
        BlockSequence(0)


# -- on a real cluster -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manifest]:
    with running_cluster(tmp_path_factory.mktemp("stream")) as manifest:
        with Client([n.rpc_url for n in manifest.nodes]) as c:
            for i in range(3):
                register_dataset(c, manifest, "org1", f"stream-{i}")
        wait_converged(manifest)
        yield manifest


def _raw_events(url: str, count: int, **kw: Any) -> tuple[httpx.Headers, list[SseEvent]]:
    parser = SseParser()
    out: list[SseEvent] = []
    with httpx.stream("GET", url + "/v1/stream/blocks", timeout=30, **kw) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        for chunk in resp.iter_bytes():
            out += [e for e in parser.feed(chunk) if e.event == "block"]
            if len(out) >= count:
                return resp.headers, out[:count]
    raise AssertionError(f"the stream ended after {len(out)} blocks")


def test_the_stream_sends_every_block_in_order_with_its_txs(cluster: Manifest) -> None:
    url = cluster.nodes[0].rpc_url
    head = httpx.get(url + "/v1/status").json()["height"]
    headers, events = _raw_events(url, head, params={"from_height": 1})
    assert headers["X-Grantchain-From-Height"] == "1"
    docs = [json.loads(e.data) for e in events]
    assert [d["height"] for d in docs] == list(range(1, head + 1))
    assert [e.id for e in events] == [str(h) for h in range(1, head + 1)]
    for d in docs:  # the same block as GET /v1/blocks/{h}
        full = httpx.get(f"{url}/v1/blocks/{d['height']}").json()
        assert d["hash"] == full["hash"]
        assert d["prev_hash"] == full["header"]["prev_hash"]
        assert [(t["tx_id"], t["result"]) for t in d["txs"]] == [
            (t["tx_id"], t["result"]) for t in full["txs"]
        ]
    kinds = [t["kind"] for d in docs for t in d["txs"]]
    assert kinds.count("dataset.register") == 3


def test_last_event_id_resumes_after_that_height_and_wins(cluster: Manifest) -> None:
    url = cluster.nodes[1].rpc_url
    headers, events = _raw_events(url, 1, params={"from_height": 1}, headers={"Last-Event-ID": "2"})
    assert headers["X-Grantchain-From-Height"] == "3"
    assert json.loads(events[0].data)["height"] == 3


@pytest.mark.parametrize(
    ("params", "headers", "needle"),
    [
        ({"from_height": "0"}, {}, "from_height must be in"),
        ({"from_height": "x"}, {}, "from_height must be an integer"),
        ({}, {"Last-Event-ID": "-1"}, "Last-Event-ID"),
        ({}, {"Last-Event-ID": "9" * 30}, "Last-Event-ID"),
    ],
)
def test_bad_resume_points_get_a_400_that_names_them(
    cluster: Manifest, params: dict[str, str], headers: dict[str, str], needle: str
) -> None:
    r = httpx.get(
        cluster.nodes[0].rpc_url + "/v1/stream/blocks", params=params, headers=headers, timeout=10
    )
    assert r.status_code == 400
    assert needle in r.json()["error"]


def test_a_new_block_arrives_on_a_stream_opened_from_now(cluster: Manifest) -> None:
    urls = [n.rpc_url for n in cluster.nodes]
    parser = SseParser()
    with httpx.stream("GET", urls[2] + "/v1/stream/blocks", timeout=30) as resp:
        start = int(resp.headers["X-Grantchain-From-Height"])
        chunks = resp.iter_bytes()
        assert parser.feed(next(chunks)) == []  # the stream is open: 'retry' and a comment
        answers: list[dict[str, Any]] = []
        writer = threading.Thread(
            target=lambda: answers.append(register_dataset(Client(urls), cluster, "org2", "late"))
        )
        writer.start()
        events: list[SseEvent] = []
        while not events:
            events = [e for e in parser.feed(next(chunks)) if e.event == "block"]
        writer.join(timeout=60)
    assert json.loads(events[0].data)["height"] == start
    assert answers and answers[0]["height"] >= start


def test_async_client_stream(cluster: Manifest) -> None:
    async def take(n: int) -> list[int]:
        async with AsyncClient(cluster.nodes[0].rpc_url) as c:
            heights: list[int] = []
            async for doc in c.stream(from_height=2):
                heights.append(doc["height"])
                if len(heights) == n:
                    return heights
        raise AssertionError("unreachable")

    assert asyncio.run(take(3)) == [2, 3, 4]


def test_cli_query_stream_prints_json_lines(cluster: Manifest) -> None:
    url = cluster.nodes[0].rpc_url
    done = grantchain("query", "stream", "--from-height", "1", "--count", "3", "--url", url)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert [json.loads(line)["height"] for line in out.splitlines()] == [1, 2, 3]


def test_client_stream_resumes_on_another_node_after_a_sigkill(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Its own cluster: one node is killed under the reader, which must go on from the
    block due on the next URL, no gap, no repeat, and see blocks committed after."""
    with running_cluster(tmp_path_factory.mktemp("stream-kill")) as manifest:
        urls = [n.rpc_url for n in manifest.nodes]
        with Client(urls) as c:
            register_dataset(c, manifest, "org1", "before")
        wait_converged(manifest)
        victim = manifest.nodes[0]
        heights: list[int] = []
        tx_ids: list[str] = []
        with Client(urls, timeout_s=5) as reader:
            stream = reader.stream(from_height=1)
            head = httpx.get(urls[0] + "/v1/status").json()["height"]
            while not heights or heights[-1] < head:
                doc = next(stream)
                heights.append(doc["height"])
            stop_node(victim, kill=True)  # SIGKILL under an open stream
            with Client(urls[1:]) as writer:
                after = register_dataset(writer, manifest, "org2", "after")
            # Committed, or the loop below would wait for its block for ever. (It was
            # once "pending": forwarded to the leader just killed, and lost.)
            assert after["status"] == "committed", after
            while after["tx_id"] not in tx_ids:
                doc = next(stream)
                heights.append(doc["height"])
                tx_ids += [t["tx_id"] for t in doc["txs"]]
        assert heights == list(range(1, heights[-1] + 1))
        assert heights[-1] >= after["height"]


def test_openapi_documents_the_stream(cluster: Manifest) -> None:
    doc = httpx.get(cluster.nodes[0].rpc_url + "/openapi.json").json()
    op = doc["paths"]["/v1/stream/blocks"]["get"]
    assert "text/event-stream" in op["responses"]["200"]["content"]
    assert {p["name"] for p in op["parameters"]} == {"from_height", "Last-Event-ID"}
