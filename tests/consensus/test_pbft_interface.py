"""The PBFT core behind the shared interface (docs/architecture.md §4): the node's
``Driver`` executes a ``PbftReady`` as it executes Raft's ``Ready`` (persist -> send ->
apply -> advance), and the quorum arithmetic of Castro-Liskov TOCS 2002 §4.1."""

from __future__ import annotations

import dataclasses

import pytest
from pbft_harness import CFG, key, verifier

from consensus.pbft import Pbft
from consensus.pbft_certs import Membership
from consensus.pbft_messages import CommitCert, Envelope, PrePrepare
from consensus.pbft_signing import Ed25519Signer
from consensus.pbft_storage import MemoryPbftStorage, PbftReady
from consensus.types import Entry, EntryKind, Snapshot
from node.consensus_driver.driver import PbftDriver

NAMES = ["r0", "r1", "r2", "r3"]


class _Sent:
    def __init__(self) -> None:
        self.msgs: list[Envelope] = []

    def send(self, msg: Envelope) -> None:
        self.msgs.append(msg)


class _App:
    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def apply(self, entry: Entry) -> None:
        self.entries.append(entry)

    def restore(self, snapshot: Snapshot) -> None:
        raise AssertionError("PBFT sends no snapshot today")


def test_the_driver_executes_a_pbft_ready_in_order() -> None:
    st = MemoryPbftStorage(NAMES)
    core = Pbft("r0", NAMES, st, Ed25519Signer(key("r0")), verifier(NAMES), CFG)
    sent, app = _Sent(), _App()
    order: list[str] = []

    def failpoint(name: str) -> None:
        order.append(name)

    driver = PbftDriver(core, st, sent, app, failpoint)
    assert core.propose(b"batch")
    assert driver.process() == 1
    # The pre-prepare was durable before it was sent.
    assert [type(r) for r in st.records()] == [PrePrepare]
    assert {m.to for m in sent.msgs} == {"r1", "r2", "r3"}
    assert order[:2] == ["before_persist", "after_persist"]
    assert app.entries == []


def test_ready_has_the_driver_s_five_effect_fields() -> None:
    fields = {f.name for f in dataclasses.fields(PbftReady)}
    assert {"hard_state", "entries", "snapshot", "messages", "committed"} <= fields


@pytest.mark.parametrize(("n", "f", "quorum"), [(4, 1, 3), (5, 1, 4), (7, 2, 5), (10, 3, 7)])
def test_quorums_intersect_in_a_correct_replica(n: int, f: int, quorum: int) -> None:
    """CL §4.1: n >= 3f+1, and two quorums share at least f+1 replicas."""
    m = Membership([f"r{i}" for i in range(n)], verifier(NAMES), 8)
    assert (m.f, m.quorum) == (f, quorum)
    assert 2 * m.quorum - n >= f + 1
    assert [m.primary(v) for v in range(n + 1)] == [*sorted(m.replicas), sorted(m.replicas)[0]]


def test_a_commit_certificate_with_a_duplicate_signer_is_not_a_quorum() -> None:
    from consensus.pbft_messages import Commit, Kind, payload_digest, statement_bytes

    m = Membership(NAMES, verifier(NAMES), 8)
    d = payload_digest(b"x")

    def commit(who: str) -> Commit:
        return Commit(
            0, 1, d, who, Ed25519Signer(key(who)).sign(statement_bytes(Kind.COMMIT, 0, 1, d, who))
        )

    e = Entry(1, 0, b"x", EntryKind.NORMAL)
    assert m.commit_cert_ok(CommitCert(e, (commit("r0"), commit("r1"), commit("r2"))))
    assert not m.commit_cert_ok(CommitCert(e, (commit("r0"), commit("r1"), commit("r1"))))
    assert not m.commit_cert_ok(CommitCert(e, (commit("r0"), commit("r1"))))
    wrong = Entry(1, 0, b"y", EntryKind.NORMAL)
    assert not m.commit_cert_ok(CommitCert(wrong, (commit("r0"), commit("r1"), commit("r2"))))
