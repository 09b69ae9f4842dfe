"""What every tx handler works on: one block's context.

``BlockContext`` holds the block's ``Overlay`` (its writes on top of the committed
state), the decoded-record caches, where the current tx is (height, index, tx id), the
sender lookup that turns a public key into a ``Principal``, and the checks the handler
families share: grant matching, resolving an event's dataset inputs, and recording an
audit event with its indexes. A ``Handler`` judges one kind of tx against it; the
dispatcher (``acl.machine``) picks the handler, the families (``acl.*_rules``) hold them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from acl import keys as K
from acl import kinds as k
from acl.audit_counters import Tally
from acl.records import ActiveGrant, decode_active, decode_record, encode_event
from acl.results import Result
from acl.senders import active_sender
from acl.state import Overlay
from chain import codec


@dataclass(frozen=True, slots=True)
class Principal:
    """The actor behind a tx: an active identity of an active organisation."""

    org_id: str
    name: str
    role: str
    key_epoch: int
    org_key: bytes
    identity_key: bytes
    actor_bytes: bytes = b""
    """Canonical encodings of org id, name and key epoch, back to back: the actor part of
    every event record this principal sends, encoded once per block."""


_MISSING: Final = object()


class BlockContext:
    """The working state of one block: the overlay and decoded-record caches.

    Caches hold decoded records by state key; every write through ``store`` updates them,
    so reads after writes in the same block are coherent.
    """

    __slots__ = (
        "chain_id",
        "height",
        "index",
        "ms",
        "ov",
        "records",
        "senders",
        "tally",
        "tx_id",
    )

    def __init__(
        self,
        ov: Overlay,
        chain_id: str,
        height: int,
        timestamp_ms: int,
    ) -> None:
        self.ov = ov
        self.chain_id = chain_id
        self.height = height
        self.ms = timestamp_ms
        self.records: dict[bytes, Any] = {}
        self.senders: dict[bytes, Principal | Result] = {}
        self.index = 0
        self.tx_id = b""
        self.tally: list[Tally] = []
        """The audit events recorded so far, in block order (``acl.audit_counters``)."""

    # -- records -----------------------------------------------------------------------

    def load(self, key: bytes) -> Any:
        """The decoded record under ``key`` (None if absent), cached for the block."""
        cached = self.records.get(key, _MISSING)
        if cached is not _MISSING:
            return cached
        raw = self.ov.get(key)
        value = None if raw is None else decode_record(raw)
        self.records[key] = value
        return value

    def store(self, key: bytes, value: Any) -> None:
        self.ov.put(key, codec.encode(value))
        self.records[key] = value

    def load_active(self, key: bytes) -> list[ActiveGrant]:
        cached = self.records.get(key, _MISSING)
        if cached is not _MISSING:
            return cached
        raw = self.ov.get(key)
        grants = [] if raw is None else list(decode_active(raw))
        self.records[key] = grants
        return grants

    def store_active(self, key: bytes, grants: list[ActiveGrant]) -> None:
        if grants:
            value = [[g[0], g[1], g[2], sorted(g[3]), g[4], g[5]] for g in grants]
            self.ov.put(key, codec.encode(value))
        else:
            self.ov.delete(key)
        self.records[key] = grants

    def mark(self, prefix: bytes, kind: str, result: Result) -> None:
        self.ov.put(
            prefix + K.position(self.height, self.index),
            K.MARK.pack(k.KIND_CODES[kind], result, self.ms, self.tx_id),
        )

    def run_event(self, run_id: str, event_type: str, result: Result, round_: int | None) -> None:
        """One event of a run, under its own key: a run's record stays small however long
        the run goes on."""
        self.ov.put_trusted(
            K.RUN_EVENT + K.run_key(run_id) + K.position(self.height, self.index),
            codec.encode([event_type, int(result), self.ms, self.tx_id, round_]),
        )

    def position(self) -> list[Any]:
        """Where the current tx is: [height, index, tx id]."""
        return [self.height, self.index, self.tx_id]

    # -- senders -----------------------------------------------------------------------

    def sender(self, public_key: bytes) -> Principal | Result:
        found = active_sender(self.load, public_key)
        if isinstance(found, Result):
            return found
        ident, ik, epoch = found
        org_id, name = ident["org_id"], ident["name"]
        actor = codec.encode(org_id) + codec.encode(name) + codec.encode(epoch)
        return Principal(org_id, name, ident["role"], epoch, K.org_key(org_id), ik, actor)

    def forget_senders(self) -> None:
        """Identities or organisations changed: principals must be looked up again."""
        self.senders.clear()

    # -- shared checks -----------------------------------------------------------------

    def active_org(self, org_id: str) -> Result | None:
        org = self.load(K.ORG + K.org_key(org_id))
        if org is None:
            return Result.NOT_FOUND
        if org["status"] != "active":
            return Result.ORG_INACTIVE
        return None

    def dataset(self, dataset_id: str) -> dict[str, Any] | None:
        return self.load(K.DATASET + K.dataset_key(dataset_id))

    def model(self, name: str, version: int) -> dict[str, Any] | None:
        return self.load(K.MODEL + K.model_version_key(name, version))

    def match_grant(
        self,
        p: Principal,
        dataset: dict[str, Any],
        dk: bytes,
        version: int | None,
        purpose: str,
        hint: bytes | None,
    ) -> tuple[bool, bytes | None]:
        """Whether a grant in force now lets ``p`` use the dataset for ``purpose``, and which.

        The owner organisation uses its own data without a grant. Otherwise the first
        matching grant in issue order wins: same grantee org, identity unset or equal,
        version unset or equal, purpose included, ``valid_from_ms <= now < valid_until_ms``,
        and if the event names a grant, that one. Revoked grants are not in the index.
        """
        if dataset["owner_org"] == p.org_id:
            return True, None
        now = self.ms
        for gid, g_version, g_identity, purposes, start, until in self.load_active(
            K.ACTIVE + dk + p.org_key
        ):
            if (
                purpose in purposes
                and start <= now < until
                and (g_version is None or g_version == version)
                and (g_identity is None or g_identity == p.name)
                and (hint is None or hint == gid)
            ):
                return True, gid
        return False, None

    def check_inputs(
        self, p: Principal, refs: Sequence[dict[str, Any]], purpose: str | None
    ) -> tuple[Result, list[list[Any]]] | Result:
        """Resolve dataset refs and match each against the grants in force.

        Returns a rejection (unknown dataset or version), or (ACCEPTED | NO_GRANT, uses)
        with one ``[dataset_id, version, grant_id, context, allowed]`` per ref."""
        uses: list[list[Any]] = []
        result = Result.ACCEPTED
        for ref in refs:
            ds = self.dataset(ref["dataset_id"])
            if ds is None:
                return Result.NOT_FOUND
            version = ref.get("version")
            if version is not None and version > ds["version_count"]:
                return Result.NOT_FOUND
            assert purpose is not None, "the schema requires a purpose with inputs"
            dk = K.dataset_key(ref["dataset_id"])
            allowed, gid = self.match_grant(p, ds, dk, version, purpose, ref.get("grant_id"))
            if not allowed:
                result = Result.NO_GRANT
            uses.append([ref["dataset_id"], version, gid, ref.get("context"), allowed])
        return result, uses

    def log_event(
        self,
        kind: str,
        p: Principal,
        payload: dict[str, Any],
        result: Result,
        uses: list[list[Any]],
        subject: list[Any] | None,
        model: tuple[str, int] | None = None,
        extra_datasets: Sequence[str] = (),
    ) -> None:
        """Record an applied audit event: the log by time, violations, dataset history,
        model uses, and its tally for the counters. The event record: ``[kind code, tx id,
        org, identity, key epoch, result, purpose, uses, subject, on_behalf_of, run_id]``."""
        pos = K.time_position(self.ms, self.height, self.index)
        code = k.KIND_CODES[kind]
        purpose = payload.get("purpose")
        used = tuple(dict.fromkeys(u[0] for u in uses))
        self.tally.append((code, p.org_id, int(result), purpose, used, self.index, self.tx_id))
        record = encode_event(
            code,
            self.tx_id,
            p.actor_bytes,
            int(result),
            purpose,
            [u[:3] for u in uses],
            subject,
            payload.get("on_behalf_of"),
            payload.get("run_id"),
        )
        put = self.ov.put_trusted
        put(K.LOG + pos, record)
        if result is Result.NO_GRANT:
            put(K.VIOLATION + pos, b"")
        mark = K.MARK.pack(code, result, self.ms, self.tx_id)
        at = K.position(self.height, self.index)
        if len(uses) == 1 and not extra_datasets:
            put(K.HISTORY + K.dataset_key(uses[0][0]) + at, mark)
        else:
            datasets = {u[0] for u in uses}
            datasets.update(extra_datasets)
            for dataset_id in sorted(datasets):
                put(K.HISTORY + K.dataset_key(dataset_id) + at, mark)
        if model is not None:
            put(K.MODEL_USE + K.model_version_key(*model) + at, mark)


Handler = Callable[[BlockContext, Principal, dict[str, Any]], Result]
"""The rules of one tx kind: judge the payload ``Principal`` sent and, if it is applied,
write its effects. Every handler checks everything before its first write, so a
rejection (any result but ``accepted`` or ``no_grant``) leaves the state unchanged."""
