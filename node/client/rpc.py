"""``Client`` and ``AsyncClient``: a node's RPC over HTTP, with failover between URLs.

Given a ``signer`` (``node.client.request_auth.RequestSigner``: an identity's key and the
chain id) every request is signed, as a node with ``rpc_auth = "members"`` requires; given
``ca_cert`` (the consortium's CA bundle) ``https://`` URLs are verified against it.
``tls_server_name`` checks a node's certificate against a name other than the URL's host
(the node id its certificate names, when the node is reached by a Kubernetes Service name
or an IP address the certificate does not carry): one name for every URL, or one per URL.

``Client`` follows writes to the leader only in the sense that any node accepts them
(followers forward); on a 503 or a connection error it tries the next URL it was given,
which is how a caller rides through a leader change.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from chain.tx import Tx
from node.client.block_stream import HEADERS as STREAM_HEADERS
from node.client.block_stream import PATH as STREAM_PATH
from node.client.block_stream import BlockSequence, StreamError, StreamInterrupted
from node.client.sse import SseParser

CaCert = str | Path | None
ServerNames = str | Sequence[str] | None

TIMEOUT_S = 30.0
STREAM_READ_TIMEOUT_S = 45.0
"""Silence after which a stream is taken for dead and resumed elsewhere: the node sends a
keep-alive every 15 s (``node.api.stream.KEEPALIVE_S``)."""
STREAM_GIVE_UP_S = 60.0
"""How long ``stream`` keeps trying when no node delivers a block, before it raises."""
STREAM_BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class RpcError(Exception):
    """The node answered with an error; ``status`` is the HTTP code."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.body = body


def _body(txs: Sequence[Tx | bytes]) -> dict[str, Any]:
    return {
        "txs": [base64.b64encode(t.to_bytes() if isinstance(t, Tx) else t).decode() for t in txs]
    }


def _check(resp: httpx.Response) -> Any:
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if resp.status_code >= 400:
        message = doc.get("error", resp.text) if isinstance(doc, dict) else resp.text
        raise RpcError(resp.status_code, message, doc)
    return doc


def _submit_params(wait: bool, timeout_ms: int) -> dict[str, Any]:
    return {"wait": "commit", "timeout_ms": timeout_ms} if wait else {}


def _retryable(exc: Exception) -> Exception:
    """Connection trouble and 503 (no leader, mempool full) move on to the next URL;
    any other error is the answer."""
    if isinstance(exc, RpcError) and exc.status != 503:
        raise exc
    return exc


def _stream_failure(exc: Exception) -> Exception:
    """What ends one stream connection and moves to the next URL: connection trouble, a
    503 (the node serves too many streams), the node ending the stream. A broken promise
    (``StreamError``) or another HTTP error is the answer."""
    if isinstance(exc, StreamError):
        raise exc
    return _retryable(exc)


def tls_verify(ca_cert: CaCert) -> ssl.SSLContext | bool:
    """What httpx verifies servers with: the consortium's CA bundle if given, else the
    system's trust store."""
    if ca_cert is None:
        return True
    return ssl.create_default_context(cafile=str(ca_cert))


def server_names(urls: Sequence[str], names: ServerNames) -> dict[str, str]:
    """URL -> the name its certificate is checked against, where it is not the URL's
    host. ``names``: one for every URL, or one per URL in the same order."""
    if names is None:
        return {}
    if isinstance(names, str):
        return {u: names for u in urls}
    if len(names) != len(urls):
        raise ValueError(
            f"tls_server_name: {len(names)} names for {len(urls)} URLs "
            "(give one name for all, or one per URL in the same order)"
        )
    return dict(zip(urls, names, strict=True))


