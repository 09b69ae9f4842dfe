"""One simulated cluster run from one seed: the real ``Raft`` core and the real
``Driver`` over ``SimNetwork``, in-memory durable storage and a tick clock.

Every source of randomness is a ``random.Random`` derived from the seed, and every
iteration is over sorted names, so a seed replays exactly.

Crash model: the storage is durable per ``save`` call (one LMDB write transaction), so
a crash loses whatever the driver had not yet persisted: the rest of the ``Ready`` being
executed, the core's memory and the state machine's memory. Crashes strike between
ticks, at a driver failpoint (before or after persisting, after any send or apply),
right after a granted vote or an append acknowledgement leaves, or in the middle of a
write (the log part kept, the hard state lost).
"""

from __future__ import annotations

import dataclasses
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from consensus.types import (
    AppendEntriesResponse,
    ConfOp,
    InvariantViolation,
    Message,
    RequestVoteResponse,
    Role,
)
from node.sim.checker import (
    CORE_INVARIANT,
    PROGRESS,
    Checker,
    LogView,
    Violation,
)
from node.sim.faults import FaultProfile, NodeCrash
from node.sim.network import LinkFaults, SimNetwork
from node.sim.options import SimOptions
from node.sim.replica import SimNode


@dataclass
class SeedResult:
    seed: int
    ok: bool
    violation: str | None
    committed: int
    ticks: int
    trace: list[str]
    messages: int = 0
    #: The seed's fault profile, for the failure report.
    profile: str = ""


