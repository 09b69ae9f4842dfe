"""What a node's loop tells the PBFT core beside the shared interface (issue 14, item
2): client requests that wait in a backup's mempool start the CL §4.5.2 timer, a
replica that stops being primary forgets its unexecuted proposals, and the primary sees
how far it may assign (the watermarks of CL §4.3)."""

from __future__ import annotations

from pbft_harness import CFG, Cluster


def test_requests_waiting_outside_the_core_replace_a_silent_primary() -> None:
    c = Cluster()
    for n in ("r1", "r2", "r3"):
        c.nodes[n].core.set_waiting(True)
    c.tick(CFG.view_change_timeout_ticks + 5, keep=lambda m: m.frm != "r0")
    for n in ("r1", "r2", "r3"):
        core = c.nodes[n].core
        assert (core.view, core.active, core.primary) == (1, True, "r1")


def test_without_waiting_requests_an_idle_primary_stays() -> None:
    c = Cluster()
    c.tick(CFG.view_change_timeout_ticks * 3, keep=lambda m: m.frm != "r0")
    assert all(c.nodes[n].core.view == 0 for n in c.names)


def test_executing_resets_the_timer_while_requests_keep_waiting() -> None:
    c = Cluster()
    for n in c.names:
        c.nodes[n].core.set_waiting(True)
    for i in range(CFG.view_change_timeout_ticks * 3):
        c.nodes["r0"].core.propose(f"batch {i}".encode())
        c.tick(1)
    assert all(c.nodes[n].core.view == 0 for n in c.names)
    assert len(c.data("r1")) == CFG.view_change_timeout_ticks * 3


def test_a_former_primary_drops_its_proposals_and_does_not_storm() -> None:
    c = Cluster()
    r0 = c.nodes["r0"].core
    assert (r0.last_assigned, r0.window_top) == (0, CFG.log_window)
    assert r0.propose(b"never sent")
    assert r0.last_assigned == 1
    c.pool.clear()
    c.flush("r0")
    c.pool.clear()  # the pre-prepare is lost
    for n in ("r1", "r2", "r3"):
        c.nodes[n].core.set_waiting(True)
    c.tick(CFG.view_change_timeout_ticks + 5, keep=lambda m: m.frm != "r0")
    c.tick(2)  # r0 hears the new view
    assert (r0.view, r0.active) == (1, True)
    for n in ("r1", "r2", "r3"):
        c.nodes[n].core.set_waiting(False)  # their mempools drained under r1
    r0.drop_requests()
    c.tick(CFG.view_change_timeout_ticks * 4)
    assert all((c.nodes[n].core.view, c.nodes[n].core.active) == (1, True) for n in c.names)


def test_a_former_primary_that_keeps_its_proposals_leaves_the_view_alone() -> None:
    """Why ``drop_requests`` exists: the same story without it."""
    c = Cluster()
    r0 = c.nodes["r0"].core
    assert r0.propose(b"never sent")
    c.flush("r0")
    c.pool.clear()
    for n in ("r1", "r2", "r3"):
        c.nodes[n].core.set_waiting(True)
    c.tick(CFG.view_change_timeout_ticks + 5, keep=lambda m: m.frm != "r0")
    c.tick(2)
    for n in ("r1", "r2", "r3"):
        c.nodes[n].core.set_waiting(False)
    c.tick(CFG.view_change_timeout_ticks * 4)
    assert (r0.view, r0.active) != (1, True)