class _Failover:
    """The URL order shared by both clients: the one that answered last goes first."""

    def __init__(self, urls: str | Sequence[str], tls_server_name: ServerNames = None) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self._current = 0
        self._server_names = server_names(self.urls, tls_server_name)

    def _tls(self, url: str) -> dict[str, Any]:
        """The request extension that checks ``url``'s certificate against its server
        name (httpcore's ``sni_hostname``: the name sent in SNI and verified)."""
        name = self._server_names.get(url)
        return {"extensions": {"sni_hostname": name}} if name is not None else {}

    def _targets(self, failover: bool) -> list[tuple[int, str]]:
        n = len(self.urls) if failover else 1
        return [(a, self.urls[(self._current + a) % len(self.urls)]) for a in range(n)]

    def _accept(self, attempt: int, resp: httpx.Response) -> dict[str, Any]:
        result = _check(resp)
        self._current = (self._current + attempt) % len(self.urls)
        if not isinstance(result, dict):
            raise RpcError(200, "the node answered with something other than a JSON object", result)
        return result


class _StreamSession:
    """The bookkeeping of one ``stream`` call, shared by both clients: where to resume,
    which URL next, the parser of the current connection, and the back-off."""

    def __init__(self, client: _Failover, from_height: int | None, timeout_s: float) -> None:
        self.client = client
        self.seq = BlockSequence(from_height)
        self.timeout = httpx.Timeout(timeout_s, read=max(timeout_s, STREAM_READ_TIMEOUT_S))
        self.failures = 0
        self.since = time.monotonic()
        self.parser = SseParser()

    def target(self) -> tuple[str, dict[str, Any]]:
        url = self.client.urls[self.client._current]
        kw = {"params": self.seq.params(), "headers": STREAM_HEADERS, "timeout": self.timeout}
        return url + STREAM_PATH, kw | self.client._tls(url)

    def opened(self, resp: httpx.Response) -> None:
        """After the body of an error answer was read: check it, and start parsing."""
        if resp.status_code >= 400:
            _check(resp)
        self.seq.started(resp.headers)
        self.parser = SseParser()

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        docs = [d for e in self.parser.feed(chunk) if (d := self.seq.block(e)) is not None]
        if docs:
            self.failures, self.since = 0, time.monotonic()
        return docs

    def failed(self, exc: Exception) -> float:
        """After a failed connection: the pause before the next one, or raise ``exc``
        when no block came for ``STREAM_GIVE_UP_S``. The pause only grows once every URL
        has failed in a row."""
        last = _stream_failure(exc)
        urls = self.client.urls
        self.client._current = (self.client._current + 1) % len(urls)
        self.failures += 1
        if time.monotonic() - self.since > STREAM_GIVE_UP_S:
            raise last
        if self.failures < len(urls):
            return 0.0
        rounds = self.failures // len(urls) - 1
        return STREAM_BACKOFF_S[min(rounds, len(STREAM_BACKOFF_S) - 1)]


