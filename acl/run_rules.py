"""The rules of run events: training runs (``audit.training_run``) and federated rounds
(``audit.federated_round``).

A run keeps one record across its events (``K.RUN``): its organisation, the data it
uses, every grant it relied on and whether any use lacked one; each event adds a run
event under its own key and an audit event. Only the run's organisation continues it.
Continuing a training run re-checks the data it started with: training on after a
revocation is a violation.
"""

from __future__ import annotations

from typing import Any

from acl import keys as K
from acl import kinds as k
from acl.audit_rules import check_actor
from acl.block_context import BlockContext, Principal
from acl.results import Result

_TERMINAL = frozenset(("COMPLETE", "FAIL", "ABORT"))


def record_training_run(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    problem = check_actor(b, k.AUDIT_TRAINING_RUN, p, payload)
    if problem is not None:
        return problem
    rkey = K.RUN + K.run_key(payload["run_id"])
    run = b.load(rkey)
    event_type = payload["event_type"]
    if event_type == "START":
        if run is not None:
            return Result.ALREADY_EXISTS
        refs: list[dict[str, Any]] = list(payload["inputs"])
    else:
        if run is None:
            return Result.NOT_FOUND
        if run["org_id"] != p.org_id:
            return Result.UNAUTHORIZED
        if run["status"] in _TERMINAL:
            return Result.INVALID_STATE
        # Continuing a run keeps using its data: the grants must still be in force.
        refs = [_ref(u) for u in run["inputs"]] + list(payload.get("inputs", ()))
    base = payload.get("base_model")
    if base is not None and b.model(base["model_name"], base["model_version"]) is None:
        return Result.NOT_FOUND
    checked = b.check_inputs(p, refs, payload["purpose"])
    if isinstance(checked, Result):
        return checked
    result, uses = checked
    if run is None:
        run = {
            "run_id": payload["run_id"],
            "type": "training",
            "org_id": p.org_id,
            "identity": p.name,
            "purpose": payload["purpose"],
            "inputs": [],
            "grants_used": [],
            "base_model": base,
            "event_count": 0,
            "violation": False,
        }
    run = {
        **run,
        "inputs": _latest_uses(uses),
        "grants_used": _merge_grants(run["grants_used"], uses),
        "status": event_type,
        "event_count": run["event_count"] + 1,
        "violation": run["violation"] or result is Result.NO_GRANT,
    }
    b.run_event(payload["run_id"], event_type, result, None)
    for name in ("code_digest", "config_digest", "environment_digest", "model_digest"):
        if name in payload:
            run[name] = payload[name]
    b.store(rkey, run)
    b.log_event(
        k.AUDIT_TRAINING_RUN, p, payload, result, uses, [payload["run_id"], event_type], None
    )
    return result


def _latest_uses(uses: list[list[Any]]) -> list[list[Any]]:
    """One entry per (dataset, version), as checked by the latest event."""
    seen: set[tuple[str, int | None]] = set()
    out = []
    for use in uses:
        if (use[0], use[1]) not in seen:
            seen.add((use[0], use[1]))
            out.append(use)
    return out


def _merge_grants(known: list[bytes], uses: list[list[Any]]) -> list[bytes]:
    """Every grant a run relied on at any of its events, in first-use order: the lineage
    of its model rests on all of them."""
    merged = list(known)
    for use in uses:
        if use[2] is not None and use[2] not in merged:
            merged.append(use[2])
    return merged


def _ref(use: list[Any]) -> dict[str, Any]:
    ref: dict[str, Any] = {"dataset_id": use[0]}
    if use[1] is not None:
        ref["version"] = use[1]
    # No grant hint: any grant in force now may cover the continued use.
    return ref


def record_federated_round(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    problem = check_actor(b, k.AUDIT_FEDERATED_ROUND, p, payload)
    if problem is not None:
        return problem
    for org_id in payload["participants"]:
        if b.load(K.ORG + K.org_key(org_id)) is None:
            return Result.NOT_FOUND
    rkey = K.RUN + K.run_key(payload["run_id"])
    run = b.load(rkey)
    if run is not None and (run["org_id"] != p.org_id or run["type"] != "federated"):
        return Result.UNAUTHORIZED
    checked = b.check_inputs(p, payload.get("inputs", ()), payload.get("purpose"))
    if isinstance(checked, Result):
        return checked
    result, uses = checked
    if run is None:
        run = {
            "run_id": payload["run_id"],
            "type": "federated",
            "org_id": p.org_id,
            "identity": p.name,
            "purpose": payload.get("purpose"),
            "inputs": [],
            "base_model": None,
            "event_count": 0,
            "violation": False,
            "status": "RUNNING",
            "participants": [],
            "grants_used": [],
        }
    run = {
        **run,
        "inputs": _latest_uses(uses + run["inputs"]),
        "grants_used": _merge_grants(run["grants_used"], uses),
        "event_count": run["event_count"] + 1,
        "participants": sorted(set(run["participants"]) | set(payload["participants"])),
        "model_digest": payload["aggregate_digest"],
        "violation": run["violation"] or result is Result.NO_GRANT,
    }
    b.store(rkey, run)
    b.run_event(payload["run_id"], "ROUND", result, payload["round"])
    b.log_event(
        k.AUDIT_FEDERATED_ROUND,
        p,
        payload,
        result,
        uses,
        [payload["run_id"], payload["round"]],
        None,
    )
    return result
