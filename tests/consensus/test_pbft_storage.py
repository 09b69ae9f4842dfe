"""``MemoryPbftStorage`` passes the PBFT storage conformance test (Castro-Liskov TOCS
2002 §4.3 garbage collection, §4.6 what survives a restart)."""

from __future__ import annotations

import pbft_storage_conformance

from consensus.pbft_storage import MemoryPbftStorage, PbftHardState


def test_memory_storage_conforms() -> None:
    pbft_storage_conformance.check(lambda: MemoryPbftStorage(["r0", "r1", "r2", "r3"]))


def test_wipe_forgets_everything() -> None:
    st = MemoryPbftStorage(["r0"])
    st.save(PbftHardState(view=3), [], None)
    st.wipe()
    assert st.hard_state() == PbftHardState() and st.records() == []
