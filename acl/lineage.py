"""Model lineage: a model and everything it rests on, transitively, with the grants that
allowed each use of data and every use that lacked one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from acl import keys as K
from acl.dataset_history import read_derivations, read_history
from acl.evidence import EVIDENCE_MAX, TxRef, cap_evidence
from acl.lookups import dataset, grant, model, run
from acl.results import Result
from acl.state import StateReader
from acl.views import DatasetView, GrantView, HistoryEntry, ModelView, RunView

LINEAGE_DEPTH_MAX: Final = 32


@dataclass(frozen=True, slots=True)
class ModelLineage:
    """A model and everything it rests on, transitively: parent models, training runs,
    the datasets they used (and the datasets those were derived from) and the grants that
    allowed each use, plus what was done with the model since (deployments, inference,
    evaluations, oversight, incidents)."""

    model: ModelView
    models: tuple[ModelView, ...]
    """The model and its ancestors, nearest first."""
    runs: tuple[RunView, ...]
    datasets: tuple[DatasetView, ...]
    grants: tuple[GrantView, ...]
    derivations: tuple[dict[str, Any], ...] = field(hash=False)
    uses: tuple[HistoryEntry, ...] = ()
    violations: tuple[TxRef, ...] = ()
    """Txs in the lineage recorded as ``no_grant``."""
    evidence: tuple[TxRef, ...] = ()
    truncated: bool = False

    @property
    def clean(self) -> bool:
        """No use of data in the lineage lacked a grant."""
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model.to_json(),
            "models": [m.to_json() for m in self.models],
            "runs": [r.to_json() for r in self.runs],
            "datasets": [d.to_json() for d in self.datasets],
            "grants": [g.to_json() for g in self.grants],
            "derivations": list(self.derivations),
            "uses": [u.to_json() for u in self.uses],
            "violations": [r.to_json() for r in self.violations],
            "clean": self.clean,
            "evidence": [r.to_json() for r in self.evidence],
            "truncated": self.truncated,
        }


def model_lineage(state: StateReader, model_name: str, model_version: int) -> ModelLineage:
    """Walk from the model to its parents and base models (breadth first, at most
    ``LINEAGE_DEPTH_MAX`` generations), their training runs, the datasets those used and,
    through registered derivations, the datasets those came from, collecting the grants
    relied on and every ``no_grant`` on the way."""
    root = model(state, model_name, model_version)
    models: list[ModelView] = []
    runs: dict[str, RunView] = {}
    dataset_ids: list[str] = []
    grant_ids: list[bytes] = []
    evidence: list[TxRef] = []
    violations: list[TxRef] = []
    seen_models: set[tuple[str, int]] = set()
    frontier: list[tuple[str, int, int]] = [(model_name, model_version, 0)]
    while frontier:
        name, version, depth = frontier.pop(0)
        if (name, version) in seen_models or depth > LINEAGE_DEPTH_MAX:
            continue
        seen_models.add((name, version))
        m = root if (name, version) == (model_name, model_version) else model(state, name, version)
        models.append(m)
        evidence.append(m.registered)
        frontier.extend((n, v, depth + 1) for n, v in m.parent_models)
        for run_id in m.training_runs:
            if run_id in runs:
                continue
            r = runs[run_id] = run(state, run_id)
            for _event_type, ref, _ms, result in r.events:
                evidence.append(ref)
                if result == Result.NO_GRANT:
                    violations.append(ref)
            for d, _v, g, _c, _a in r.inputs:
                if d not in dataset_ids:
                    dataset_ids.append(d)
                if g is not None and g not in grant_ids:
                    grant_ids.append(g)
            grant_ids.extend(g for g in r.grants_used if g not in grant_ids)
            if r.base_model is not None:
                frontier.append((*r.base_model, depth + 1))
    derivations: list[dict[str, Any]] = []
    i = 0
    while i < len(dataset_ids) and i < EVIDENCE_MAX:
        for derivation in read_derivations(state, dataset_ids[i]):
            derivations.append({"output_dataset_id": dataset_ids[i], **derivation})
            ref = _ref_json(derivation["tx"])
            evidence.append(ref)
            if derivation["result"] == Result.NO_GRANT.label:
                violations.append(ref)
            for inp in derivation["inputs"]:
                if inp["dataset_id"] not in dataset_ids:
                    dataset_ids.append(inp["dataset_id"])
                if inp["grant_id"] is not None and bytes.fromhex(inp["grant_id"]) not in grant_ids:
                    grant_ids.append(bytes.fromhex(inp["grant_id"]))
        i += 1
    datasets = tuple(dataset(state, d) for d in dataset_ids)
    evidence.extend(d.registered for d in datasets)
    grants = tuple(grant(state, g) for g in grant_ids)
    evidence.extend(r for g in grants for r in g.evidence())
    uses = tuple(read_history(state, K.MODEL_USE + K.model_version_key(model_name, model_version)))
    evidence.extend(u.tx for u in uses)
    violations.extend(u.tx for u in uses if u.result == Result.NO_GRANT)
    refs, truncated = cap_evidence(evidence)
    return ModelLineage(
        root,
        tuple(models),
        tuple(runs.values()),
        datasets,
        grants,
        tuple(derivations),
        uses,
        tuple(sorted(set(violations))),
        refs,
        truncated,
    )


def _ref_json(doc: dict[str, Any]) -> TxRef:
    return TxRef(doc["height"], doc["index"], bytes.fromhex(doc["tx_id"]))
