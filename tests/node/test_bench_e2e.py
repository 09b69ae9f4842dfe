"""``grantchain bench e2e`` as a user runs it: a real 3-node cluster, both phases, and the
JSON fields other tools read."""

from __future__ import annotations

import json

import pytest

from tests.conftest import grantchain


def test_bench_e2e_reports_throughput_latency_and_cpu() -> None:
    r = grantchain(
        "bench",
        "e2e",
        "--duration",
        "1",
        "--rate",
        "500",
        "--block-txs-max",
        "100",
        "--json",
        timeout_s=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert doc["nodes"] == 3 and doc["offered_txs_per_s"] == 500 and doc["block_txs_max"] == 100
    assert doc["committed_at_1000"] == 3_000  # every tx of the 3 s latency phase
    assert 0 < doc["committed_txs_per_s"] <= 600
    assert 0 < doc["latency_ms_p50"] <= doc["latency_ms_p99"]
    assert 0 < doc["latency_ms_p50_at_1000"] <= doc["latency_ms_p99_at_1000"]
    assert set(doc["cpu_s_per_node"]) == {"n1", "n2", "n3"}
    assert all(s > 0 for s in doc["cpu_s_per_node"].values())
    assert doc["vs_target_20000"] == round(doc["committed_txs_per_s"] / 20_000, 3)


def test_bench_e2e_on_pbft_with_the_raft_baseline_of_the_same_run() -> None:
    r = grantchain(
        "bench", "e2e", "--consensus", "pbft", "--baseline", "raft", "--duration", "1",
        "--rate", "500", "--block-txs-max", "100", "--json",
        timeout_s=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert (doc["consensus"], doc["nodes"]) == ("pbft", 4)
    assert set(doc["cpu_s_per_node"]) == {"n1", "n2", "n3", "n4"}
    committed = doc["committed_txs_per_s"] * doc["duration_s"]
    assert doc["cpu_ms_per_committed_tx"] == pytest.approx(
        sum(doc["cpu_s_per_node"].values()) * 1000 / committed, rel=0.01
    )
    assert doc["committed_at_1000"] == 3_000
    assert 0 < doc["committed_txs_per_s"] <= 600
    assert doc["vs_target_10000"] == round(doc["committed_txs_per_s"] / 10_000, 3)
    base = doc["baseline"]
    assert (base["consensus"], base["nodes"]) == ("raft", 3) and base["committed_at_1000"] == 3_000
    assert doc["ratio_to_baseline"] == round(
        doc["committed_txs_per_s"] / base["committed_txs_per_s"], 3
    )


def test_bench_e2e_secure_with_the_open_baseline_of_the_same_run() -> None:
    """Issue 15 §3: the authenticated path (reads for members, TLS, every load request
    signed and verified by the node) against an open, plain-HTTP run of the same
    invocation; every tx of both commits."""
    r = grantchain(
        "bench", "e2e", "--secure", "--auth-baseline", "--duration", "1", "--rate", "500",
        "--block-txs-max", "100", "--json",
        timeout_s=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert doc["rpc"] == "members+tls, signed" and doc["auth_baseline"]["rpc"] == "open"
    assert doc["committed_at_1000"] == doc["auth_baseline"]["committed_at_1000"] == 3_000
    assert doc["ratio_secure_to_open"] == round(
        doc["committed_txs_per_s"] / doc["auth_baseline"]["committed_txs_per_s"], 3
    )
