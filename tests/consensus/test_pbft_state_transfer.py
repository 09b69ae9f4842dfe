"""PBFT state transfer (Castro-Liskov TOCS 2002 §5.3) and retransmission (§5.2): a
replica that fell behind a stable checkpoint fetches the entries and checks them
against the checkpoint's digest; each decision is delivered exactly once."""

from __future__ import annotations

import dataclasses

from pbft_harness import CFG, Cluster

from consensus.pbft_messages import CommitProof, Envelope, StateReply, StateRequest
from consensus.types import Entry


def _load(c: Cluster, names: list[str], count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        for n in names:
            c.nodes[n].core.propose(f"req{i}".encode())


def _cut_off(name: str):  # type: ignore[no-untyped-def]
    return lambda m: name not in (m.frm, m.to)


def test_a_replica_behind_a_stable_checkpoint_catches_up_by_state_transfer() -> None:
    c = Cluster()
    others = ["r0", "r1", "r2"]
    _load(c, others, 3 * CFG.log_window)
    for _ in range(12):
        c.tick(1, keep=_cut_off("r3"))
    assert c.nodes["r0"].core.stable.seq > CFG.log_window  # r3's certificates are gone
    requests: list[Envelope] = []

    def record(m: Envelope) -> bool:
        if isinstance(m.body, StateRequest):
            requests.append(m)
        return True

    c.tick(3 * CFG.status_interval_ticks, keep=record)
    assert requests, "r3 never asked for state"
    assert c.data("r3") == c.data("r0")
    sources = {d.source for d in c.nodes["r3"].decisions}
    assert "transfer" in sources
    assert [e.index for e in c.nodes["r3"].applied] == list(range(1, len(c.data("r0")) + 1))


def test_bad_state_is_rejected_and_the_next_replica_is_asked() -> None:
    """CL §5.3: fetched entries must hash to the stable checkpoint's digest."""
    c = Cluster()
    _load(c, ["r0", "r1", "r2"], 2 * CFG.log_window)
    for _ in range(12):
        c.tick(1, keep=_cut_off("r3"))
    target = c.nodes["r0"].core.stable.seq

    def corrupt(m: Envelope) -> bool:
        if isinstance(m.body, StateReply) and m.frm == "r0":
            es = list(m.body.entries)
            es[0] = Entry(es[0].index, es[0].term, es[0].data + b"!", es[0].kind)
            c.nodes[m.to].core.step(dataclasses.replace(m, body=StateReply(tuple(es))))
            return False
        return True

    c.tick(CFG.state_retry_ticks * 4, keep=corrupt)
    r3 = c.nodes["r3"]
    assert r3.core.executed >= target
    assert c.data("r3") == c.data("r0")[: len(c.data("r3"))]
    assert all(not e.data.endswith(b"!") for e in r3.applied)


def _race(bug: bool) -> list[int]:
    """r3 falls behind a stable checkpoint; it asks for state, and retransmitted
    commit certificates arrive before the state does. Returns what r3 applied."""
    cfg = dataclasses.replace(CFG, bugs=dataclasses.replace(CFG.bugs, double_delivery=bug))
    c = Cluster(cfg=cfg)
    _load(c, ["r0", "r1", "r2"], CFG.log_window + 2)
    for _ in range(10):
        c.tick(1, keep=_cut_off("r3"))
    held: list[Envelope] = []

    def hold(m: Envelope) -> bool:
        if m.to == "r3" and isinstance(m.body, CommitProof | StateReply):
            held.append(m)
            return False
        return True

    c.tick(2 * CFG.status_interval_ticks, keep=hold)
    r3 = c.nodes["r3"].core
    assert r3._transfer is not None, "r3 should be waiting for state"
    proofs = [m for m in held if isinstance(m.body, CommitProof)]
    replies = [m for m in held if isinstance(m.body, StateReply)]
    assert proofs and replies
    # The protocol gets the first two entries in first, then the state arrives.
    first = proofs[0]
    assert isinstance(first.body, CommitProof)
    r3.step(dataclasses.replace(first, body=CommitProof(first.body.certs[:2])))
    c.flush("r3")
    assert [e.index for e in c.nodes["r3"].applied] == [1, 2]
    r3.step(replies[0])
    c.flush("r3")
    return [e.index for e in c.nodes["r3"].applied]


def test_commit_certificates_and_state_transfer_racing_deliver_each_entry_once() -> None:
    """CL §5.3: entries the protocol executed while a transfer was under way are not
    delivered again when the state arrives."""
    idx = _race(bug=False)
    assert idx == list(range(1, len(idx) + 1))
    assert len(idx) >= CFG.log_window


def test_the_planted_double_delivery_bug_delivers_twice() -> None:
    """The negative control for the test above."""
    idx = _race(bug=True)
    assert len(idx) != len(set(idx))


def test_a_replica_restarted_during_a_state_transfer_resumes_it() -> None:
    c = Cluster()
    _load(c, ["r0", "r1", "r2"], 2 * CFG.log_window)
    for _ in range(12):
        c.tick(1, keep=_cut_off("r3"))
    # r3 learns the stable checkpoint, but every state reply is lost, then it restarts.
    c.tick(2 * CFG.status_interval_ticks, keep=lambda m: not isinstance(m.body, StateReply))
    r3 = c.nodes["r3"]
    assert r3.core.executed < r3.core.stable.seq
    c.restart("r3")
    c.tick(CFG.state_retry_ticks)
    assert r3.core.executed >= r3.core.stable.seq
    assert c.data("r3") == c.data("r0")[: len(c.data("r3"))]
