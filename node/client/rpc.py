"""``Client`` and ``AsyncClient``: a node's RPC over HTTP, with failover between URLs.

``Client`` follows writes to the leader only in the sense that any node accepts them
(followers forward); on a 503 or a connection error it tries the next URL it was given,
which is how a caller rides through a leader change.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import httpx

from chain.tx import Tx

TIMEOUT_S = 30.0


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


class _Failover:
    """The URL order shared by both clients: the one that answered last goes first."""

    def __init__(self, urls: str | Sequence[str]) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self._current = 0

    def _targets(self, failover: bool) -> list[tuple[int, str]]:
        n = len(self.urls) if failover else 1
        return [(a, self.urls[(self._current + a) % len(self.urls)]) for a in range(n)]

    def _accept(self, attempt: int, resp: httpx.Response) -> dict[str, Any]:
        result = _check(resp)
        self._current = (self._current + attempt) % len(self.urls)
        if not isinstance(result, dict):
            raise RpcError(200, "the node answered with something other than a JSON object", result)
        return result


class Client(_Failover):
    """Synchronous client. ``urls``: one node, or several to fail over between."""

    def __init__(self, urls: str | Sequence[str], *, timeout_s: float = TIMEOUT_S) -> None:
        super().__init__(urls)
        self._http = httpx.Client(timeout=timeout_s)

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
                return self._accept(attempt, self._http.request(method, url + path, **kw))
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


class AsyncClient(_Failover):
    """The asyncio twin of ``Client``."""

    def __init__(self, urls: str | Sequence[str], *, timeout_s: float = TIMEOUT_S) -> None:
        super().__init__(urls)
        self._http = httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(max_connections=64))

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
                return self._accept(attempt, await self._http.request(method, url + path, **kw))
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
