"""Collects header signatures into block certificates (a quorum of validators).

Signatures are checked against the genesis validator keys as they arrive; one for a
header this node has not applied yet is kept (bounded) until it has, and counts only if
it signs the same header hash this node applied.

The window of heights kept is centred on this node's own applied height, never on what
peers claim: when the newest height *seen* moved it, five signatures from one validator
for far-future heights pushed the window so far ahead that every honest signature was
refused until restart (issue 15 §4).
"""

from __future__ import annotations

from chain import signing
from chain.block import BlockHeader
from chain.genesis import Genesis
from chain.receipt import header_signing_bytes, quorum
from node.transport.messages import HeaderSig

HEIGHTS_KEPT = 4096
"""Signatures are taken for heights up to this far from this node's applied height, and
kept this many heights below it, then dropped."""


class CertificateCollector:
    def __init__(
        self,
        genesis: Genesis,
        node_id: str,
        node_key: signing.PrivateKey,
        *,
        applied_height: int = 0,
    ) -> None:
        self.node_id = node_id
        self._key = node_key
        self._keys = {v.node_id: v.public_key for v in genesis.validators}
        self.quorum = quorum(genesis)
        self._applied: dict[int, bytes] = {}
        self._sigs: dict[int, dict[str, tuple[bytes, bytes]]] = {}
        self._certified: set[int] = set()
        self._top = applied_height
        """This node's applied height: only ``sign_applied`` moves it."""

    def sign_applied(self, header: BlockHeader) -> HeaderSig:
        """Record that this node applied ``header``; return its own signature."""
        h = header.height
        self._applied[h] = header.hash
        sig = signing.sign(self._key, header_signing_bytes(header.hash))
        self._sigs.setdefault(h, {})[self.node_id] = (header.hash, sig)
        self._prune(h)
        return HeaderSig(self.node_id, h, header.hash, sig)

    def add(self, msg: HeaderSig) -> bool:
        """Take a peer's signature; False (and ignored) if it does not verify."""
        key = self._keys.get(msg.frm)
        if key is None or len(msg.header_hash) != 32:
            return False
        if msg.height < self._top - HEIGHTS_KEPT or msg.height > self._top + HEIGHTS_KEPT:
            return False
        if not signing.verify(key, header_signing_bytes(msg.header_hash), msg.signature):
            return False
        self._sigs.setdefault(msg.height, {})[msg.frm] = (msg.header_hash, msg.signature)
        return True

    def ready(self, height: int) -> list[tuple[str, bytes]] | None:
        """The certificate for ``height`` once it first reaches a quorum, else None."""
        if height in self._certified or height not in self._applied:
            return None
        want = self._applied[height]
        sigs = sorted((n, s) for n, (hh, s) in self._sigs.get(height, {}).items() if hh == want)
        if len(sigs) < self.quorum:
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
                self._applied.pop(h, None)
                self._certified.discard(h)
