"""Sans-IO consensus cores (Raft, PBFT) behind one interface: step, tick, has_ready,
ready, advance. They order opaque payloads and know nothing of grants.

Pure: may import the standard library and ``chain`` only — never ``storage``, ``acl``
or ``node``, and never asyncio, sockets, lmdb, the wall clock, global random or print.
Time enters as ticks; randomness as an injected ``random.Random``.
"""
