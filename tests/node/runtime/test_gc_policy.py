"""The node's garbage-collector policy: thresholds raised, start-up objects frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from node.runtime import gc_policy


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restore_gc")
def test_tune_raises_the_young_threshold_far_above_the_default() -> None:
    gc.set_threshold(700, 10, 10)
    gc_policy.tune()
    assert gc.get_threshold() == (
        gc_policy.GEN0_THRESHOLD,
        gc_policy.GEN1_THRESHOLD,
        gc_policy.GEN2_THRESHOLD,
    )
    assert gc_policy.GEN0_THRESHOLD >= 10_000


@pytest.mark.usefixtures("restore_gc")
def test_freeze_startup_hides_live_objects_from_later_collections() -> None:
    gc.unfreeze()
    kept = [[i] for i in range(1000)]  # containers alive at "start-up"
    gc_policy.freeze_startup()
    assert gc.get_freeze_count() >= len(kept)
    assert all(o is not kept for o in gc.get_objects())  # not in any generation
