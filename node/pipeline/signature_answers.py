"""When to answer a peer's header signature with this node's own.

Every node broadcasts its signature once it applies a block, so in steady state each
peer already has it when the peer's own signature arrives: answering then doubled the
header-signature messages (6 sent per node and block in a 4-node cluster, where 3 do).
An answer is needed only when the peer may have missed the broadcast: a link went down
or came up since (the peer was away, restarted and lost its memory, or the frame was
lost with a connection), the broadcast did not reach every peer's queue, or this node
applied the block in an earlier run (or so long ago that the record is gone; a peer
that far behind refused the signature as out of its window).

Pure: the node feeds it link events and its broadcasts, and asks it per signature.
"""

from __future__ import annotations

HEIGHTS_RECORDED = 1024
"""Broadcasts remembered; a peer's signature for an older height is always answered."""


class SignatureAnswers:
    def __init__(self, heights_recorded: int = HEIGHTS_RECORDED) -> None:
        self._kept = heights_recorded
        self._link_epoch = 0
        """Moves on every link event (up, down, failed dial)."""
        self._sent: dict[int, int] = {}
        """Height -> link epoch when this node broadcast its signature to every peer."""

    def link_changed(self) -> None:
        """A peer link came up, went down or failed to come up."""
        self._link_epoch += 1

    def broadcast(self, height: int, *, reached_all: bool) -> None:
        """This node broadcast its signature for ``height``; ``reached_all``: every
        peer's queue took it."""
        sent = self._sent
        if not reached_all:
            sent.pop(height, None)
            return
        sent[height] = self._link_epoch
        while len(sent) > self._kept:  # heights come in order: the oldest is first
            del sent[next(iter(sent))]

    def should_answer(self, height: int) -> bool:
        """Whether a peer announcing its signature for ``height`` may lack ours."""
        epoch = self._sent.get(height)
        return epoch is None or epoch != self._link_epoch
