"""PBFT checkpoints that sign the application's state (``PbftConfig.app_checkpoints``)
and the state transfer they allow (CL §5.3, issue 14): a replica whose missing entries
every peer dropped installs the certified state of a stable checkpoint (the Ready's
snapshot) instead of the entries, from any one replica but only with 2f+1 checkpoint
signatures over it; each decision still reaches the application once."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from pbft_harness import CFG, Cluster

from consensus.pbft_messages import (
    CheckpointCert,
    Envelope,
    StableState,
    StateReply,
    StateRequest,
    checkpoint_digest,
)
from consensus.types import InvariantViolation, Snapshot, SnapshotMeta

APP_CFG = dataclasses.replace(CFG, app_checkpoints=True)


class AppCluster(Cluster):
    """Each replica's application folds the entries it applies into a digest and tells
    its core at every checkpoint; an installed snapshot replaces the digest."""

    def __init__(self) -> None:
        self.app: dict[str, bytes] = {}
        self.installed: dict[str, list[Snapshot]] = {}
        super().__init__(cfg=APP_CFG)
        for n in self.names:
            self.app[n] = b"genesis"
            self.installed[n] = []

    def flush(self, name: str) -> list[Envelope]:
        r = self.nodes[name]
        out: list[Envelope] = []
        while r.core.has_ready():
            rd = r.core.ready()
            if rd.hard_state is not None or rd.entries or rd.snapshot is not None:
                r.storage.save(rd.hard_state, rd.entries, rd.snapshot)
            out += rd.messages
            if rd.snapshot is not None:
                self.installed[name].append(rd.snapshot)
                self.app[name] = rd.snapshot.data
            for e in rd.committed:
                r.applied.append(e)
                self.app[name] = hashlib.sha256(self.app[name] + e.data).digest()
                if e.index % self.cfg.checkpoint_interval == 0:
                    r.core.app_checkpoint(e.index, self.app[name])
            for req in rd.serve:
                assert isinstance(req.body, StateRequest)
                certs = r.storage.committed(req.body.from_seq + 1, req.body.to_seq)
                if [c.entry.index for c in certs] == list(
                    range(req.body.from_seq + 1, req.body.to_seq + 1)
                ):
                    out.append(Envelope(name, req.frm, StateReply(tuple(c.entry for c in certs))))
            r.decisions += rd.decisions
            r.core.advance(rd)
        self.pool += out
        return out

    def drop_entries(self, names: list[str]) -> None:
        """The peers keep no committed entries (a node compacts all but the last 1,024)."""
        for n in names:
            core = self.nodes[n].core
            self.nodes[n].storage.compact(Snapshot(SnapshotMeta(core.executed, 0, ()), b""))


def _load(c: Cluster, names: list[str], count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        for n in names:
            c.nodes[n].core.propose(f"req{i}".encode())


def _cut_off(name: str):
    return lambda m: name not in (m.frm, m.to)


def _fell_behind(c: AppCluster) -> None:
    """r3 misses several stable checkpoints; the others then drop their entries."""
    _load(c, ["r0", "r1", "r2"], 3 * APP_CFG.log_window)
    for _ in range(12):
        c.tick(1, keep=_cut_off("r3"))
    assert c.nodes["r0"].core.stable.seq > APP_CFG.log_window
    c.drop_entries(["r0", "r1", "r2"])


def _applied_once(c: AppCluster, name: str) -> None:
    seqs = [e.index for e in c.nodes[name].applied]
    assert seqs == sorted(set(seqs)), "an entry reached the application twice"


def test_checkpoints_sign_the_application_state_once_it_applied() -> None:
    c = AppCluster()
    _load(c, c.names, APP_CFG.checkpoint_interval)
    c.tick(2)
    stable = c.nodes["r0"].core.stable
    assert stable.seq == APP_CFG.checkpoint_interval
    state = c.nodes["r0"].core.stable_state
    assert state is not None and state.cert == stable
    assert stable.digest == checkpoint_digest(state.history, c.app["r0"]) != state.history
    assert {c.app[n] for n in c.names} == {state.app_state}


def test_a_replica_whose_entries_are_gone_installs_the_certified_state() -> None:
    c = AppCluster()
    _fell_behind(c)
    c.tick(6 * APP_CFG.state_retry_ticks)
    r3 = c.nodes["r3"].core
    (snap,) = c.installed["r3"]
    assert r3.executed >= snap.meta.index >= APP_CFG.log_window
    assert c.nodes["r3"].applied == []  # nothing up to the state: it came installed
    assert r3.stable_state is not None and r3.stable_state.cert.seq >= snap.meta.index
    # It goes on with the others: its application's checkpoints match theirs.
    _load(c, c.names, 2 * APP_CFG.checkpoint_interval, start=1000)
    c.tick(4)
    assert r3.executed == c.nodes["r0"].core.executed
    assert c.app["r3"] == c.app["r0"]
    assert r3.stable.seq == c.nodes["r0"].core.stable.seq > snap.meta.index
    assert r3.stable_state is not None and r3.stable_state.cert == r3.stable
    _applied_once(c, "r3")
    assert c.nodes["r3"].storage.snapshot().meta.index == snap.meta.index


def test_a_replica_a_little_behind_still_takes_the_entries() -> None:
    """With the entries at hand, they are checked against the offered state and
    delivered (source "transfer"), not a snapshot."""
    c = AppCluster()
    _load(c, ["r0", "r1", "r2"], 3 * APP_CFG.log_window)
    for _ in range(12):
        c.tick(1, keep=_cut_off("r3"))
    c.tick(6 * APP_CFG.state_retry_ticks)
    assert c.installed["r3"] == []
    assert "transfer" in {d.source for d in c.nodes["r3"].decisions}
    assert c.app["r3"] == c.app["r0"]
    _applied_once(c, "r3")


def _forge(m: Envelope, how: str) -> Envelope:
    assert isinstance(m.body, StableState)
    s = m.body
    if how == "app_state":
        return dataclasses.replace(m, body=dataclasses.replace(s, app_state=b"forged"))
    if how == "history":
        return dataclasses.replace(m, body=dataclasses.replace(s, history=bytes(32)))
    # A certificate for a state of the forger's making, with its own signature thrice.
    d = checkpoint_digest(s.history, b"forged")
    own = [p for p in s.cert.proof if p.replica == m.frm]
    proof = tuple(dataclasses.replace(p, digest=d) for p in own * 3)
    cert = CheckpointCert(s.cert.seq, d, proof)
    return dataclasses.replace(m, body=StableState(cert, s.history, b"forged"))


@pytest.mark.parametrize("how", ["app_state", "history", "certificate"])
def test_a_forged_state_is_refused_and_another_replica_serves_it(how: str) -> None:
    c = AppCluster()
    _fell_behind(c)
    forged = 0

    def forge(m: Envelope) -> bool:
        nonlocal forged
        if isinstance(m.body, StableState) and m.frm == "r0":
            forged += 1
            c.nodes[m.to].core.step(_forge(m, how))
            return False
        return True

    c.tick(8 * APP_CFG.state_retry_ticks, keep=forge)
    assert forged > 0
    (snap,) = c.installed["r3"]
    assert snap.data != b"forged"
    assert snap.data == c.nodes["r1"].core.stable_state.app_state
    _load(c, c.names, 2 * APP_CFG.checkpoint_interval, start=1000)
    c.tick(4)
    assert c.app["r3"] == c.app["r0"]


def test_an_application_that_diverges_at_a_stable_checkpoint_stops_the_replica() -> None:
    c = AppCluster()
    _load(c, c.names, APP_CFG.checkpoint_interval)
    c.tick(2)
    core = c.nodes["r0"].core
    seq = core.stable.seq
    core._history_at[seq] = core.stable_state.history
    with pytest.raises(InvariantViolation, match="differs from the stable checkpoint"):
        core.app_checkpoint(seq, b"another state")


def test_the_stable_state_survives_a_restart_and_is_still_served() -> None:
    c = AppCluster()
    _fell_behind(c)
    for n in ("r0", "r1", "r2"):
        c.restart(n)
        assert c.nodes[n].core.stable_state is not None
    c.tick(6 * APP_CFG.state_retry_ticks)
    assert len(c.installed["r3"]) == 1
    assert c.nodes["r3"].core.executed >= c.installed["r3"][0].meta.index