class Simulation:
    def __init__(self, seed: int, opts: SimOptions | None = None) -> None:
        self.seed = seed
        self.opts = opts or SimOptions()
        self.now = 0
        self.checker = Checker()
        prof_rng = random.Random(f"{seed}:profile")
        self.profile = FaultProfile.draw(prof_rng) if self.opts.faults else FaultProfile.calm()
        self.raft_config = dataclasses.replace(
            self.opts.raft,
            pre_vote=self.opts.raft.pre_vote and self.profile.pre_vote,
            check_quorum=self.opts.raft.check_quorum and self.profile.check_quorum,
        )
        self.net: SimNetwork[Message] = SimNetwork(random.Random(f"{seed}:net"), self.profile.link)
        self.rng = random.Random(f"{seed}:faults")
        self.client_rng = random.Random(f"{seed}:client")
        n = self.opts.nodes
        voters = [f"n{i}" for i in range(1, n + 1)]
        spares = [f"n{n + 1}"] if self.profile.membership else []
        self.nodes: dict[str, SimNode] = {}
        for name in voters:
            self.nodes[name] = SimNode(self, name, voters)
        for name in spares:
            self.nodes[name] = SimNode(self, name, ())
        self.order = sorted(self.nodes)
        self._trace: deque[tuple[int, object]] = deque(maxlen=self.opts.trace_len)
        #: Active partitions: (end tick, directed cuts, flap period or 0).
        self._partitions: list[tuple[int, frozenset[tuple[str, str]], int]] = []
        self._proposed = 0
        self.fault_end = max(0, self.opts.ticks - self.opts.heal_bound_ticks)
        self._commit_at_heal = 0

    # --- trace ----------------------------------------------------------------------

    def trace_event(self, what: object) -> None:
        self._trace.append((self.now, what))

    def trace(self) -> list[str]:
        return [f"t={t:>5} {_fmt(what)}" for t, what in self._trace]

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
            trace=self.trace() if not ok else [],
            messages=self.net.sent,
            profile="" if ok else repr(self.profile),
        )

    def _tick(self) -> None:
        now = self.now
        if now <= self.fault_end and self.opts.faults:
            self._inject_faults()
        if now == self.fault_end:
            self._heal()
        self._update_partitions()
        for node in self.nodes.values():
            if node.up is False and node.restart_at and now >= node.restart_at:
                node.restart_at = 0
                self.trace_event(f"{node.id} RESTART")
                node.start()
        for msg in self.net.due(now):
            node = self.nodes[msg.to]
            if node.up:
                node.inbox.append(msg)
        for name in self.order:
            node = self.nodes[name]
            if not node.active(now):
                continue
            core = node.core
            inbox = node.inbox
            while inbox:
                msg = inbox.popleft()
                self._trace.append((now, msg))
                core.step(msg)
                node.observe()
            core.tick()
            node.observe()
        self._client()
        for name in self.order:
            node = self.nodes[name]
            if node.active(now):
                node.process()
        if now % 20 == 0:
            self._compact()

    def _leader(self) -> SimNode | None:
        best: SimNode | None = None
        for name in self.order:
            node = self.nodes[name]
            if (
                node.up
                and node.core.role is Role.LEADER
                and (best is None or node.core.term > best.core.term)
            ):
                best = node
        return best

    def _client(self) -> None:
        now = self.now
        if now > self.opts.ticks - self.opts.drain_ticks:
            return
        leader = self._leader()
        if self.profile.stale_clients and self.client_rng.random() < 0.2:
            claimants = [
                n for n in self.order if self.nodes[n].up and self.nodes[n].core.role is Role.LEADER
            ]
            if claimants:
                leader = self.nodes[self.client_rng.choice(claimants)]
        if leader is None or not leader.active(now):
            return
        core = leader.core
        for _ in range(self.opts.proposals_per_tick):
            self._proposed += 1
            if not core.propose(f"{self.seed}/{self._proposed}".encode()):
                break

    def _compact(self) -> None:
        for name in self.order:
            node = self.nodes[name]
            if not node.up:
                continue
            applied = node.sm.index
            if applied - node.core.log.snapshot.meta.index >= self.opts.compact_every_entries:
                try:
                    node.driver.compact(applied, node.sm.snapshot_bytes())
                except NodeCrash as e:
                    node.crash(f"at failpoint {e}")

    # --- faults ---------------------------------------------------------------------

    def _inject_faults(self) -> None:
        p = self.profile
        rng = self.rng
        now = self.now
        if p.crash_rate and rng.random() < p.crash_rate:
            up = [n for n in self.order if self.nodes[n].up]
            if up:
                node = self.nodes[rng.choice(up)]
                mode = rng.random()
                if mode < 0.4:
                    node.crash("between ticks")
                elif mode < 0.7:
                    node.crash_countdown = rng.randint(1, 40)
                    self.trace_event(f"{node.id} will crash at failpoint #{node.crash_countdown}")
                elif mode < 0.8:
                    node.storage.tear_next_write = True
                    self.trace_event(f"{node.id} will crash tearing its next write")
                else:
                    node.crash_after = rng.choice([RequestVoteResponse, AppendEntriesResponse])
                    self.trace_event(f"{node.id} will crash after a {node.crash_after.__name__}")
        for node in self.nodes.values():
            if node.up is False and node.restart_at == 0:
                # A supervisor restarts the process: at once (quick) or after a while.
                node.restart_at = now + (
                    rng.randint(1, 2) if p.quick_restart else rng.randint(1, 80)
                )
        if p.partition_rate and rng.random() < p.partition_rate:
            self._start_partition()
        if p.pause_rate and rng.random() < p.pause_rate:
            node = self.nodes[rng.choice(self.order)]
            node.paused_until = now + rng.randint(5, 100)
            self.trace_event(f"{node.id} PAUSED until {node.paused_until}")
        if p.slow_rate and rng.random() < p.slow_rate:
            node = self.nodes[rng.choice(self.order)]
            node.slow_every = rng.randint(2, 5)
            node.slow_until = now + rng.randint(20, 300)
            self.trace_event(f"{node.id} SLOW 1/{node.slow_every} until {node.slow_until}")
        leader = self._leader()
        if leader is not None:
            if p.transfer_rate and rng.random() < p.transfer_rate:
                others = [v for v in leader.core.status().voters if v != leader.id]
                if others:
                    to = rng.choice(others)
                    ok = leader.core.transfer_leadership(to)
                    self.trace_event(f"{leader.id} TRANSFER to {to} -> {ok}")
            if p.membership and rng.random() < 0.01:
                self._change_membership(leader)

    def _change_membership(self, leader: SimNode) -> None:
        voters = leader.core.status().voters
        n = self.opts.nodes
        rng = self.rng
        if len(voters) > n or (len(voters) == n and rng.random() < 0.5):
            target = rng.choice(voters)
            ok = leader.core.propose_conf_change(ConfOp.REMOVE, target)
            self.trace_event(f"{leader.id} CONF remove {target} -> {ok}")
        else:
            outside = [x for x in self.order if x not in voters]
            if not outside:
                return
            target = rng.choice(outside)
            ok = leader.core.propose_conf_change(ConfOp.ADD, target)
            self.trace_event(f"{leader.id} CONF add {target} -> {ok}")

    def _start_partition(self) -> None:
        rng = self.rng
        names = self.order
        kind = rng.choice(["isolate", "split", "oneway", "flap", "bridge"])
        end = self.now + rng.randint(10, 150)
        cuts: set[tuple[str, str]] = set()
        period = 0
        if kind in ("isolate", "flap"):
            x = rng.choice(names)
            cuts = {(x, y) for y in names if y != x} | {(y, x) for y in names if y != x}
            period = rng.randint(3, 15) if kind == "flap" else 0
        elif kind == "split":
            shuffled = names[:]
            rng.shuffle(shuffled)
            k = rng.randint(1, len(names) // 2)
            a, b = shuffled[:k], shuffled[k:]
            cuts = {(x, y) for x in a for y in b} | {(y, x) for x in a for y in b}
        elif kind == "oneway":
            x = rng.choice(names)
            ys = [y for y in names if y != x]
            targets = ys if rng.random() < 0.5 else [rng.choice(ys)]
            outbound = rng.random() < 0.5
            cuts = {(x, y) if outbound else (y, x) for y in targets}
        else:  # bridge: two sides that only one node connects
            shuffled = names[:]
            rng.shuffle(shuffled)
            bridge, rest = shuffled[0], shuffled[1:]
            half = len(rest) // 2
            a, b = rest[:half], rest[half:]
            cuts = {(x, y) for x in a for y in b} | {(y, x) for x in a for y in b}
            kind = f"bridge via {bridge}"
        self._partitions.append((end, frozenset(cuts), period))
        self.trace_event(f"PARTITION {kind} until {end}: {_fmt_cuts(cuts)}")

    def _update_partitions(self) -> None:
        now = self.now
        before = len(self._partitions)
        self._partitions = [p for p in self._partitions if p[0] > now]
        if not self._partitions:
            if before:
                self.net.cut = set()
                self.trace_event("PARTITIONS healed")
            return
        cut: set[tuple[str, str]] = set()
        for _, cuts, period in self._partitions:
            if period == 0 or (now // period) % 2 == 0:
                cut |= cuts
        self.net.cut = cut

    def _heal(self) -> None:
        self.trace_event("HEAL: faults stop")
        self._partitions = []
        self.net.cut = set()
        self.net.faults = LinkFaults(delay_min_ticks=1, delay_max_ticks=2)
        for node in self.nodes.values():
            node.paused_until = 0
            node.slow_until = 0
            node.crash_countdown = 0
            node.crash_after = None
            node.storage.tear_next_write = False
            if not node.up:
                node.restart_at = self.now
        self._commit_at_heal = self.checker.max_committed

    # --- end of run -----------------------------------------------------------------

    def _final_checks(self) -> None:
        leader = self._leader()
        if leader is None:
            raise Violation(PROGRESS, f"no leader {self.opts.heal_bound_ticks} ticks after heal")
        core = leader.core
        if self.checker.max_committed <= self._commit_at_heal:
            raise Violation(PROGRESS, f"nothing committed after heal (at {self._commit_at_heal})")
        if core.log.commit != core.log.last_index:
            raise Violation(PROGRESS, f"leader {leader.id} still has uncommitted entries")
        for v in core.status().voters:
            node = self.nodes[v]
            if not node.up or node.sm.index != core.log.commit:
                got = node.sm.index if node.up else "down"
                raise Violation(
                    PROGRESS, f"voter {v} applied {got}, leader committed {core.log.commit}"
                )
        views = {}
        for name in self.order:
            node = self.nodes[name]
            if node.up:
                log = node.core.log
                views[name] = LogView(
                    log.first_index, log.slice(log.first_index, log.last_index + 1)
                )
        self.checker.check_log_matching(views)


class _Ticked(Protocol):
    now: int

    def _tick(self) -> None: ...

    def _final_checks(self) -> None: ...


class _Startable(Protocol):
    def start(self) -> None: ...


def drive(world: _Ticked, nodes: Iterable[_Startable], ticks: int) -> tuple[bool, str | None]:
    """Start the nodes, run ``ticks`` ticks and the final checks: (ok, the violation).
    The one main loop of every protocol's simulation (``pbft_world`` uses it too)."""
    try:
        for node in nodes:
            node.start()
        for t in range(1, ticks + 1):
            world.now = t
            world._tick()
        world._final_checks()
    except Violation as v:
        return False, str(v)
    except InvariantViolation as e:
        return False, f"{CORE_INVARIANT}: {e}"
    return True, None


def _fmt_cuts(cuts: set[tuple[str, str]]) -> str:
    return " ".join(f"{a}->{b}" for a, b in sorted(cuts)) or "(none)"


def _fmt(what: object) -> str:
    if isinstance(what, str):
        return what
    name = type(what).__name__
    fields = getattr(what, "__slots__", ())
    parts = []
    for f in fields:
        v = getattr(what, f)
        if f == "entries":
            v = f"[{v[0].index}..{v[-1].index}]" if v else "[]"
        elif f == "snapshot":
            v = f"snap@{v.meta.index}"
        elif f in ("frm", "to"):
            continue
        parts.append(f"{f}={v}")
    return f"{what.frm}->{what.to} {name}({', '.join(parts)})"  # type: ignore[attr-defined]


def run_seed(seed: int, opts: SimOptions | None = None) -> SeedResult:
    return Simulation(seed, opts).run()
