"""Schemathesis against ``/openapi.json`` of a running node (issue 15 §6): requests made
from the documented API, valid and not, never get a server error, and every 4xx is a
JSON object whose ``error`` names the problem. Both of schemathesis's modes: requests
that fit the schema, and requests that break it (wrong types, missing parameters).

The operations are driven through Hypothesis directly (``as_strategy``): schemathesis's
own pytest plugin does not run under pytest 9."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from node.client import Client
from node.cluster.scenario import run_story
from tests.node.clusters import running_cluster

EXAMPLES_PER_OPERATION = 25
BUSY = 503  # scanning queries two at a time, a full mempool: documented back-pressure


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    with running_cluster(tmp_path_factory.mktemp("fuzz")) as manifest:
        urls = [n.rpc_url for n in manifest.nodes]
        with Client(urls) as client:  # something to find: the demo's story
            run_story(manifest, client, say=lambda _: None)
        schema = schemathesis.openapi.from_url(urls[0] + "/openapi.json")
        # An SSE stream never ends by itself; its parameters are checked in test_stream.
        yield urls[0], schema.exclude(path="/v1/stream/blocks")


def _check(url: str, case: Any, seen: list[str]) -> None:
    seen.append(f"{case.method} {case.path}")
    response = case.call(base_url=url, timeout=30)
    status = response.status_code
    where = f"{case.method} {case.formatted_path} {case.query} -> {status}"
    assert status < 500 or status == BUSY, (where, response.text[:500])
    if 400 <= status < 500 or status == BUSY:
        content_type = "".join(response.headers.get("content-type", []))  # a list here
        if not content_type.startswith("application/json"):
            # Refused by aiohttp's HTTP parser before any route (a request line over
            # 8 KiB): plain text, which still says what is wrong.
            assert status == 400 and "bytes when reading" in response.text, (where, response.text)
            return
        doc = response.json()
        assert isinstance(doc, dict) and isinstance(doc.get("error"), str), (where, doc)
        assert len(doc["error"]) >= 8, (where, doc)


def test_no_server_error_and_every_4xx_names_its_problem(api: tuple[str, Any]) -> None:
    url, schema = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20  # the whole documented API, not a corner of it
    seen: list[str] = []
    for op, mode in itertools.product(operations, schemathesis.GenerationMode):

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],  # a failure is reported, not shrunk
        )
        @given(op.as_strategy(mode))
        def fuzz(case: Any) -> None:
            _check(url, case, seen)

        try:
            fuzz()
        except Unsatisfiable:  # nothing of this operation's requests can break its schema
            assert mode is schemathesis.GenerationMode.NEGATIVE, op.label
    assert {f"{op.method.upper()} {op.path}" for op in operations} <= set(seen)
    assert len(seen) >= 10 * len(operations), len(seen)
