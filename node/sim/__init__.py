"""Deterministic simulator: the real consensus cores and driver over a simulated
network, clock and disk, all from one seed.

Part of ``node``: may import ``chain``, ``consensus``, ``storage`` and ``acl``.
"""
