"""``python -m node.sim --protocol raft --seeds A..B [--nodes 3|5] [--ticks N]``.

Exits 1 if any seed violates a property, after printing each failure's trace and the
line ``reproduce with --seed N``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import random
import sys

from consensus.config import RaftConfig
from consensus.raft import Raft
from consensus.storage import MemoryRaftStorage
from node.sim.options import CoreFactory, SimOptions
from node.sim.runner import describe_failure, parse_seeds, run_seeds
from node.sim.world import SeedResult


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m node.sim", description=__doc__)
    ap.add_argument("--protocol", choices=["raft"], default="raft")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--seeds", help="inclusive range A..B")
    group.add_argument("--seed", type=int, help="one seed (to reproduce a failure)")
    ap.add_argument("--nodes", type=int, choices=[3, 5], default=3)
    ap.add_argument("--ticks", type=int, default=SimOptions.ticks)
    ap.add_argument(
        "--rate", type=int, default=SimOptions.proposals_per_tick, help="proposals per tick"
    )
    ap.add_argument("--no-faults", action="store_true", help="calm network (throughput)")
    ap.add_argument(
        "--core",
        help="module:Class of a Raft subclass to run instead (planted-bug demos)",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per seed")
    args = ap.parse_args(argv)
    if args.ticks < SimOptions.heal_bound_ticks + 50:
        ap.error(f"--ticks must be at least {SimOptions.heal_bound_ticks + 50}")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else range(args.seed, args.seed + 1)
    opts = SimOptions(
        nodes=args.nodes,
        ticks=args.ticks,
        proposals_per_tick=args.rate,
        faults=not args.no_faults,
    )
    if args.core:
        opts = dataclasses.replace(opts, core=_load_core(args.core))

    def report(r: SeedResult) -> None:
        if not r.ok:
            print(describe_failure(r), flush=True)
        elif args.verbose:
            print(f"seed {r.seed}: ok, {r.committed} committed, {r.messages} messages")

    print(
        f"raft simulator: seeds {seeds.start}..{seeds.stop - 1}, {args.nodes} nodes, "
        f"{args.ticks} ticks",
        flush=True,
    )
    summary = run_seeds(seeds, opts, report)
    print(summary.line())
    if summary.failures:
        print("failing seeds: " + " ".join(str(r.seed) for r in summary.failures))
        return 1
    return 0


def _load_core(spec: str) -> CoreFactory:
    module, _, name = spec.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, Raft)):
        raise SystemExit(f"--core {spec}: not a Raft subclass")

    def make(node_id: str, storage: MemoryRaftStorage, rng: random.Random, cfg: RaftConfig) -> Raft:
        return cls(node_id, storage, rng, cfg)

    return make


if __name__ == "__main__":
    sys.exit(main())
