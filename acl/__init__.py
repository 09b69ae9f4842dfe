"""The deterministic grant and AI-audit state machine applied to committed blocks.

Pure: may import the standard library and ``chain`` only — never ``consensus``,
``storage`` or ``node``, and never asyncio, sockets, lmdb, the wall clock, global random
or print. The block timestamp is its only clock.
"""
