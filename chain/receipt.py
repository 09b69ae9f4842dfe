"""Receipts: everything an auditor needs to prove, offline, that a tx is in the chain.

A receipt holds the tx, the header of its block, three RFC 9162 inclusion proofs — of the
tx in the block (``tx_root``), of its result code (``results_root``) and of the tx in the
log of every tx since genesis (``log_root`` at ``log_size``) — and the block's
certificate: header signatures by a quorum of the validators in force at its height.
Checking it needs only the genesis file.

Where governance has changed the validator set at or below the receipt's height, the
receipt also carries the certified history of those changes (``validator_sets``, see
``chain.validator_sets``; receipt version 2): the verifier walks it from the genesis set,
then checks the certificate with the set in force at the receipt's height. A receipt of
a chain whose set never changed is version 1, as before.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from chain import merkle, signing
from chain.block import BlockError, BlockHeader, result_leaf
from chain.genesis import Genesis
from chain.hashing import leaf_hash
from chain.tx import TxError, decode_tx
from chain.validator_sets import (
    HeaderSignature,
    SetChange,
    ValidatorSetError,
    check_certificate,
    header_signing_bytes,
    verify_history,
)

RECEIPT_VERSION = 1
RECEIPT_VERSION_WITH_SETS = 2
"""The version of a receipt that carries a validator-set history."""

__all__ = [
    "RECEIPT_VERSION",
    "HeaderSignature",
    "Receipt",
    "ReceiptCheck",
    "ReceiptError",
    "header_signing_bytes",
    "quorum",
    "valid_signers",
    "valid_signers_of_hash",
    "verify_receipt",
]


class ReceiptError(ValueError):
    """The receipt does not prove what it claims; the message says which check failed."""


def quorum(genesis: Genesis) -> int:
    """Signatures a certificate needs from the genesis set: a majority (Raft), or 2f+1 of
    n = 3f+1 (PBFT)."""
    n = len(genesis.validators)
    if genesis.consensus == "pbft":
        return 2 * ((n - 1) // 3) + 1
    return n // 2 + 1


def valid_signers(header: BlockHeader, sigs: list[HeaderSignature], genesis: Genesis) -> list[str]:
    """Distinct genesis validators whose signature over ``header`` verifies."""
    return valid_signers_of_hash(header.hash, sigs, genesis)


def valid_signers_of_hash(
    header_hash: bytes, sigs: list[HeaderSignature], genesis: Genesis
) -> list[str]:
    """Distinct genesis validators whose signature over the header ``header_hash`` verifies."""
    keys = {v.node_id: v.public_key for v in genesis.validators}
    candidates = []
    seen: set[str] = set()
    for s in sigs:
        if s.node_id in keys and s.node_id not in seen:
            seen.add(s.node_id)
            candidates.append(s)
    msg = header_signing_bytes(header_hash)
    ok = signing.verify_batch(
        [keys[s.node_id] for s in candidates],
        [msg] * len(candidates),
        [s.signature for s in candidates],
    )
    return sorted(s.node_id for s, good in zip(candidates, ok, strict=True) if good)


@dataclass(frozen=True, slots=True)
class Receipt:
    tx: bytes
    header: BlockHeader
    position: int
    log_index: int
    result: int
    tx_proof: tuple[bytes, ...]
    result_proof: tuple[bytes, ...]
    log_proof: tuple[bytes, ...]
    certificate: tuple[HeaderSignature, ...]
    validator_sets: tuple[SetChange, ...] = ()
    """The certified validator-set changes from genesis to this receipt's height."""

    @property
    def tx_id(self) -> bytes:
        return leaf_hash(self.tx)

    def to_json(self, result_name: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "version": RECEIPT_VERSION_WITH_SETS if self.validator_sets else RECEIPT_VERSION,
            "tx_id": self.tx_id.hex(),
            "tx": base64.b64encode(self.tx).decode(),
            "height": self.header.height,
            "position": self.position,
            "log_index": self.log_index,
            "result": self.result,
            "header": base64.b64encode(self.header.to_bytes()).decode(),
            "header_hash": self.header.hash.hex(),
            "tx_proof": [p.hex() for p in self.tx_proof],
            "result_proof": [p.hex() for p in self.result_proof],
            "log_proof": [p.hex() for p in self.log_proof],
            "certificate": [
                {"node_id": s.node_id, "signature": s.signature.hex()} for s in self.certificate
            ],
        }
        if self.validator_sets:
            doc["validator_sets"] = [c.to_json() for c in self.validator_sets]
        if result_name is not None:
            doc["result_name"] = result_name
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> Receipt:
        try:
            if doc["version"] not in (RECEIPT_VERSION, RECEIPT_VERSION_WITH_SETS):
                raise ReceiptError(f"unknown receipt version {doc['version']!r}")
            sets = doc.get("validator_sets", []) if doc["version"] == 2 else []
            if doc["version"] == RECEIPT_VERSION_WITH_SETS and not sets:
                raise ReceiptError("a version 2 receipt carries validator_sets")
            if not isinstance(sets, list):
                raise ReceiptError("receipt validator_sets must be a list")
            return cls(
                tx=base64.b64decode(doc["tx"], validate=True),
                header=BlockHeader.from_bytes(base64.b64decode(doc["header"], validate=True)),
                position=_int(doc["position"], "position"),
                log_index=_int(doc["log_index"], "log_index"),
                result=_int(doc["result"], "result", RESULT_CODE_END),
                tx_proof=tuple(bytes.fromhex(p) for p in doc["tx_proof"]),
                result_proof=tuple(bytes.fromhex(p) for p in doc["result_proof"]),
                log_proof=tuple(bytes.fromhex(p) for p in doc["log_proof"]),
                certificate=tuple(
                    HeaderSignature(str(s["node_id"]), bytes.fromhex(s["signature"]))
                    for s in doc["certificate"]
                ),
                validator_sets=tuple(SetChange.from_json(c) for c in sets),
            )
        except ReceiptError:
            raise
        except ValidatorSetError as exc:
            raise ReceiptError(str(exc)) from None
        except BlockError as exc:
            raise ReceiptError(f"receipt header: {exc}") from None
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ReceiptError(f"malformed receipt: {exc!r}") from None


