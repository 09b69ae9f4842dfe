"""``bench storage``'s per-decade rows: each names the append rate, the raw LMDB
baseline's rate in the same decade (its turns, the same moments of the disk), their
ratio, and the writer's phase seconds spent in that decade alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.storage import BLOCK_TXS, RawLmdb, _sign_range, append_all, decade_curve
from storage.lmdb_store import APPEND_PHASES


def test_each_decade_has_its_own_baseline_and_phases(tmp_path: Path) -> None:
    txs = _sign_range((0, 4 * BLOCK_TXS))
    decades: list[dict[str, Any]] = []
    phases: dict[str, float] = {}
    raw = RawLmdb(tmp_path / "raw")
    try:
        append_all(tmp_path / "store", txs, phases, decades, 2 * BLOCK_TXS, raw)
    finally:
        raw.close()
    assert [d["txs"] for d in decades] == [2 * BLOCK_TXS, 4 * BLOCK_TXS]
    for d in decades:
        assert d["raw_lmdb_append_txs_per_s"] > 0
        # the ratio is the two rates' (rounding aside)
        ratio = d["raw_lmdb_append_txs_per_s"] / d["append_txs_per_s"]
        assert abs(d["append_vs_raw_lmdb"] - 1 / ratio) < 0.01 * max(1.0, 1 / ratio)
        assert set(d["writer_phases_s"]) == set(APPEND_PHASES)
        assert all(v >= 0 for v in d["writer_phases_s"].values())
    # the decades' phases are deltas: they add up to the whole run's
    for k in APPEND_PHASES:
        total = sum(d["writer_phases_s"][k] for d in decades)
        assert abs(total - phases[f"writer_{k}"]) < 0.01
    # the baseline appended every tx, in turns
    assert raw._next == len(txs)


def test_the_curve_compares_the_last_decade_with_the_first() -> None:
    """``decade_curve``: the append rate's, the baseline's and the ratio's last-over-first;
    nothing for one decade, no baseline fields where a decade has no baseline."""
    rows = [
        {
            "txs": 1,
            "append_txs_per_s": 600,
            "raw_lmdb_append_txs_per_s": 1200,
            "append_vs_raw_lmdb": 0.5,
        },
        {
            "txs": 2,
            "append_txs_per_s": 450,
            "raw_lmdb_append_txs_per_s": 750,
            "append_vs_raw_lmdb": 0.6,
        },
    ]
    assert decade_curve(rows) == {
        "last_decade_vs_first": 0.75,
        "raw_lmdb_last_decade_vs_first": 0.625,
        "append_vs_raw_last_decade_vs_first": 1.2,
    }
    assert decade_curve(rows[:1]) == {}
    bare = [{"txs": 1, "append_txs_per_s": 600}, {"txs": 2, "append_txs_per_s": 300}]
    assert decade_curve(bare) == {"last_decade_vs_first": 0.5}
