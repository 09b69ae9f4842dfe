"""One simulated PBFT run from one seed (issue 14, item 4): the real ``Pbft`` core and
the real ``Driver`` on every replica, ``byzantine`` of them driven by the adversary,
over the same lossy, partitionable network as the Raft simulator, with crashes and
restarts of correct replicas too.

Faults (network and crashes, and Byzantine disk loss) stop ``heal_bound_ticks`` before
the end; Byzantine replicas keep lying to the end. Correct replicas must execute new
entries after the heal, and by the end each must have executed what any of them had
executed half-way through the final ``drain_ticks`` (no new requests then). Clients send each request
to every replica and send it again while it has not executed (CL §4.1).

With ``membership`` one more correct replica runs, outside the starting set: the client
adds it by a request (``set:...``) a tenth of the way in, and once that executed and a
quarter of the run has passed, removes a correct replica of the starting set. The
added replica is held to the progress checks like any correct one; the removed one,
once its removal executed, is not (it no longer hears the others' votes).
"""

from __future__ import annotations

import dataclasses
import random
from collections import OrderedDict, deque

from chain import signing
from consensus.pbft_config import PbftConfig
from consensus.pbft_messages import (
    Commit,
    Envelope,
    NewView,
    Prepare,
    PrePrepare,
    ViewChange,
)
from consensus.pbft_signing import Ed25519Signer, Ed25519Verifier, Signer, Verifier
from node.sim.byzantine import Adversary
from node.sim.checker import Violation
from node.sim.faults import FaultProfile
from node.sim.network import LinkFaults, SimNetwork
from node.sim.options import PbftSimOptions
from node.sim.pbft_checker import AGREEMENT, PROGRESS, PbftChecker
from node.sim.pbft_replica import SET_PREFIX, SimPbftNode, replica_key
from node.sim.world import SeedResult, drive


