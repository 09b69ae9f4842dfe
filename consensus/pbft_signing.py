"""How a PBFT replica signs and checks statements: Protocols owned by the core, so the
core stays pure and the simulator can give every replica a deterministic key.

``Ed25519Signer`` and ``Ed25519Verifier`` go through ``chain.signing`` (the kernels
verify). The verifier remembers verdicts: a prepare is checked once when it arrives,
not again each time it travels inside a view-change or a certificate.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
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
        self._cache[k] = ok
        if len(self._cache) > self._cache_max:
            self._cache.popitem(last=False)
        return ok
