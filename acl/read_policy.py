"""Who may read what over the RPC, when reads are for members (``rpc_auth = "members"``).

A reader is one registered identity, authenticated by its signed request
(``node.api.auth``), and reads for its organisation:

- an organisation sees its own datasets, and those it holds or held a grant on;
- a dataset's ``location`` (where the data lives off chain) only its owner and its
  current grantees (a grant in force now) see; others see ``null`` there;
- it sees the grants where it is grantor (the dataset's owner) or grantee;
- it sees the audit events it is party to: sent by one of its identities (or on its
  behalf), or using one of its datasets;
- of a block, the header and certificate (needed to check receipts) and its own txs;
- anything else of another organisation answers as if absent (404 with the message an
  absent record gives, so the answer is no existence oracle), or is left out of lists.

**Auditors.** A reader sees everything only if its identity has the ``auditor`` role
*and* its organisation is one the consortium designated as auditing (``auditor_orgs`` in
the genesis). The role alone is not enough: an organisation's admin registers the
identities of its own organisation, roles included, so a role-only rule would let any
member give itself every competitor's data. The audit report and whole raw blocks are
for auditors.

Pure: it decides on the JSON documents the RPC builds (``acl.queries``' ``to_json``) and
on what the caller looked up; the node applies it (``node.api.read_guard``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

AUDITOR_ROLE = "auditor"


@dataclass(frozen=True, slots=True)
class Reader:
    """The identity a request reads as."""

    org_id: str
    identity: str
    role: str
    sees_all: bool


def reader_for(org_id: str, identity: str, role: str, auditor_orgs: Iterable[str]) -> Reader:
    """The reader for an identity: ``sees_all`` only for an ``auditor`` of an organisation
    the consortium designated as auditing."""
    return Reader(org_id, identity, role, role == AUDITOR_ROLE and org_id in set(auditor_orgs))


def sees_dataset(reader: Reader, owner_org: str, grantee_orgs: Iterable[str]) -> bool:
    """The dataset's record: its owner, an organisation that holds or held a grant on it,
    auditors."""
    return reader.sees_all or owner_org == reader.org_id or reader.org_id in set(grantee_orgs)


def sees_location(reader: Reader, owner_org: str, current_grantee_orgs: Iterable[str]) -> bool:
    """Where the data lives: its owner, its current grantees, auditors."""
    return (
        reader.sees_all or owner_org == reader.org_id or reader.org_id in set(current_grantee_orgs)
    )


def dataset_doc(
    reader: Reader,
    doc: dict[str, Any],
    grantee_orgs: Iterable[str],
    current_grantee_orgs: Iterable[str],
) -> dict[str, Any] | None:
    """A dataset's document as ``reader`` may see it, or None (answer as absent)."""
    owner = doc["owner_org"]
    if not sees_dataset(reader, owner, grantee_orgs):
        return None
    if sees_location(reader, owner, current_grantee_orgs):
        return doc
    return {**doc, "location": None}


def sees_grant(reader: Reader, grant: dict[str, Any]) -> bool:
    return reader.sees_all or reader.org_id in (grant["owner_org"], grant["grantee_org"])


def _refs(refs: Iterable[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Tx references in first-seen order, once each."""
    out: dict[str, dict[str, Any]] = {}
    for r in refs:
        if r is not None:
            out.setdefault(r["tx_id"], r)
    return list(out.values())


def grant_list_doc(reader: Reader, doc: dict[str, Any]) -> dict[str, Any]:
    """A grant list (``GET /v1/grants``) with only the grants ``reader`` is party to, and
    the evidence of those."""
    if reader.sees_all:
        return doc
    grants = [g for g in doc["grants"] if sees_grant(reader, g)]
    if len(grants) == len(doc["grants"]):
        return doc
    kept = {r["tx_id"] for r in _refs(x for g in grants for x in (g["issued"], g["revoked"]))}
    evidence = [r for r in doc["evidence"] if r["tx_id"] in kept]
    return {**doc, "grants": grants, "evidence": evidence}


def sees_event(
    reader: Reader, event: dict[str, Any], owner_of: Callable[[str], str | None]
) -> bool:
    """An audit event: sent by (or on behalf of) the reader's organisation, or using one
    of its datasets (``owner_of`` gives a dataset's owner, None if unknown)."""
    if reader.sees_all:
        return True
    if reader.org_id in (event["actor"]["org_id"], event.get("on_behalf_of")):
        return True
    return any(owner_of(u["dataset_id"]) == reader.org_id for u in event.get("uses") or ())


def events_doc(
    reader: Reader, doc: dict[str, Any], owner_of: Callable[[str], str | None]
) -> dict[str, Any]:
    """A list of events (``GET /v1/violations``) with only those ``reader`` is party to."""
    if reader.sees_all:
        return doc
    events = [e for e in doc["events"] if sees_event(reader, e, owner_of)]
    if len(events) == len(doc["events"]):
        return doc
    kept = {e["tx"]["tx_id"] for e in events}
    out = {**doc, "events": events, "evidence": [r for r in doc["evidence"] if r["tx_id"] in kept]}
    if "count" in out:
        out["count"] = len(events)
    return out


def sees_sender(reader: Reader, sender_org: str | None) -> bool:
    """A tx (its receipt, its place in a block): sent by one of the reader's identities."""
    return reader.sees_all or (sender_org is not None and sender_org == reader.org_id)


def sees_access_check(reader: Reader, org_id: str, owner_org: str | None) -> bool:
    """An access decision for ``org_id`` on a dataset: that organisation asks about
    itself, or the dataset's owner asks about a grantee."""
    return reader.sees_all or reader.org_id in (org_id, owner_org)


def sees_model(reader: Reader, model_org: str) -> bool:
    """A model and its lineage: the organisation that registered it."""
    return reader.sees_all or model_org == reader.org_id


def sees_everything(reader: Reader) -> bool:
    """The audit report, whole raw blocks, the explorer's consortium-wide pages."""
    return reader.sees_all
