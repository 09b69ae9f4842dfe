"""A state transfer too large for one reply goes in pieces (Castro-Liskov TOCS 2002
§5.3 with §5.2's commit certificates): the serving driver answers with the first
entries that fit, each with its 2f+1 signed commits; the replica that asked executes
them at once and asks for the rest, until it reaches the stable checkpoint."""

from __future__ import annotations

from collections.abc import Callable

from pbft_harness import CFG, Cluster

from consensus.pbft_messages import CommitCert, CommitProof, Envelope, StateReply, StateRequest
from consensus.pbft_storage import MemoryPbftStorage, PbftReady
from consensus.types import Entry
from node.consensus_driver.driver import PbftDriver


def _cut_off(name: str) -> Callable[[Envelope], bool]:
    return lambda m: name not in (m.frm, m.to)


def test_a_replica_far_behind_catches_up_from_commit_proof_pieces() -> None:
    c = Cluster()
    for i in range(3 * CFG.log_window):
        for n in ("r0", "r1", "r2"):
            c.nodes[n].core.propose(f"req{i}".encode())
    for _ in range(12):
        c.tick(1, keep=_cut_off("r3"))
    target = c.nodes["r0"].core.stable.seq
    assert target > CFG.log_window
    r3 = c.nodes["r3"].core
    pieces: list[int] = []

    def serve_in_pieces(m: Envelope) -> bool:
        """r0..r2 answer r3's requests two certificates at a time, never whole."""
        if isinstance(m.body, StateRequest) and m.frm == "r3":
            store = c.nodes[m.to].storage
            certs = store.committed(m.body.from_seq + 1, m.body.to_seq)[:2]
            assert all(cc.commits for cc in certs)
            pieces.append(len(certs))
            r3.step(Envelope(m.to, "r3", CommitProof(tuple(certs))))
            return False
        return not isinstance(m.body, StateReply)

    c.tick(3 * CFG.status_interval_ticks, keep=serve_in_pieces)
    assert len(pieces) >= 3 and set(pieces) == {2}, pieces  # piece after piece
    assert r3.executed >= target
    assert c.data("r3") == c.data("r0")[: len(c.data("r3"))]
    assert {d.source for d in c.nodes["r3"].decisions} >= {"protocol"}


class _Sent:
    def __init__(self) -> None:
        self.msgs: list[Envelope] = []

    def send(self, msg: Envelope) -> None:
        self.msgs.append(msg)


class _Core:
    def has_ready(self) -> bool:
        return False

    def ready(self) -> PbftReady:
        raise AssertionError

    def advance(self, rd: PbftReady) -> None:
        return None

    def compact(self, index: int, data: bytes) -> object:
        raise AssertionError


def _serve(store: MemoryPbftStorage, budget: int | None, frm: int, to: int) -> list[Envelope]:
    sent = _Sent()
    drv = PbftDriver(_Core(), store, sent, None, reply_bytes_max=budget)  # type: ignore[arg-type]
    req = Envelope("r3", "r0", StateRequest(frm, to))
    drv.after_apply(PbftReady(None, (), None, (), (), None, serve=(req,)))
    return sent.msgs


def test_the_driver_answers_whole_when_it_fits_and_in_pieces_when_not() -> None:
    c = Cluster()
    for i in range(4):
        c.nodes["r0"].core.propose(bytes(1000) + bytes([i]))
    c.deliver()
    store = c.nodes["r0"].storage
    assert [cc.entry.index for cc in store.committed(1, 4)] == [1, 2, 3, 4]
    whole = _serve(store, None, 0, 4)
    assert [type(m.body) for m in whole] == [StateReply] and (whole[0].to, whole[0].frm) == (
        "r3",
        "r0",
    )
    assert len(_serve(store, 10_000, 0, 4)[0].body.entries) == 4  # type: ignore[union-attr]
    piece = _serve(store, 4_000, 0, 4)
    assert isinstance(piece[0].body, CommitProof)
    assert [cc.entry.index for cc in piece[0].body.certs] == [1, 2]
    # An entry that came by state transfer has no commits to prove it: the piece ends.
    store.save(None, [CommitCert(Entry(2, 0, bytes(1000)), ())], None)
    cut = _serve(store, 4_000, 0, 4)
    assert [cc.entry.index for cc in cut[0].body.certs] == [1]  # type: ignore[union-attr]
    assert _serve(store, 2_500, 1, 4) == []  # nothing provable to start with: silent
    assert _serve(store, 4_000, 0, 9) == []  # not all held: silent
