"""One record read by its key: a dataset, a grant, a model, a run, the state root.

``QueryError`` says that the thing asked about does not exist.
"""

from __future__ import annotations

from typing import Any

from acl import keys as K
from acl.state import StateReader, scan_prefix
from acl.views import DatasetView, GrantView, ModelView, RunView
from chain import codec


class QueryError(LookupError):
    """The thing asked about does not exist; the message names it."""


def load_record(state: StateReader, key: bytes) -> Any:
    """The decoded record under ``key``, or None if there is none."""
    raw = state.get(key)
    return None if raw is None else codec.decode(raw)


def dataset(state: StateReader, dataset_id: str) -> DatasetView:
    rec = load_record(state, K.DATASET + K.dataset_key(dataset_id))
    if rec is None:
        raise QueryError(f"no dataset {dataset_id!r}")
    versions = (
        codec.decode(v) for _, v in scan_prefix(state, K.VERSION + K.dataset_key(dataset_id))
    )
    return DatasetView.from_record(rec, versions)


def grant(state: StateReader, grant_id: bytes) -> GrantView:
    rec = load_record(state, K.GRANT + grant_id)
    if rec is None:
        raise QueryError(f"no grant {grant_id.hex()}")
    return GrantView.from_record(rec)


def model(state: StateReader, model_name: str, model_version: int) -> ModelView:
    rec = load_record(state, K.MODEL + K.model_version_key(model_name, model_version))
    if rec is None or model_version == 0:
        raise QueryError(f"no model {model_name!r} version {model_version}")
    return ModelView.from_record(rec)


def run(state: StateReader, run_id: str) -> RunView:
    rec = load_record(state, K.RUN + K.run_key(run_id))
    if rec is None:
        raise QueryError(f"no run {run_id!r}")
    return RunView.from_record(rec, scan_prefix(state, K.RUN_EVENT + K.run_key(run_id)))


def state_root(state: StateReader) -> tuple[int, bytes]:
    """(height, state root) the state is at."""
    height = state.get(K.META_HEIGHT)
    root = state.get(K.META_ROOT)
    if height is None or root is None:
        raise QueryError("state has not been initialised from a genesis")
    return int.from_bytes(height, "big"), root