RESULT_CODE_END = 1 << 16
"""Result codes are u16 in a block's results (``chain.block``)."""
INDEX_END = 1 << 64


def _int(value: Any, name: str, end: int = INDEX_END) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < end:
        raise ReceiptError(f"receipt {name} must be an integer in [0, {end})")
    return value


@dataclass(frozen=True, slots=True)
class ReceiptCheck:
    tx_id: str
    height: int
    result: int
    signers: tuple[str, ...]
    quorum: int
    validators: tuple[str, ...] = ()
    """The validators in force at the receipt's height (who could sign its block)."""
    changes: int = 0
    """The validator-set changes the receipt's history proved."""


def verify_receipt(receipt: Receipt, genesis: Genesis) -> ReceiptCheck:
    """Check every part of a receipt against the genesis (walking its validator-set
    history from the genesis set); raise ``ReceiptError`` naming the first check that
    fails."""
    h = receipt.header
    if h.chain_id != genesis.chain_id:
        raise ReceiptError(
            f"header is for chain {h.chain_id!r}, the genesis is {genesis.chain_id!r}"
        )
    try:
        tx = decode_tx(receipt.tx)
    except TxError as exc:
        raise ReceiptError(f"tx: {exc}") from None
    if tx.chain_id != genesis.chain_id:
        raise ReceiptError(f"tx is for chain {tx.chain_id!r}")
    if not tx.verify_signature():
        raise ReceiptError("tx signature does not verify")
    tx_id = receipt.tx_id
    checks = [
        (
            "tx is not in the block (tx_root)",
            tx_id,
            receipt.position,
            h.tx_count,
            receipt.tx_proof,
            h.tx_root,
        ),
        (
            "result is not the block's (results_root)",
            leaf_hash(result_leaf(tx_id, receipt.result)),
            receipt.position,
            h.tx_count,
            receipt.result_proof,
            h.results_root,
        ),
        (
            "tx is not in the log (log_root)",
            tx_id,
            receipt.log_index,
            h.log_size,
            receipt.log_proof,
            h.log_root,
        ),
    ]
    for what, leaf, index, size, proof, root in checks:
        try:
            merkle.verify_inclusion(leaf, index, size, list(proof), root)
        except merkle.ProofError as exc:
            raise ReceiptError(f"{what}: {exc}") from None
    if receipt.log_index != h.log_size - h.tx_count + receipt.position:
        raise ReceiptError("log_index does not match the tx's position in its block")
    try:
        history = verify_history(genesis, receipt.validator_sets, h.height)
    except ValidatorSetError as exc:
        raise ReceiptError(str(exc)) from None
    steps = receipt.validator_sets
    if steps and steps[-1].header.height == h.height and steps[-1].header != h:
        raise ReceiptError(
            f"validator-set change at height {h.height} is for another header than the receipt's"
        )
    in_force = history.in_force(h.height)
    try:
        signers = check_certificate(
            f"block {h.height}",
            in_force,
            genesis.consensus,
            history.signing_bytes(h.height, h.hash),
            receipt.certificate,
        )
    except ValidatorSetError as exc:
        raise ReceiptError(str(exc)) from None
    return ReceiptCheck(
        tx_id.hex(),
        h.height,
        receipt.result,
        tuple(signers),
        in_force.quorum(genesis.consensus),
        in_force.node_ids,
        len(steps),
    )
