"""Queries that scan (history, grants, violations, the report) run off the event loop,
two at a time at most (issue 15 §4): while they run, the node still answers everything
else, and a third scan is told to come back (503, Retry-After)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, cast

from aiohttp.test_utils import TestClient, TestServer

from node.api.routes import SCANS_IN_FLIGHT_MAX, make_app
from node.api.service import NodeService


class _BlockedView:
    """A read transaction that holds its worker until the test lets it go."""

    def __init__(self, entered: threading.Semaphore, release: threading.Event) -> None:
        self.entered, self.release = entered, release

    def __enter__(self) -> _BlockedView:
        self.entered.release()
        assert self.release.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def get(self, key: bytes) -> None:
        return None

    def range(self, start: bytes, end: bytes | None) -> Any:
        return iter(())


class _Store:
    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def snapshot(self) -> _BlockedView:
        return _BlockedView(self.entered, self.release)


class _Node:
    def __init__(self) -> None:
        self.store = _Store()


async def _run() -> None:
    node = _Node()
    async with TestClient(TestServer(make_app(cast(NodeService, node)))) as client:
        scans = [
            asyncio.create_task(client.get("/v1/violations")),
            asyncio.create_task(client.get("/v1/audit/report")),
        ]
        assert len(scans) == SCANS_IN_FLIGHT_MAX
        for _ in scans:  # both are on worker threads, holding their read transactions
            assert await asyncio.to_thread(node.store.entered.acquire, True, 30)
        kinds = await client.get("/v1/kinds")  # the loop is free
        assert kinds.status == 200
        third = await client.get("/v1/grants", params={"dataset": "org1/x"})
        assert third.status == 503 and third.headers["Retry-After"] == "1"
        assert "scanning queries" in (await third.json())["error"]
        node.store.release.set()
        done = [await s for s in scans]
        assert [r.status for r in done] == [200, 200]
        report = await done[1].json()
        assert report["total"] == 0 and report["complete"] is True


def test_scans_run_off_the_loop_two_at_a_time() -> None:
    asyncio.run(_run())
