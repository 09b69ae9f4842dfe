"""``grantchain bench acl`` runs end to end on a tiny workload and ends with one JSON line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from benchmarks.acl import command


def test_bench_acl_prints_json_last(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        command, ["--blocks", "1", "--txs-per-block", "50", "--data-dir", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["access"]["state_lmdb_txs_per_s"] > 0
    assert (
        report["access"]["results"]["accepted"] + report["access"]["results"].get("no_grant", 0)
        == 50
    )
    assert set(report["mixed"]["results"]) <= {"accepted", "no_grant"}
