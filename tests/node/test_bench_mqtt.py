"""``grantchain bench mqtt`` as a user runs it: a real Mosquitto, a real 3-node cluster,
the three runs and the HTTP latency baseline, and the JSON fields other tools read."""

from __future__ import annotations

import json

from tests.conftest import grantchain


def test_bench_mqtt_reports_both_paths_and_both_latencies() -> None:
    r = grantchain("bench", "mqtt", "--duration", "1", "--rate", "500", "--json", timeout_s=300)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert doc["nodes"] == 3 and doc["offered_txs_per_s"] == 500
    for run in ("http", "mqtt"):  # every offered tx committed, none failed
        assert doc[run]["committed"] == doc[run]["submitted"] == 500, doc[run]
        assert doc[run]["failed_batches"] == 0
    assert doc["mqtt_vs_http"] == round(
        doc["mqtt_committed_txs_per_s"] / doc["http_committed_txs_per_s"], 3
    )
    for run in ("latency_run", "http_latency_run"):  # 3 s at 1,000 txs/s
        assert doc[run]["committed"] == 3_000, doc[run]
        assert 0 < doc[run]["latency_ms_p50"] <= doc[run]["latency_ms_p99"]
    assert doc["latency_ms_p50_at_1000"] == doc["latency_run"]["latency_ms_p50"]
    assert doc["http_latency_ms_p50_at_1000"] == doc["http_latency_run"]["latency_ms_p50"]
    assert doc["latency_p50_vs_http"] == round(
        doc["latency_ms_p50_at_1000"] / doc["http_latency_ms_p50_at_1000"], 2
    )
