"""Read-only questions an auditor, a steward or an app asks of the ACL state.

Every function takes a ``StateReader`` (committed state; LMDB or memory) and returns a
frozen dataclass whose ``to_json()`` gives plain JSON-ready data: ids in lowercase hex,
results by name (``no_grant``), times in unix ms. Every answer names the txs it rests on
(``TxRef``: height, index in block, tx id) so a receipt — the tx, its header, a Merkle
inclusion proof and the certificate — can be attached and checked offline.

This module gathers them in one namespace (what the RPC and the CLI call); each lives in
the module of its question:

- ``access``: ``access_check`` (may an organisation use a dataset for a purpose, when);
- ``grant_lists``: ``grants_by_dataset``, ``grants_by_grantee``;
- ``dataset_history``: ``dataset_history``;
- ``lineage``: ``model_lineage``;
- ``audit_log``: ``events``, ``event``, ``tx_result``;
- ``violations``: ``violations``;
- ``audit_report``: ``audit_report`` (from the audit counters, ``audit_counters``) and
  ``audit_report_scan`` (the same by reading every event: the reference);
- ``consortium``: ``organisations``, ``validators``, ``identity``, ``proposal``;
- ``lookups``: one record by id (``dataset``, ``grant``, ``model``, ``run``),
  ``state_root`` and ``QueryError``;

built from ``views`` (the records as frozen dataclasses) and ``evidence`` (``TxRef``).
"""

from __future__ import annotations

from acl.access import AccessDecision, access_check, grants_for_pair
from acl.audit_log import event, events, tx_result
from acl.audit_report import AuditReport, audit_report, audit_report_scan
from acl.consortium import identity, organisations, proposal, validators
from acl.dataset_history import DatasetHistory, dataset_history
from acl.evidence import EVIDENCE_MAX, TxRef
from acl.grant_lists import GrantList, grants_by_dataset, grants_by_grantee
from acl.lineage import LINEAGE_DEPTH_MAX, ModelLineage, model_lineage
from acl.lookups import QueryError, dataset, grant, model, run, state_root
from acl.views import DatasetView, EventView, GrantView, HistoryEntry, ModelView, RunView
from acl.violations import Violations, violations

__all__ = [
    "EVIDENCE_MAX",
    "LINEAGE_DEPTH_MAX",
    "AccessDecision",
    "AuditReport",
    "DatasetHistory",
    "DatasetView",
    "EventView",
    "GrantList",
    "GrantView",
    "HistoryEntry",
    "ModelLineage",
    "ModelView",
    "QueryError",
    "RunView",
    "TxRef",
    "Violations",
    "access_check",
    "audit_report",
    "audit_report_scan",
    "dataset",
    "dataset_history",
    "event",
    "events",
    "grant",
    "grants_by_dataset",
    "grants_by_grantee",
    "grants_for_pair",
    "identity",
    "model",
    "model_lineage",
    "organisations",
    "proposal",
    "run",
    "state_root",
    "tx_result",
    "validators",
    "violations",
]
