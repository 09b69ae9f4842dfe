"""``/v1/audit/report`` over HTTP (issue 17): counted from the audit counters, it lists the
first violations and events of its range and names the explorer cursors that go on from
there; following them through ``/v1/explore/violations`` and ``/v1/explore/events`` gives
every violation and every event of the range exactly once, as many as the report counts."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from acl import audit_report as R
from acl import queries as q
from acl import samples
from acl.state import MemoryState
from node.api.routes import make_app
from node.api.service import NodeService
from tests.acl.helpers import LocalChain


class _View:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    def __enter__(self) -> _View:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        return None

    def get(self, key: bytes) -> bytes | None:
        return self._state.get(key)

    def range(self, start: bytes, end: bytes | None) -> Any:
        return self._state.range(start, end)


class _Store:
    def __init__(self, state: MemoryState) -> None:
        self.state = state

    def snapshot(self) -> _View:
        return _View(self.state)


class _Node:
    def __init__(self, state: MemoryState) -> None:
        self.store = _Store(state)


def _chain() -> tuple[LocalChain, list[int]]:
    traffic = samples.traffic(
        11, blocks=4, txs_per_block=40, mix="mixed", orgs=3, datasets_per_org=2,
        violation_share_pct=30,
    )  # fmt: skip
    chain = LocalChain(traffic.genesis)
    for block in traffic.setup + traffic.blocks:
        chain.apply(block.txs, block.timestamp_ms)
    return chain, [b.timestamp_ms for b in traffic.blocks]


async def _follow(client: TestClient, path: str, params: dict[str, Any], cursor: str) -> list[Any]:
    items: list[Any] = []
    while cursor is not None:
        resp = await client.get(path, params={**params, "cursor": cursor, "limit": 7})
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
    return items


async def _run(chain: LocalChain, times: list[int]) -> None:
    node = _Node(chain.state)
    async with TestClient(TestServer(make_app(cast(NodeService, node)))) as client:
        for a, b in ((0, 2**63 - 1), (times[1], times[-1])):
            params = {"from_ms": a, "until_ms": b}
            resp = await client.get("/v1/audit/report", params=params)
            assert resp.status == 200, await resp.text()
            report = await resp.json()
            assert report == q.audit_report_scan(chain.state, a, b).to_json()
            assert report["complete"] is True and report["next_from_ms"] is None
            assert report["violations_truncated"] and report["truncated"]
            rest = await _follow(
                client, "/v1/explore/violations", params, report["violations_next_cursor"]
            )
            violations = report["violations"] + rest
            assert len(violations) == report["by_result"]["no_grant"]
            assert len({v["tx"]["tx_id"] for v in violations}) == len(violations)
            more = await _follow(
                client, "/v1/explore/events", params, report["evidence_next_cursor"]
            )
            refs = report["evidence"] + [e["tx"] for e in more]
            assert len(refs) == report["total"] and len({r["tx_id"] for r in refs}) == len(refs)
            assert refs[0] == report["first"] and refs[-1] == report["last"]


def test_the_reports_cursors_go_on_through_the_explorer_lists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain, times = _chain()
    monkeypatch.setattr(R, "REPORT_VIOLATIONS_MAX", 4)
    monkeypatch.setattr(R, "REPORT_EVIDENCE_MAX", 9)
    asyncio.run(_run(chain, times))
