"""A hand-driven PBFT cluster for unit tests: real cores, real Ed25519 keys derived
from names, in-memory storage, and a message pool the test delivers from by hand."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from chain import signing
from consensus.pbft import Pbft
from consensus.pbft_config import PbftConfig
from consensus.pbft_messages import Envelope, StateReply, StateRequest
from consensus.pbft_signing import Ed25519Signer, Ed25519Verifier
from consensus.pbft_storage import Decision, MemoryPbftStorage
from consensus.types import Entry

CFG = PbftConfig(checkpoint_interval=4, log_window=8, view_change_timeout_ticks=10)


def key(name: str) -> signing.PrivateKey:
    return signing.private_key_from_bytes(hashlib.sha256(f"pbft-test/{name}".encode()).digest())


def verifier(names: list[str]) -> Ed25519Verifier:
    return Ed25519Verifier({n: signing.public_key_bytes(key(n)) for n in names})


@dataclass
class Replica:
    core: Pbft
    storage: MemoryPbftStorage
    applied: list[Entry] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


class Cluster:
    def __init__(self, n: int = 4, cfg: PbftConfig = CFG) -> None:
        self.names = [f"r{i}" for i in range(n)]
        self.cfg = cfg
        self.ver = verifier(self.names)
        self.nodes: dict[str, Replica] = {}
        self.pool: list[Envelope] = []
        for name in self.names:
            st = MemoryPbftStorage(self.names)
            self.nodes[name] = Replica(self._core(name, st, 0), st)

    def _core(self, name: str, st: MemoryPbftStorage, applied: int) -> Pbft:
        return Pbft(name, self.names, st, Ed25519Signer(key(name)), self.ver, self.cfg, applied)

    def restart(self, name: str) -> None:
        r = self.nodes[name]
        r.core = self._core(name, r.storage, len(r.applied))

    def signer(self, name: str) -> Ed25519Signer:
        return Ed25519Signer(key(name))

    def flush(self, name: str) -> list[Envelope]:
        """Execute every Ready of ``name`` (persist, collect messages, apply)."""
        r = self.nodes[name]
        out: list[Envelope] = []
        while r.core.has_ready():
            rd = r.core.ready()
            if rd.hard_state is not None or rd.entries:
                r.storage.save(rd.hard_state, rd.entries, rd.snapshot)
            out += rd.messages
            for req in rd.serve:
                assert isinstance(req.body, StateRequest)
                certs = r.storage.committed(req.body.from_seq + 1, req.body.to_seq)
                if certs and certs[-1].entry.index == req.body.to_seq:
                    out.append(Envelope(name, req.frm, StateReply(tuple(c.entry for c in certs))))
            r.applied += rd.committed
            r.decisions += rd.decisions
            r.core.advance(rd)
        self.pool += out
        return out

    def flush_all(self) -> None:
        for n in self.names:
            self.flush(n)

    def deliver(
        self,
        keep: Callable[[Envelope], bool] = lambda m: True,
        rounds: int = 50,
    ) -> None:
        """Deliver pooled messages (dropping those ``keep`` rejects) until quiet."""
        for _ in range(rounds):
            self.flush_all()
            if not self.pool:
                return
            batch, self.pool = self.pool, []
            for m in batch:
                if keep(m) and m.to in self.nodes:
                    self.nodes[m.to].core.step(m)

    def tick(self, n: int = 1, keep: Callable[[Envelope], bool] = lambda m: True) -> None:
        for _ in range(n):
            for name in self.names:
                self.nodes[name].core.tick()
            self.deliver(keep)

    def data(self, name: str) -> list[bytes]:
        return [e.data for e in self.nodes[name].applied]
