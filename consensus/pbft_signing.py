"""How a PBFT replica signs and checks statements: Protocols owned by the core, so the
core stays pure and the simulator can give every replica a deterministic key.

``Ed25519Signer`` and ``Ed25519Verifier`` go through ``chain.signing`` (the kernels
verify). The verifier remembers verdicts: a prepare is checked once when it arrives,
not again each time it travels inside a view-change or a certificate. A driver that
holds several messages at once may ``prime`` it: their signatures verified in one
batch (~14-23 us a signature against ~33 us alone, and one release of the GIL instead
of one each), the verdicts remembered for the core's own ``verify`` calls. A verdict is
the same whichever way it was reached, so priming changes no decision.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Protocol

from chain import signing


class Signer(Protocol):
    def sign(self, message: bytes) -> bytes: ...


class Verifier(Protocol):
    def verify(self, replica: str, message: bytes, signature: bytes) -> bool:
        """False for an unknown replica, a bad signature, or a key of the wrong size."""
        ...


class Ed25519Signer:
    def __init__(self, key: signing.PrivateKey) -> None:
        self._key = key

    def sign(self, message: bytes) -> bytes:
        return signing.sign(self._key, message)


class Ed25519Verifier:
    """Public keys by replica id; a bounded cache of verdicts (a limit on everything)."""

    def __init__(self, public_keys: Mapping[str, bytes], cache_max: int = 65_536) -> None:
        self._keys = dict(public_keys)
        self._cache: OrderedDict[tuple[str, bytes, bytes], bool] = OrderedDict()
        self._cache_max = cache_max

    def verify(self, replica: str, message: bytes, signature: bytes) -> bool:
        key = self._keys.get(replica)
        if key is None:
            return False
        k = (replica, message, signature)
        hit = self._cache.get(k)
        if hit is not None:
            return hit
        ok = signing.verify(key, message, signature)
        self._remember(k, ok)
        return ok

    def prime(self, claims: Sequence[tuple[str, bytes, bytes]]) -> int:
        """Verify, in one batch, each (replica, message, signature) of ``claims`` by a
        known replica that is not remembered yet, and remember the verdicts; how many
        were verified. At most ``cache_max`` are verified (more would only be evicted)."""
        todo: dict[tuple[str, bytes, bytes], bytes] = {}
        for k in claims:
            key = self._keys.get(k[0])
            if key is not None and k not in self._cache and len(todo) < self._cache_max:
                todo[k] = key
        if not todo:
            return 0
        claims_todo = list(todo)
        verdicts = signing.verify_batch(
            list(todo.values()), [k[1] for k in claims_todo], [k[2] for k in claims_todo]
        )
        for k, ok in zip(claims_todo, verdicts, strict=True):
            self._remember(k, ok)
        return len(claims_todo)

    def _remember(self, k: tuple[str, bytes, bytes], ok: bool) -> None:
        self._cache[k] = ok
        if len(self._cache) > self._cache_max:
            self._cache.popitem(last=False)