class Client(_Failover):
    """Synchronous client. ``urls``: one node, or several to fail over between."""

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        timeout_s: float = TIMEOUT_S,
        signer: httpx.Auth | None = None,
        ca_cert: CaCert = None,
        tls_server_name: ServerNames = None,
    ) -> None:
        super().__init__(urls, tls_server_name)
        self._timeout_s = timeout_s
        self._http = httpx.Client(timeout=timeout_s, auth=signer, verify=tls_verify(ca_cert))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(
        self, method: str, path: str, *, failover: bool = False, **kw: Any
    ) -> dict[str, Any]:
        last: Exception | None = None
        for attempt, url in self._targets(failover):
            try:
                return self._accept(
                    attempt, self._http.request(method, url + path, **kw, **self._tls(url))
                )
            except (httpx.TransportError, RpcError) as exc:
                last = _retryable(exc)
        assert last is not None
        raise last

    def status(self) -> dict[str, Any]:
        return self._request("GET", "/v1/status")

    def submit(
        self, txs: Sequence[Tx | bytes], *, wait: bool = False, timeout_ms: int = 10_000
    ) -> dict[str, Any]:
        return self._request(
            "POST",
            "/v1/txs",
            failover=True,
            json=_body(txs),
            params=_submit_params(wait, timeout_ms),
        )

    def tx(self, tx_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/txs/{tx_id}")

    def block(self, height: int) -> dict[str, Any]:
        return self._request("GET", f"/v1/blocks/{height}")

    def consistency_proof(self, first: int, second: int | None = None) -> dict[str, Any]:
        params = {"from": first} | ({"to": second} if second is not None else {})
        return self._request("GET", "/v1/proofs/consistency", params=params)

    def query(self, path: str, **params: Any) -> dict[str, Any]:
        """Any GET query endpoint, e.g. ``query("/v1/access", org=..., dataset=..., purpose=...)``."""
        clean = {k: v for k, v in params.items() if v is not None}
        return self._request("GET", path, params=clean)

    def stream(self, from_height: int | None = None) -> Iterator[dict[str, Any]]:
        """Committed blocks as they commit (``GET /v1/stream/blocks``), from
        ``from_height`` (default: the next block to commit), each a dict as the stream
        sends it: height, hash, header fields and ``txs`` with kinds and results.

        Never ends by itself: when a node stops or goes silent the stream resumes on the
        next URL from the block due, and the heights it yields are consecutive, never
        repeated (``StreamError`` if a node breaks that). Raises the last error when no
        node has delivered for ``STREAM_GIVE_UP_S``."""
        session = _StreamSession(self, from_height, self._timeout_s)
        while True:
            url, kw = session.target()
            try:
                with self._http.stream("GET", url, **kw) as resp:
                    if resp.status_code >= 400:
                        resp.read()
                    session.opened(resp)
                    for chunk in resp.iter_bytes():
                        yield from session.feed(chunk)
                raise StreamInterrupted(f"{url} closed the stream")
            except (httpx.TransportError, RpcError, StreamInterrupted) as exc:
                pause_s = session.failed(exc)
            if pause_s:
                time.sleep(pause_s)  # back-off between reconnection rounds


class AsyncClient(_Failover):
    """The asyncio twin of ``Client``."""

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        timeout_s: float = TIMEOUT_S,
        signer: httpx.Auth | None = None,
        ca_cert: CaCert = None,
        tls_server_name: ServerNames = None,
    ) -> None:
        super().__init__(urls, tls_server_name)
        self._timeout_s = timeout_s
        self._http = httpx.AsyncClient(
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=64),
            auth=signer,
            verify=tls_verify(ca_cert),
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self, method: str, path: str, *, failover: bool = False, **kw: Any
    ) -> dict[str, Any]:
        last: Exception | None = None
        for attempt, url in self._targets(failover):
            try:
                return self._accept(
                    attempt, await self._http.request(method, url + path, **kw, **self._tls(url))
                )
            except (httpx.TransportError, RpcError) as exc:
                last = _retryable(exc)
        assert last is not None
        raise last

    async def status(self) -> dict[str, Any]:
        return await self._request("GET", "/v1/status")

    async def submit(
        self, txs: Sequence[Tx | bytes], *, wait: bool = False, timeout_ms: int = 10_000
    ) -> dict[str, Any]:
        return await self._request(
            "POST",
            "/v1/txs",
            failover=True,
            json=_body(txs),
            params=_submit_params(wait, timeout_ms),
        )

    async def tx(self, tx_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/v1/txs/{tx_id}")

    async def query(self, path: str, **params: Any) -> dict[str, Any]:
        clean = {k: v for k, v in params.items() if v is not None}
        return await self._request("GET", path, params=clean)

    async def stream(self, from_height: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """The asyncio twin of ``Client.stream``."""
        session = _StreamSession(self, from_height, self._timeout_s)
        while True:
            url, kw = session.target()
            try:
                async with self._http.stream("GET", url, **kw) as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                    session.opened(resp)
                    async for chunk in resp.aiter_bytes():
                        for doc in session.feed(chunk):
                            yield doc
                raise StreamInterrupted(f"{url} closed the stream")
            except (httpx.TransportError, RpcError, StreamInterrupted) as exc:
                pause_s = session.failed(exc)
            if pause_s:
                await asyncio.sleep(pause_s)  # back-off between reconnection rounds
