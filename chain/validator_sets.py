"""The validator set in force at each height, and the certified history that proves it.

The rule (docs/architecture.md, "Validator sets"): the set *after* block ``h`` is the
active validators of the ACL state after applying ``h``; the set *in force at* ``h``,
whose signatures certify block ``h``, is the set after ``h - 1``. A governance tx
committed in block ``h`` that adds or removes a validator therefore changes who signs
from block ``h + 1`` on; block ``h`` itself is still certified by the set before.

What validators sign for block ``h`` (``signing_bytes``):

- while no change has been made at or below ``h``: ``HEADER_DOMAIN || header_hash``,
  the message of every header signature since genesis (old receipts keep verifying);
- from the first change on: ``HEADER_DOMAIN || header_hash || digest(set after h)``,
  where the digest names the set and the height of the change that made it.

So the certificate of the block that commits a change is the old set's quorum vouching
for the new set, and every later certificate vouches again for the set then in force:
a history that leaves a change out, or forges one, makes the digest a verifier computes
differ from the one the validators signed, and the certificates stop verifying. This
takes the place of a proof of the validator records against the state root, which is a
chained digest of write sets, not a Merkle map (``acl.state_root``), and of a header
field, which would change the header format.

A ``SetChange`` is one step of the history: the header of the block whose application
changed the set, that block's certificate, and the new set. ``verify_history`` walks the
steps from the genesis set, checking each step's certificate with the set before it.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from chain import codec, limits, signing
from chain.block import BlockError, BlockHeader
from chain.genesis import Genesis, Validator

SET_DOMAIN: Final = b"grantchain/validator-set/v1\x00"
VALIDATORS_MAX: Final = 1024
"""More validators than any set may hold: a history step naming more is refused."""


class ValidatorSetError(ValueError):
    """A validator-set history that does not prove what it claims; the message says which
    step fails and why."""


@dataclass(frozen=True, slots=True)
class HeaderSignature:
    node_id: str
    signature: bytes


def header_signing_bytes(header_hash: bytes) -> bytes:
    """What validators signed for a header before any change of the validator set."""
    return signing.HEADER_DOMAIN + header_hash


def quorum_of(consensus: str, n: int) -> int:
    """Signatures a certificate needs from a set of ``n``: a majority (Raft), or 2f+1 of
    n = 3f+1 (PBFT)."""
    if consensus == "pbft":
        return 2 * ((n - 1) // 3) + 1
    return n // 2 + 1


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """The active validators (sorted by node id) from ``since_height`` on: 0 for the
    genesis set, else the height of the block whose application made it."""

    since_height: int
    validators: tuple[Validator, ...]

    @classmethod
    def of(cls, since_height: int, validators: Sequence[Validator]) -> ValidatorSet:
        return cls(since_height, tuple(sorted(validators, key=lambda v: v.node_id)))

    @classmethod
    def genesis(cls, genesis: Genesis) -> ValidatorSet:
        return cls.of(0, genesis.validators)

    @property
    def keys(self) -> dict[str, bytes]:
        return {v.node_id: v.public_key for v in self.validators}

    @property
    def node_ids(self) -> tuple[str, ...]:
        return tuple(v.node_id for v in self.validators)

    def quorum(self, consensus: str) -> int:
        return quorum_of(consensus, len(self.validators))

    @property
    def digest(self) -> bytes:
        value = [self.since_height, [[v.node_id, v.org_id, v.public_key] for v in self.validators]]
        return hashlib.sha256(SET_DOMAIN + codec.encode(value)).digest()

    def same_members(self, other: ValidatorSet) -> bool:
        return self.validators == other.validators

    def to_json(self) -> list[dict[str, str]]:
        return [
            {"node_id": v.node_id, "org_id": v.org_id, "public_key": v.public_key.hex()}
            for v in self.validators
        ]


def signing_bytes(header_hash: bytes, after: ValidatorSet) -> bytes:
    """What the validators in force at a block sign for its header, given ``after``, the
    set after that block (see the module doc)."""
    if after.since_height == 0:
        return header_signing_bytes(header_hash)
    return signing.HEADER_DOMAIN + header_hash + after.digest


def valid_signers_for(
    keys: dict[str, bytes], message: bytes, sigs: Sequence[HeaderSignature]
) -> list[str]:
    """Distinct node ids of ``keys`` whose signature over ``message`` verifies."""
    candidates = []
    seen: set[str] = set()
    for s in sigs:
        if s.node_id in keys and s.node_id not in seen:
            seen.add(s.node_id)
            candidates.append(s)
    ok = signing.verify_batch(
        [keys[s.node_id] for s in candidates],
        [message] * len(candidates),
        [s.signature for s in candidates],
    )
    return sorted(s.node_id for s, good in zip(candidates, ok, strict=True) if good)


class ValidatorHistory:
    """The genesis set and every change after it, by height: what the set in force at
    any height is. Changes are recorded in height order (``record``)."""

    def __init__(self, genesis: Genesis, changes: Sequence[ValidatorSet] = ()) -> None:
        self.consensus = genesis.consensus
        self._sets: list[ValidatorSet] = [ValidatorSet.genesis(genesis)]
        self._heights: list[int] = [0]
        for s in changes:
            self.record(s)

    def record(self, new: ValidatorSet) -> bool:
        """Add the set made by block ``new.since_height`` (after the last one recorded);
        False, and nothing recorded, when its members are those already in force."""
        last = self._sets[-1]
        if new.since_height <= last.since_height:
            raise ValueError(
                f"validator set from height {new.since_height} recorded after the one "
                f"from {last.since_height}"
            )
        if new.same_members(last):
            return False
        self._sets.append(new)
        self._heights.append(new.since_height)
        return True

    def after(self, height: int) -> ValidatorSet:
        """The set after applying block ``height``."""
        return self._sets[bisect.bisect_right(self._heights, height) - 1]

    def in_force(self, height: int) -> ValidatorSet:
        """The set whose signatures certify block ``height``: the set after ``height-1``."""
        return self.after(height - 1)

    def signing_bytes(self, height: int, header_hash: bytes) -> bytes:
        return signing_bytes(header_hash, self.after(height))

    @property
    def latest(self) -> ValidatorSet:
        return self._sets[-1]

    def changes(self, to_height: int | None = None) -> list[ValidatorSet]:
        """The sets made by governance (not the genesis one), up to ``to_height``."""
        return [s for s in self._sets[1:] if to_height is None or s.since_height <= to_height]


@dataclass(frozen=True, slots=True)
class SetChange:
    """One certified step of the history: block ``header`` changed the set to
    ``validators``; ``certificate`` is its header signatures by the set before it."""

    header: BlockHeader
    certificate: tuple[HeaderSignature, ...]
    validators: ValidatorSet

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.header.height,
            "header": base64.b64encode(self.header.to_bytes()).decode(),
            "certificate": [
                {"node_id": s.node_id, "signature": s.signature.hex()} for s in self.certificate
            ],
            "validators": self.validators.to_json(),
        }

    @classmethod
    def from_json(cls, doc: Any) -> SetChange:
        """Raises ``ValidatorSetError`` naming what is malformed (``BlockError`` and the
        decoding errors are turned into it)."""
        try:
            header = BlockHeader.from_bytes(base64.b64decode(doc["header"], validate=True))
            if doc["height"] != header.height:
                raise ValidatorSetError(
                    f"validator-set change says height {doc['height']!r}, its header is at "
                    f"{header.height}"
                )
            members = doc["validators"]
            if not isinstance(members, list) or not 0 < len(members) <= VALIDATORS_MAX:
                raise ValidatorSetError(
                    f"validator-set change at height {header.height}: validators must be a "
                    f"list of 1..{VALIDATORS_MAX}"
                )
            validators = [
                Validator(
                    _str(v["node_id"], limits.NODE_ID_CHARS_MAX),
                    _str(v["org_id"], 128),
                    _key(v["public_key"]),
                )
                for v in members
            ]
            if len({v.node_id for v in validators}) != len(validators):
                raise ValidatorSetError(
                    f"validator-set change at height {header.height}: node ids repeat"
                )
            cert = tuple(
                HeaderSignature(_str(s["node_id"], limits.NODE_ID_CHARS_MAX), _sig(s["signature"]))
                for s in doc["certificate"]
            )
        except ValidatorSetError:
            raise
        except BlockError as exc:
            raise ValidatorSetError(f"validator-set change header: {exc}") from None
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ValidatorSetError(f"malformed validator-set change: {exc!r}") from None
        return cls(header, cert, ValidatorSet.of(header.height, validators))


def _str(value: Any, max_chars: int) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= max_chars:
        raise ValueError(f"expected a str of 1..{max_chars} chars, got {value!r}")
    return value


def _key(value: Any) -> bytes:
    raw = bytes.fromhex(value)
    if len(raw) != limits.PUBLIC_KEY_BYTES:
        raise ValueError(f"a public key is {limits.PUBLIC_KEY_BYTES} bytes")
    return raw


def _sig(value: Any) -> bytes:
    raw = bytes.fromhex(value)
    if len(raw) != limits.SIGNATURE_BYTES:
        raise ValueError(f"a signature is {limits.SIGNATURE_BYTES} bytes")
    return raw


def verify_history(
    genesis: Genesis, steps: Sequence[SetChange], to_height: int
) -> ValidatorHistory:
    """The history the steps prove, walked from the genesis set: each step's certificate
    must hold a quorum of the set in force before it over (its header, the new set).
    Raise ``ValidatorSetError`` naming the first step that fails."""
    history = ValidatorHistory(genesis)
    last = 0
    for step in steps:
        h = step.header
        where = f"validator-set change at height {h.height}"
        if h.chain_id != genesis.chain_id:
            raise ValidatorSetError(f"{where}: header is for chain {h.chain_id!r}")
        if h.height <= last:
            raise ValidatorSetError(f"{where}: changes must be in increasing height order")
        if h.height > to_height:
            raise ValidatorSetError(f"{where}: past the height {to_height} it is to prove")
        if step.validators.since_height != h.height:
            raise ValidatorSetError(f"{where}: the set is not the one its block made")
        before = history.in_force(h.height)
        if step.validators.same_members(before):
            raise ValidatorSetError(f"{where}: the set is the one already in force")
        check_certificate(
            where,
            before,
            genesis.consensus,
            signing_bytes(h.hash, step.validators),
            step.certificate,
        )
        history.record(step.validators)
        last = h.height
    return history


def check_certificate(
    where: str,
    signers_set: ValidatorSet,
    consensus: str,
    message: bytes,
    certificate: Sequence[HeaderSignature],
) -> list[str]:
    """The valid signers of ``certificate`` from ``signers_set``; ``ValidatorSetError``
    when they are fewer than its quorum, naming any signer not in the set."""
    signers = valid_signers_for(signers_set.keys, message, certificate)
    need = signers_set.quorum(consensus)
    if len(signers) < need:
        outsiders = sorted({s.node_id for s in certificate} - set(signers_set.node_ids))
        extra = f"; signed by {', '.join(outsiders)}, not in that set" if outsiders else ""
        raise ValidatorSetError(
            f"{where}: certificate has {len(signers)} valid signatures of the validators in "
            f"force ({', '.join(signers_set.node_ids)}), {need} needed{extra}"
        )
    return signers
