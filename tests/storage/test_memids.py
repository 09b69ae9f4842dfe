"""The tx index's ids in memory (``storage/memids.py``): every id added is found with its
own location, from any thread, whenever the lookup comes (before, between and after
the dict is caught up), and nothing else is."""

from __future__ import annotations

import os
import threading

from storage.memids import MemIds

LOC = 22


def _split(raw: bytes) -> list[bytes]:
    return [raw[i : i + LOC] for i in range(0, len(raw), LOC)]


def _block(n: int) -> tuple[list[bytes], list[bytes]]:
    return [os.urandom(32) for _ in range(n)], [os.urandom(LOC) for _ in range(n)]


def test_ids_added_a_block_at_a_time_are_found_with_their_locations() -> None:
    m = MemIds(_split)
    assert not m and len(m) == 0 and m.get(bytes(32)) is None
    assert not m.holds_any([bytes(32)])
    seen: list[tuple[bytes, bytes]] = []
    for n in (3, 1, 50, 7):
        ids, locs = _block(n)
        m.add(b"".join(ids), b"".join(locs))
        # The first lookup after each add catches the dict up with that block.
        assert m.get(ids[-1]) == locs[-1]
        seen += zip(ids, locs, strict=True)
        assert len(m) == len(seen) and m
    for tx_id, loc in seen:
        assert m.get(tx_id) == loc and tx_id in m
    other = os.urandom(32)
    assert m.get(other) is None and other not in m
    assert m.holds_any([other, seen[10][0]]) and not m.holds_any([other])
    assert [b"".join(i for i, _ in seen)] == [b"".join(ids for ids, _ in m.parts)]


def test_lookups_from_other_threads_while_blocks_are_added() -> None:
    """Readers catch the dict up while the writer adds: each finds every id of every
    block added before its lookup began."""
    m = MemIds(_split)
    blocks = [_block(40) for _ in range(200)]
    added = 0
    errors: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            upto = added
            for ids, locs in blocks[:upto][-5:]:
                for tx_id, loc in zip(ids, locs, strict=True):
                    if m.get(tx_id) != loc:
                        errors.append(tx_id.hex())

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for ids, locs in blocks:
        m.add(b"".join(ids), b"".join(locs))
        added += 1
    done.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(m) == 40 * 200
    assert all(m.get(i) == loc for ids, locs in blocks for i, loc in zip(ids, locs, strict=True))
