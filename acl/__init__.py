"""The deterministic grant and AI-audit state machine applied to committed blocks.

Pure: may import the standard library and ``chain`` only — never ``consensus``,
``storage`` or ``node``, and never asyncio, sockets, lmdb, the wall clock, global random
or print. The block timestamp is its only clock.

Modules: ``results`` (the stored result codes), ``kinds`` (tx kinds and vocabularies),
``schema`` (versioned payload schemas), ``payloads`` (builders for clients), ``keys``
(the state's key layout), ``state`` (the ``StateReader``/``State`` protocols, memory state
and overlay) with ``state_conformance`` (checks every implementation passes), ``machine``
(``genesis_state``, ``apply_block`` and ``replay_block``), ``changeset`` (a block's writes
as the bytes its state root hashes), ``queries`` (what auditors ask), ``samples``
(the audit story and benchmark traffic, deterministic from a seed).
"""
