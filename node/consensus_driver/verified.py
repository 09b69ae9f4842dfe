"""A ``verify_batch`` that remembers the signatures it found good, for a PBFT backup:
it verifies a block's signatures when it validates the proposal, and the ledger would
verify them all again when the block commits (``node.pipeline.ledger``). Keyed by the
whole (key, message, signature) triple, so a remembered verdict never vouches for
another message; bounded, oldest forgotten first. Used on the consensus thread only."""

from __future__ import annotations

from collections.abc import Callable, Sequence

VerifyBatch = Callable[[Sequence[bytes], Sequence[bytes], Sequence[bytes]], list[bool]]

REMEMBERED_MAX = 65_536
"""Good signatures kept: a few blocks of 4,000 txs between validation and commit."""


class RememberingVerifier:
    def __init__(self, verify: VerifyBatch, remembered_max: int = REMEMBERED_MAX) -> None:
        self._verify = verify
        self._max = remembered_max
        self._good: dict[tuple[bytes, bytes, bytes], None] = {}
        self.hits = 0

    def __call__(
        self, keys: Sequence[bytes], messages: Sequence[bytes], signatures: Sequence[bytes]
    ) -> list[bool]:
        triples = list(zip(keys, messages, signatures, strict=True))
        out = [t in self._good for t in triples]
        todo = [i for i, known in enumerate(out) if not known]
        self.hits += len(triples) - len(todo)
        if todo:
            verdicts = self._verify(
                [keys[i] for i in todo], [messages[i] for i in todo], [signatures[i] for i in todo]
            )
            for i, ok in zip(todo, verdicts, strict=True):
                out[i] = ok
                if ok:
                    self._good[triples[i]] = None
            while len(self._good) > self._max:
                del self._good[next(iter(self._good))]
        return out
