"""Running many seeds and reporting them: shared by the CLI and the test suite."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from node.sim.options import SimOptions
from node.sim.world import SeedResult, run_seed


@dataclass
class Summary:
    seeds: int = 0
    committed: int = 0
    wall_s: float = 0.0
    #: CPU time of this process: the honest figure on a shared machine.
    cpu_s: float = 0.0
    failures: list[SeedResult] = field(default_factory=list)

    @property
    def entries_per_s(self) -> float:
        return self.committed / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def entries_per_cpu_s(self) -> float:
        return self.committed / self.cpu_s if self.cpu_s > 0 else 0.0

    def line(self) -> str:
        return (
            f"{self.seeds} seeds, {len(self.failures)} failed, {self.committed} entries "
            f"committed in {self.wall_s:.1f} s wall / {self.cpu_s:.1f} s CPU "
            f"({self.entries_per_s:,.0f} entries/s wall, "
            f"{self.entries_per_cpu_s:,.0f} entries/s CPU)"
        )


def run_seeds(
    seeds: Iterable[int],
    opts: SimOptions | None = None,
    on_result: Callable[[SeedResult], None] | None = None,
    run: Callable[[int], SeedResult] | None = None,
) -> Summary:
    """``run`` runs one seed (default: the Raft simulation with ``opts``)."""
    summary = Summary()
    start = time.perf_counter()
    cpu_start = time.process_time()
    for seed in seeds:
        result = run(seed) if run is not None else run_seed(seed, opts)
        summary.seeds += 1
        summary.committed += result.committed
        if not result.ok:
            summary.failures.append(result)
        if on_result is not None:
            on_result(result)
    summary.wall_s = time.perf_counter() - start
    summary.cpu_s = time.process_time() - cpu_start
    return summary


def describe_failure(result: SeedResult) -> str:
    lines = [f"seed {result.seed}: VIOLATION {result.violation} at tick {result.ticks}"]
    lines.append(f"faults: {result.profile}")
    lines.append(f"last {len(result.trace)} events:")
    lines += [f"  {t}" for t in result.trace]
    lines.append(f"reproduce with --seed {result.seed}")
    return "\n".join(lines)


def parse_seeds(text: str) -> range:
    """``A..B`` is inclusive at both ends, like the issue's ``0..999``; ``N`` is one."""
    if ".." in text:
        a, b = text.split("..", 1)
        lo, hi = int(a), int(b)
        if hi < lo:
            raise ValueError(f"empty seed range {text}")
        return range(lo, hi + 1)
    n = int(text)
    return range(n, n + 1)
