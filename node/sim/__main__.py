"""``python -m node.sim --protocol raft --seeds A..B [--nodes 3|5] [--ticks N]``, or
``python -m node.sim --protocol pbft --byzantine F --seeds A..B [--nodes N] [--bug NAME]
[--membership]``.

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
from consensus.pbft_config import PbftBugs
from consensus.raft import Raft
from consensus.storage import MemoryRaftStorage
from node.sim.byzantine import BEHAVIOURS
from node.sim.options import CoreFactory, PbftSimOptions, SimOptions
from node.sim.pbft_world import run_pbft_seed
from node.sim.runner import describe_failure, parse_seeds, run_seeds
from node.sim.world import SeedResult


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m node.sim", description=__doc__)
    ap.add_argument("--protocol", choices=["raft", "pbft"], default="raft")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--seeds", help="inclusive range A..B")
    group.add_argument("--seed", type=int, help="one seed (to reproduce a failure)")
    ap.add_argument("--nodes", type=int, help="raft: 3 or 5 (default 3); pbft: >= 4 (default 4)")
    ap.add_argument("--ticks", type=int, help=f"default {SimOptions.ticks} (raft), 600 (pbft)")
    ap.add_argument("--byzantine", type=int, default=1, help="pbft: faulty replicas (may exceed f)")
    ap.add_argument(
        "--behaviour",
        action="append",
        choices=BEHAVIOURS,
        help="pbft: restrict the faulty replicas to these behaviours (repeatable)",
    )
    ap.add_argument(
        "--bug",
        action="append",
        choices=[f.name for f in dataclasses.fields(PbftBugs)],
        help="pbft: plant a bug in every core (the checker must flag it)",
    )
    ap.add_argument(
        "--membership",
        action="store_true",
        help="pbft: add one more replica by a request, then remove one (the set follows)",
    )
    ap.add_argument(
        "--rate",
        type=int,
        help=f"proposals per tick (default {SimOptions.proposals_per_tick} raft, 1 pbft)",
    )
    ap.add_argument("--no-faults", action="store_true", help="calm network (throughput)")
    ap.add_argument(
        "--core",
        help="module:Class of a Raft subclass to run instead (planted-bug demos)",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per seed")
    args = ap.parse_args(argv)
    if args.protocol == "pbft":
        return _main_pbft(ap, args)
    if args.nodes is None:
        args.nodes = 3
    elif args.nodes not in (3, 5):
        ap.error("--nodes must be 3 or 5 for raft")
    if args.ticks is None:
        args.ticks = SimOptions.ticks
    if args.ticks < SimOptions.heal_bound_ticks + 50:
        ap.error(f"--ticks must be at least {SimOptions.heal_bound_ticks + 50}")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else range(args.seed, args.seed + 1)
    opts = SimOptions(
        nodes=args.nodes,
        ticks=args.ticks,
        proposals_per_tick=args.rate if args.rate is not None else SimOptions.proposals_per_tick,
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


def _main_pbft(ap: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    defaults = PbftSimOptions()
    nodes = args.nodes if args.nodes is not None else defaults.nodes
    ticks = args.ticks if args.ticks is not None else defaults.ticks
    if nodes < 4:
        ap.error("--nodes must be at least 4 for pbft (n = 3f+1)")
    if not 0 <= args.byzantine < nodes:
        ap.error("--byzantine must be in [0, nodes)")
    if ticks < defaults.heal_bound_ticks + 50:
        ap.error(f"--ticks must be at least {defaults.heal_bound_ticks + 50}")
    if args.core:
        ap.error("--core is for raft; use --bug for pbft")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else range(args.seed, args.seed + 1)
    bugs = PbftBugs(**{name: True for name in args.bug or ()})
    opts = PbftSimOptions(
        nodes=nodes,
        byzantine=args.byzantine,
        ticks=ticks,
        proposals_per_tick=args.rate if args.rate is not None else defaults.proposals_per_tick,
        faults=not args.no_faults,
        behaviours=tuple(args.behaviour or ()),
        membership=args.membership,
        pbft=dataclasses.replace(defaults.pbft, bugs=bugs),
    )
    f = (nodes - 1) // 3

    def report(r: SeedResult) -> None:
        if not r.ok:
            print(describe_failure(r), flush=True)
        elif args.verbose:
            print(f"seed {r.seed}: ok, {r.committed} committed, {r.messages} messages")

    print(
        f"pbft simulator: seeds {seeds.start}..{seeds.stop - 1}, {nodes} replicas "
        f"(f = {f}), {args.byzantine} Byzantine, {ticks} ticks"
        + (f", planted bugs: {', '.join(args.bug)}" if args.bug else "")
        + (", one replica added then one removed" if args.membership else ""),
        flush=True,
    )
    summary = run_seeds(seeds, None, report, run=lambda s: run_pbft_seed(s, opts))
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
