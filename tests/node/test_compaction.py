"""When the consensus thread snapshots: by entries, or by bytes for big entries."""

from __future__ import annotations

from node.consensus_driver.loop import COMPACT_EVERY_BYTES, COMPACT_EVERY_ENTRIES, should_compact


def test_the_log_is_compacted_by_entries_or_by_bytes() -> None:
    n = COMPACT_EVERY_ENTRIES
    assert not should_compact(100 + n, 100, 0)
    assert should_compact(101 + n, 100, 0)
    assert not should_compact(110, 100, COMPACT_EVERY_BYTES)
    assert should_compact(110, 100, COMPACT_EVERY_BYTES + 1)  # ten entries of big blocks
    assert not should_compact(100, 100, COMPACT_EVERY_BYTES + 1)  # nothing new to cover
