"""A replica whose store was lost (the driver says so: ``Pbft.lost_store``, a node whose
block store holds blocks while its PBFT store is empty) may have voted before, at
sequence numbers up to its stable checkpoint then + L. If the first thing it learns is a
stable checkpoint above what it has (the cluster went on without it), it abstains from
pre-prepares, prepares and commits up to that checkpoint + L (BFT-PR §4), so it never
votes twice for one slot; past that it votes again. A new replica, a fresh cluster and a
replica restarted with its store vote at once."""

from __future__ import annotations

from pbft_harness import CFG, Cluster

from consensus.pbft_messages import Commit, Envelope, Prepare, PrePrepare
from consensus.pbft_storage import MemoryPbftStorage


def _load(c: Cluster, names: list[str], count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        for n in names:
            c.nodes[n].core.propose(f"req{i}".encode())


def test_a_replica_with_its_store_lost_abstains_for_a_window_then_votes() -> None:
    c = Cluster()
    _load(c, c.names, 2 * CFG.log_window)
    c.tick(4)
    assert c.nodes["r3"].core.executed == 2 * CFG.log_window
    r3 = c.nodes["r3"]
    r3.storage = MemoryPbftStorage(c.names)  # lost: restored from nothing
    r3.applied = []
    c.restart("r3")
    r3.core.lost_store()
    c.tick(3 * CFG.status_interval_ticks)  # learns the stable checkpoint, catches up
    stable = r3.core.stable.seq
    assert stable >= CFG.log_window and r3.core.executed >= stable
    votes: list[Envelope] = []

    def watch(m: Envelope) -> bool:
        if m.frm == "r3" and isinstance(m.body, PrePrepare | Prepare | Commit):
            votes.append(m)
        return True

    _load(c, ["r0", "r1", "r2"], 3 * CFG.log_window, start=100)
    c.tick(12, keep=watch)
    assert r3.core.executed == c.nodes["r0"].core.executed > stable + CFG.log_window
    seqs = sorted({m.body.seq for m in votes})  # type: ignore[union-attr]
    assert seqs, "r3 never voted again"
    assert min(seqs) > stable + CFG.log_window, (stable, seqs[:5])


def test_a_new_replica_behind_the_others_votes_at_once() -> None:
    """Its store is empty too, but it never ran: nothing to forget."""
    c = Cluster()
    _load(c, ["r0", "r1", "r2"], 2 * CFG.log_window)
    for _ in range(4):
        c.tick(1, keep=lambda m: "r3" not in (m.frm, m.to))
    c.tick(3 * CFG.status_interval_ticks)
    stable = c.nodes["r3"].core.stable.seq
    assert stable >= CFG.log_window
    votes: list[int] = []

    def watch(m: Envelope) -> bool:
        if m.frm == "r3" and isinstance(m.body, Prepare):
            votes.append(m.body.seq)
        return True

    _load(c, c.names, 2, start=100)
    c.tick(2, keep=watch)
    assert votes and min(votes) <= stable + CFG.log_window


def test_a_fresh_cluster_votes_from_the_first_entry() -> None:
    c = Cluster()
    votes: list[int] = []

    def watch(m: Envelope) -> bool:
        if m.frm == "r3" and isinstance(m.body, Prepare):
            votes.append(m.body.seq)
        return True

    _load(c, c.names, 2)
    c.tick(2, keep=watch)
    assert 1 in votes


def test_a_replica_restarted_with_its_store_does_not_abstain() -> None:
    c = Cluster()
    _load(c, c.names, 2 * CFG.log_window)
    c.tick(4)
    c.restart("r3")
    votes: list[int] = []

    def watch(m: Envelope) -> bool:
        if m.frm == "r3" and isinstance(m.body, Prepare):
            votes.append(m.body.seq)
        return True

    _load(c, c.names, 2, start=100)
    c.tick(2, keep=watch)
    assert 2 * CFG.log_window + 1 in votes
