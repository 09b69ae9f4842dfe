"""The genesis: the consortium a chain starts with, fixed forever by its hash.

Stored as JSON for people (keys in lowercase hex); hashed over its canonical msgpack
form, so formatting of the JSON file never changes the chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chain import codec, limits
from chain.hashing import sha256

CONSENSUS_KINDS = ("raft", "pbft")
ROLES = ("admin", "steward", "app", "auditor")


class GenesisError(ValueError):
    """The genesis document is malformed; the message names the field."""


@dataclass(frozen=True, slots=True)
class Organisation:
    org_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Identity:
    org_id: str
    name: str
    role: str
    public_key: bytes


@dataclass(frozen=True, slots=True)
class Validator:
    node_id: str
    org_id: str
    public_key: bytes


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    consensus: str
    timestamp_ms: int
    organisations: tuple[Organisation, ...]
    identities: tuple[Identity, ...]
    validators: tuple[Validator, ...]
    governance_quorum: int
    """How many organisations must approve a governance proposal."""
    auditor_orgs: tuple[str, ...] = ()
    """The organisations the consortium designates as auditing: their ``auditor``
    identities read everything over the RPC (``acl.read_policy``). Hashed only when
    set, so a genesis without it keeps the hash it had."""

    def to_value(self) -> list[Any]:
        return [
            1,
            self.chain_id,
            self.consensus,
            self.timestamp_ms,
            [[o.org_id, o.name] for o in self.organisations],
            [[i.org_id, i.name, i.role, i.public_key] for i in self.identities],
            [[v.node_id, v.org_id, v.public_key] for v in self.validators],
            self.governance_quorum,
            *([list(self.auditor_orgs)] if self.auditor_orgs else []),
        ]

    @property
    def hash(self) -> bytes:
        return sha256(b"grantchain/genesis/v1\x00" + codec.encode(self.to_value()))

    def validator(self, node_id: str) -> Validator:
        for v in self.validators:
            if v.node_id == node_id:
                return v
        raise KeyError(node_id)

    def to_json(self) -> str:
        doc = {
            "chain_id": self.chain_id,
            "consensus": self.consensus,
            "timestamp_ms": self.timestamp_ms,
            "governance_quorum": self.governance_quorum,
            "auditor_orgs": list(self.auditor_orgs),
            "organisations": [{"org_id": o.org_id, "name": o.name} for o in self.organisations],
            "identities": [
                {
                    "org_id": i.org_id,
                    "name": i.name,
                    "role": i.role,
                    "public_key": i.public_key.hex(),
                }
                for i in self.identities
            ],
            "validators": [
                {"node_id": v.node_id, "org_id": v.org_id, "public_key": v.public_key.hex()}
                for v in self.validators
            ],
        }
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Genesis:
        try:
            doc = json.loads(text)
            g = cls(
                chain_id=_str(doc["chain_id"], "chain_id", limits.CHAIN_ID_CHARS_MAX),
                consensus=doc["consensus"],
                timestamp_ms=int(doc["timestamp_ms"]),
                organisations=tuple(
                    Organisation(_str(o["org_id"], "org_id"), _str(o["name"], "name"))
                    for o in doc["organisations"]
                ),
                identities=tuple(
                    Identity(
                        _str(i["org_id"], "org_id"),
                        _str(i["name"], "name"),
                        i["role"],
                        _key(i["public_key"]),
                    )
                    for i in doc.get("identities", [])
                ),
                validators=tuple(
                    Validator(
                        _str(v["node_id"], "node_id", limits.NODE_ID_CHARS_MAX),
                        _str(v["org_id"], "org_id"),
                        _key(v["public_key"]),
                    )
                    for v in doc["validators"]
                ),
                governance_quorum=int(doc["governance_quorum"]),
                auditor_orgs=tuple(_str(o, "auditor_orgs[]") for o in doc.get("auditor_orgs", [])),
            )
        except GenesisError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GenesisError(f"genesis is malformed: {exc!r}") from None
        g.check()
        return g

    def check(self) -> None:
        if self.consensus not in CONSENSUS_KINDS:
            raise GenesisError(
                f"consensus must be one of {CONSENSUS_KINDS}, got {self.consensus!r}"
            )
        org_ids = [o.org_id for o in self.organisations]
        if not org_ids or len(set(org_ids)) != len(org_ids):
            raise GenesisError("organisations must be non-empty and unique")
        if not 1 <= self.governance_quorum <= len(org_ids):
            raise GenesisError(
                "governance_quorum must be between 1 and the number of organisations"
            )
        node_ids = [v.node_id for v in self.validators]
        if not node_ids or len(set(node_ids)) != len(node_ids):
            raise GenesisError("validators must be non-empty with unique node ids")
        for org_id in [i.org_id for i in self.identities] + [v.org_id for v in self.validators]:
            if org_id not in org_ids:
                raise GenesisError(f"unknown organisation {org_id!r}")
        if len(set(self.auditor_orgs)) != len(self.auditor_orgs):
            raise GenesisError("auditor_orgs must be unique")
        for org_id in self.auditor_orgs:
            if org_id not in org_ids:
                raise GenesisError(f"auditor_orgs: unknown organisation {org_id!r}")
        for i in self.identities:
            if i.role not in ROLES:
                raise GenesisError(f"identity {i.name!r}: role must be one of {ROLES}")


def _str(value: Any, name: str, max_chars: int = 128) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= max_chars:
        raise GenesisError(f"{name} must be a str of 1..{max_chars} chars")
    return value


def _key(value: Any) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except (TypeError, ValueError):
        raise GenesisError("public keys are hex strings") from None
    if len(raw) != limits.PUBLIC_KEY_BYTES:
        raise GenesisError(f"public keys are {limits.PUBLIC_KEY_BYTES} bytes")
    return raw
