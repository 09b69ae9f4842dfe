"""The deterministic grant and AI-audit state machine applied to committed blocks.

Pure: may import the standard library and ``chain`` only — never ``consensus``,
``storage`` or ``node``, and never asyncio, sockets, lmdb, the wall clock, global random
or print. The block timestamp is its only clock.

Modules: ``results`` (the stored result codes), ``kinds`` (tx kinds and vocabularies),
``schema`` (versioned payload schemas), ``payloads`` (builders for clients), ``keys``
(the state's key layout), ``state`` (the ``StateReader``/``State`` protocols, memory state
and overlay) with ``state_conformance`` (checks every implementation passes), ``changeset``
(a block's writes as the bytes its state root hashes), ``samples`` (the audit story and
benchmark traffic, deterministic from a seed).

The machine: ``machine`` (``genesis_state``, ``apply_block``, ``replay_block``, and the
dispatcher that hands each tx to its kind's handler) over the rules of each family of
kinds — ``governance_rules``, ``identity_rules``, ``dataset_rules``, ``grant_rules``,
``audit_rules`` and ``run_rules`` — which work on ``block_context`` (one block's overlay,
caches and shared checks) and store ``records`` (record encodings); ``audit_counters`` (the running counts
of the audit log the report reads, written after each block's txs); ``state_root`` (the
chained state root); ``validator_history`` (the validator set after each block, rebuilt
from the governance proposals, for who certifies each height).

The queries: ``queries`` (what auditors ask, in one namespace) over one module per
question — ``access``, ``grant_lists``, ``dataset_history``, ``lineage``, ``audit_log``,
``violations``, ``audit_report``, ``consortium`` — built from ``lookups`` (one record by
id), ``views`` (records as JSON-ready dataclasses) and ``evidence`` (``TxRef``).

Imports point down: the families import ``block_context`` and ``records``, never
``machine``; the question modules import ``views`` and ``lookups``, never ``queries``.
"""
