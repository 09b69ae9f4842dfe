"""Deterministic simulator: the real consensus cores and driver over a simulated
network, clock and disk, all from one seed.

Part of ``node``: may import ``chain``, ``consensus``, ``storage``, ``acl`` and
``node.consensus_driver`` (the real driver it runs); nothing else of ``node``.

Run it as ``python -m node.sim --protocol raft --seeds 0..999 [--nodes 3|5]
[--ticks N]``; a violation prints the last events and ``reproduce with --seed N``, and
the exit status is 1. Modules: ``options`` (what a run is made of), ``world``
(one seeded cluster run and its fault injection), ``replica`` (one node: core, driver,
storage, state machine), ``faults`` (per-seed fault profile), ``network`` (links),
``checker`` (the Raft properties), ``runner`` (many seeds, reports).

PBFT: ``python -m node.sim --protocol pbft --byzantine F --seeds A..B [--nodes N]
[--behaviour B]... [--bug NAME]...``. Modules: ``pbft_world`` (one seeded run),
``pbft_replica`` (one replica: the real ``Pbft`` core and ``Driver``), ``byzantine``
(the adversary that drives the faulty replicas), ``pbft_checker`` (the PBFT
properties, over correct replicas only).
"""
