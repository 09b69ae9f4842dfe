"""Collects header signatures into block certificates (a quorum of the validators in
force at each height).

Who signs block ``h``, and what they sign, follow the validator-set history
(``chain.validator_sets``): the set in force at ``h`` is the set after ``h - 1``, so a
validator removed by a governance tx in block ``h`` signs no certificate from ``h + 1`` on
and one added starts there; the quorum is the usual formula over that set. The message
covers the set after ``h`` once the set has changed, so a signature for a height is
checked once this node has applied it (before, it knows neither): one for a height this
node has not applied yet is kept unchecked (one per peer and height, within the window
below) until it has, and counts only if it signs the same header hash this node applied.

The window of heights kept is centred on this node's own applied height, never on what
peers claim: when the newest height *seen* moved it, five signatures from one validator
for far-future heights pushed the window so far ahead that every honest signature was
refused until restart (issue 15 §4).
"""

from __future__ import annotations

from chain import signing
from chain.block import BlockHeader
from chain.validator_sets import ValidatorHistory
from node.transport.messages import HeaderSig

HEIGHTS_KEPT = 4096
"""Signatures are taken for heights up to this far from this node's applied height, and
kept this many heights below it, then dropped."""


class CertificateCollector:
    def __init__(
        self,
        history: ValidatorHistory,
        node_id: str,
        node_key: signing.PrivateKey,
        *,
        applied_height: int = 0,
    ) -> None:
        """``history`` covers ``applied_height``; its owner records each later change
        before calling ``sign_applied`` for the block that made it."""
        self.node_id = node_id
        self.history = history
        self._key = node_key
        self._applied: dict[int, bytes] = {}
        self._sigs: dict[int, dict[str, tuple[bytes, bytes]]] = {}
        """Checked signatures, by height and signer: (header hash, signature)."""
        self._pending: dict[int, dict[str, tuple[bytes, bytes]]] = {}
        """Signatures for heights this node has not applied yet, unchecked."""
        self._certified: set[int] = set()
        self._top = applied_height
        """This node's applied height: only ``sign_applied`` moves it."""

    def sign_applied(self, header: BlockHeader) -> HeaderSig:
        """Record that this node applied ``header``; return its own signature."""
        h = header.height
        self._applied[h] = header.hash
        sig = signing.sign(self._key, self.history.signing_bytes(h, header.hash))
        mine = self._sigs.setdefault(h, {})
        pending = sorted(self._pending.pop(h, {}).items())
        for (frm, hh_s), ok in zip(pending, self._verify_many(h, pending), strict=True):
            if ok:
                mine[frm] = hh_s
        if self.node_id in self.history.in_force(h).keys:
            mine[self.node_id] = (header.hash, sig)
        self._prune(h)
        return HeaderSig(self.node_id, h, header.hash, sig)

    @property
    def quorum(self) -> int:
        """The quorum of the latest validator set."""
        return self.history.latest.quorum(self.history.consensus)

    def quorum_at(self, height: int) -> int:
        """Signatures the certificate of block ``height`` needs."""
        return self.history.in_force(height).quorum(self.history.consensus)

    def add(self, msg: HeaderSig) -> bool:
        """Take a peer's signature; False (and ignored) if it does not verify (or, for a
        height not applied here yet, cannot be kept)."""
        if len(msg.header_hash) != 32 or len(msg.signature) != 64:
            return False
        if msg.height < self._top - HEIGHTS_KEPT or msg.height > self._top + HEIGHTS_KEPT:
            return False
        if msg.height > self._top:
            self._pending.setdefault(msg.height, {})[msg.frm] = (msg.header_hash, msg.signature)
            return True
        got = self._sigs.get(msg.height)
        if got is not None and got.get(msg.frm) == (msg.header_hash, msg.signature):
            return True  # these very bytes were checked: a peer's reply repeats its broadcast
        if not self._verifies(msg.frm, msg.height, msg.header_hash, msg.signature):
            return False
        self._sigs.setdefault(msg.height, {})[msg.frm] = (msg.header_hash, msg.signature)
        return True

    def _verify_many(self, height: int, sigs: list[tuple[str, tuple[bytes, bytes]]]) -> list[bool]:
        """One verdict per (signer, (header hash, signature)) at ``height``: the
        signatures of known signers verified in one batch (the peers' signatures that
        came before this node applied ``height``)."""
        keys = self.history.in_force(height).keys
        known = [(keys[frm], hh, s) for frm, (hh, s) in sigs if frm in keys]
        verdicts = iter(
            signing.verify_batch(
                [k for k, _, _ in known],
                [self.history.signing_bytes(height, hh) for _, hh, _ in known],
                [s for _, _, s in known],
            )
            if known
            else []
        )
        return [frm in keys and next(verdicts) for frm, _ in sigs]

    def _verifies(self, frm: str, height: int, header_hash: bytes, sig: bytes) -> bool:
        key = self.history.in_force(height).keys.get(frm)
        return key is not None and signing.verify(
            key, self.history.signing_bytes(height, header_hash), sig
        )

    def ready(self, height: int) -> list[tuple[str, bytes]] | None:
        """The certificate for ``height`` once it first reaches a quorum, else None."""
        if height in self._certified or height not in self._applied:
            return None
        want = self._applied[height]
        sigs = sorted((n, s) for n, (hh, s) in self._sigs.get(height, {}).items() if hh == want)
        if len(sigs) < self.quorum_at(height):
            return None
        self._certified.add(height)
        return sigs

    def own(self, height: int, header_hash: bytes) -> bytes | None:
        """This node's signature over ``header_hash`` at ``height``, if it made one."""
        mine = self._sigs.get(height, {}).get(self.node_id)
        return mine[1] if mine and mine[0] == header_hash else None

    def signatures(self, height: int) -> list[tuple[str, bytes]]:
        want = self._applied.get(height)
        return sorted((n, s) for n, (hh, s) in self._sigs.get(height, {}).items() if hh == want)

    def _prune(self, height: int) -> None:
        if height <= self._top:
            return
        self._top = height
        floor = height - HEIGHTS_KEPT
        if len(self._sigs) > 2 * HEIGHTS_KEPT:
            for h in [h for h in self._sigs if h < floor]:
                self._sigs.pop(h, None)
                self._pending.pop(h, None)
                self._applied.pop(h, None)
                self._certified.discard(h)
        for h in [h for h in self._pending if h <= height]:  # applied without sign_applied
            self._pending.pop(h, None)