class PbftSimulation:
    def __init__(self, seed: int, opts: PbftSimOptions | None = None) -> None:
        self.seed = seed
        self.opts = opts or PbftSimOptions()
        self.now = 0
        prof_rng = random.Random(f"{seed}:profile")
        self.profile = FaultProfile.draw(prof_rng) if self.opts.faults else FaultProfile.calm()
        self.net: SimNetwork[Envelope] = SimNetwork(random.Random(f"{seed}:net"), self.profile.link)
        self.rng = random.Random(f"{seed}:faults")
        self.client_rng = random.Random(f"{seed}:client")
        names = [f"n{i}" for i in range(1, self.opts.nodes + 1)]
        start_set = names[:]
        shuffled = names[:]
        random.Random(f"{seed}:byzantine").shuffle(shuffled)
        byz = sorted(shuffled[: self.opts.byzantine])
        if self.opts.membership:
            names = [*names, f"n{self.opts.nodes + 1}"]
        self.order = names
        correct = [n for n in names if n not in byz]
        # The starting set's quorum: a lower bound on every epoch's (module doc).
        self.checker = PbftChecker(start_set, correct)
        self._changes = _membership_plan(seed, start_set, correct) if self.opts.membership else []
        self.removed: str | None = None
        """The replica the membership plan removes, once the client sent the request."""
        keys = {n: replica_key(seed, n) for n in names}
        self.verifier: Verifier = Ed25519Verifier(
            {n: signing.public_key_bytes(k) for n, k in keys.items()}
        )
        signers: dict[str, Signer] = {n: Ed25519Signer(keys[n]) for n in byz}
        self.adversary = Adversary(
            random.Random(f"{seed}:adversary"),
            byz,
            correct,
            signers,
            cover_view=not self.opts.pbft.bugs.unsigned_view,
            allowed=self.opts.behaviours,
        )
        self.correct = correct
        self.nodes = {n: SimPbftNode(self, n, start_set) for n in names}
        self._trace: deque[tuple[int, object]] = deque(maxlen=self.opts.trace_len)
        self._partitions: list[tuple[int, frozenset[tuple[str, str]]]] = []
        self.fault_end = max(0, self.opts.ticks - self.opts.heal_bound_ticks)
        self._executed_at_heal = 0
        #: What some correct replica had executed half-way through the drain: by the
        #: end every correct replica must have it (a backlog may still be draining).
        self._catch_up_target = 0
        self._proposed = 0
        self._changes_done: list[bytes] = []
        #: Requests not yet executed by a correct replica, by the tick last sent.
        self._outstanding: OrderedDict[bytes, int] = OrderedDict()

    def config_for(self, node: str) -> PbftConfig:
        return self.opts.pbft

    def trace_event(self, what: object) -> None:
        self._trace.append((self.now, what))

    # --- main loop ------------------------------------------------------------------

    def run(self) -> SeedResult:
        return self._result(*drive(self, self.nodes.values(), self.opts.ticks))

    def _result(self, ok: bool, violation: str | None) -> SeedResult:
        return SeedResult(
            seed=self.seed,
            ok=ok,
            violation=violation,
            committed=self.checker.max_committed,
            ticks=self.now,
            trace=[] if ok else [f"t={t:>5} {_fmt(w)}" for t, w in self._trace],
            messages=self.net.sent,
            profile="" if ok else f"{self.profile!r}; byzantine {self.adversary.describe()}",
        )

    def _tick(self) -> None:
        now = self.now
        if now <= self.fault_end and self.opts.faults:
            self._inject_faults()
        if now == self.fault_end:
            self._heal()
        if now == self.opts.ticks - self.opts.drain_ticks // 2:
            self._catch_up_target = self.checker.max_committed
        self._update_partitions()
        for node in self.nodes.values():
            if not node.up and node.restart_at and now >= node.restart_at:
                node.restart_at = 0
                self.trace_event(f"{node.id} RESTART")
                node.start()
        for env in self.net.due(now):
            node = self.nodes[env.to]
            if node.up:
                node.inbox.append(env)
                if self.adversary.controls(node.id):
                    self.adversary.observe(env)
        for name in self.order:
            node = self.nodes[name]
            if not node.active(now):
                continue
            while node.inbox:
                env = node.inbox.popleft()
                if _traced(env):
                    self._trace.append((now, env))
                node.core.step(env)
            node.core.tick()
            if self.adversary.controls(name):
                self.adversary.inject(name, node.core, now, node.transport.send_raw)
        self._client()
        for name in self.order:
            node = self.nodes[name]
            if node.active(now):
                node.process()

    def _client(self) -> None:
        now = self.now
        executed = {e.data for e in self.checker.committed.values()}
        for d in [d for d in self._outstanding if d in executed]:
            del self._outstanding[d]
        if now > self.opts.ticks - self.opts.drain_ticks:
            return
        fresh = []
        if self._changes and self._changes[0][0] <= now:
            _, data, removed = self._changes[0]
            previous = self._changes_done[-1] if self._changes_done else None
            if previous is None or previous in executed:
                self._changes.pop(0)
                self._changes_done.append(data)
                fresh.append(data)
                self.trace_event(f"CLIENT sends {data.decode()}")
                if removed is not None:
                    self.removed = removed
        for _ in range(self.opts.proposals_per_tick):
            self._proposed += 1
            fresh.append(f"{self.seed}/{self._proposed}".encode())
        resend = [d for d, at in self._outstanding.items() if now - at >= 15][:8]
        for data in fresh + resend:
            self._outstanding[data] = now
            self._outstanding.move_to_end(data)
            for name in self.order:
                node = self.nodes[name]
                if node.active(now):
                    node.core.propose(data)

    # --- faults ---------------------------------------------------------------------

    def _inject_faults(self) -> None:
        p = self.profile
        rng = self.rng
        now = self.now
        if p.crash_rate and rng.random() < p.crash_rate:
            up = [n for n in self.order if self.nodes[n].up]
            if up:
                node = self.nodes[rng.choice(up)]
                if rng.random() < 0.5:
                    node.crash("between ticks")
                else:
                    node.crash_countdown = rng.randint(1, 40)
                    self.trace_event(f"{node.id} will crash at failpoint #{node.crash_countdown}")
        for name in self.adversary.byzantine:
            node = self.nodes[name]
            if node.up and self.adversary.has(name, "state_loss") and rng.random() < 0.01:
                node.crash("Byzantine state loss")
                node.storage.wipe()
        for node in self.nodes.values():
            if not node.up and node.restart_at == 0:
                node.restart_at = now + (
                    rng.randint(1, 2) if p.quick_restart else rng.randint(1, 60)
                )
        if p.partition_rate and rng.random() < p.partition_rate:
            self._start_partition()
        if p.pause_rate and rng.random() < p.pause_rate:
            node = self.nodes[rng.choice(self.order)]
            node.paused_until = now + rng.randint(5, 60)
            self.trace_event(f"{node.id} PAUSED until {node.paused_until}")

    def _start_partition(self) -> None:
        rng = self.rng
        names = self.order
        end = self.now + rng.randint(10, 120)
        shuffled = names[:]
        rng.shuffle(shuffled)
        k = rng.randint(1, len(names) // 2)
        a, b = shuffled[:k], shuffled[k:]
        cuts = {(x, y) for x in a for y in b} | {(y, x) for x in a for y in b}
        self._partitions.append((end, frozenset(cuts)))
        self.trace_event(f"PARTITION {sorted(a)} | {sorted(b)} until {end}")

    def _update_partitions(self) -> None:
        before = len(self._partitions)
        self._partitions = [p for p in self._partitions if p[0] > self.now]
        cut: set[tuple[str, str]] = set()
        for _, cuts in self._partitions:
            cut |= cuts
        self.net.cut = cut
        if before and not self._partitions:
            self.trace_event("PARTITIONS healed")

    def _heal(self) -> None:
        self.trace_event("HEAL: faults stop")
        self._partitions = []
        self.net.cut = set()
        self.net.faults = LinkFaults(delay_min_ticks=1, delay_max_ticks=2)
        for node in self.nodes.values():
            node.paused_until = 0
            node.crash_countdown = 0
            if not node.up:
                node.restart_at = self.now
        self._executed_at_heal = self.checker.max_committed

    # --- end of run -----------------------------------------------------------------

    def _final_checks(self) -> None:
        self._check_epochs()
        if self.checker.max_committed <= self._executed_at_heal:
            raise Violation(PROGRESS, f"nothing executed after heal (at {self._executed_at_heal})")
        top = self._catch_up_target
        executed = {e.data for e in self.checker.committed.values()}
        added = bool(self._changes_done) and self._changes_done[0] in executed
        for name in self.correct:
            if name not in self.checker.replicas and not added:
                continue  # never added: nobody had to bring it up to date
            if name == self.removed and self._changes_done[-1] in executed:
                continue  # removed: it no longer hears the votes
            node = self.nodes[name]
            if not node.up or node.sm.index < top:
                got = node.sm.index if node.up else "down"
                raise Violation(
                    PROGRESS,
                    f"correct replica {name} executed {got}, another had {top} "
                    f"{self.opts.drain_ticks // 2} ticks before the end",
                )

    def _check_epochs(self) -> None:
        """Correct replicas agree on every epoch they know (some know fewer: those
        behind), whether they executed its change or took a proof of it."""
        first: dict[int, tuple[str, tuple[str, ...]]] = {}
        for name in self.correct:
            node = self.nodes[name]
            if not node.up:
                continue
            for start, replicas in node.core.epochs:
                other, theirs = first.setdefault(start, (name, replicas))
                if theirs != replicas:
                    raise Violation(
                        AGREEMENT,
                        f"{name} orders from {start} with {replicas}, {other} with {theirs}",
                    )


def _membership_plan(
    seed: int, start_set: list[str], correct: list[str]
) -> list[tuple[int, bytes, str | None]]:
    """(tick, request, replica removed) for ``membership``: add the extra replica at
    tick 60, then remove a correct replica of the starting set from tick 150."""
    extra = [n for n in correct if n not in start_set]
    added = sorted([*start_set, *extra])
    candidates = [n for n in start_set if n in correct]
    gone = random.Random(f"{seed}:membership").choice(candidates)
    left = [n for n in added if n != gone]
    return [
        (60, SET_PREFIX + ",".join(added).encode(), None),
        (150, SET_PREFIX + ",".join(left).encode(), gone),
    ]


def _traced(env: Envelope) -> bool:
    return isinstance(env.body, PrePrepare | Prepare | Commit | ViewChange | NewView)


def _fmt(what: object) -> str:
    if not isinstance(what, Envelope):
        return str(what)
    b = what.body
    name = type(b).__name__
    if isinstance(b, PrePrepare | Prepare | Commit):
        return f"{what.frm}->{what.to} {name}(v={b.view}, n={b.seq}, d={b.digest.hex()[:8]}, by={b.replica})"
    if isinstance(b, ViewChange):
        return f"{what.frm}->{what.to} ViewChange(v={b.view}, h={b.seq}, P={len(b.prepared)}, by={b.replica})"
    if isinstance(b, NewView):
        return f"{what.frm}->{what.to} NewView(v={b.view}, O={len(b.pre_prepares)}, by={b.replica})"
    return f"{what.frm}->{what.to} {name}"


def run_pbft_seed(seed: int, opts: PbftSimOptions | None = None) -> SeedResult:
    return PbftSimulation(seed, opts).run()


def replace_options(opts: PbftSimOptions, **changes: object) -> PbftSimOptions:
    return dataclasses.replace(opts, **changes)  # type: ignore[arg-type]
