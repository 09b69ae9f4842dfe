"""``BlockSequence``: what ``Client.stream`` and ``AsyncClient.stream`` promise their
callers, checked on every event: decoded block documents in height order, never a
repeat or a gap, across reconnections and nodes.

A stream opened "from now" (no ``from_height``) learns its first height from the node's
answer (the ``X-Grantchain-From-Height`` header of ``node.api.stream``), so a resume on
another node continues from there rather than from that node's head.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from node.client.sse import SseEvent

PATH = "/v1/stream/blocks"
FROM_HEADER = "X-Grantchain-From-Height"
HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}


class StreamError(Exception):
    """The stream broke its promise (a gap, a repeat, an event that is not a block): not
    retried, since another node would not mend what this one sent."""


class StreamInterrupted(Exception):
    """The node ended the stream (it stopped, or it sent an ``error`` event): the client
    resumes, on the next URL it was given."""


class BlockSequence:
    def __init__(self, from_height: int | None) -> None:
        if from_height is not None and from_height < 1:
            raise ValueError(f"from_height must be at least 1, got {from_height}")
        self.next_height = from_height
        """The height due next; ``None`` until the first answer names it."""

    def params(self) -> dict[str, int]:
        return {} if self.next_height is None else {"from_height": self.next_height}

    def started(self, headers: Mapping[str, str]) -> None:
        """A stream was opened; its answer's headers say where it starts."""
        first = headers.get(FROM_HEADER)
        if first is None:
            return
        if not first.isdigit():
            raise StreamError(f"the node named the stream's first height {first!r}")
        if self.next_height is None:
            self.next_height = int(first)
        elif int(first) != self.next_height:
            raise StreamError(
                f"asked for the stream from height {self.next_height}, "
                f"the node starts it at {first}"
            )

    def block(self, event: SseEvent) -> dict[str, Any] | None:
        """The block document an event carries, checked to be the one due; ``None`` for
        an event of another kind (to come in later versions)."""
        if event.event == "error":
            raise StreamInterrupted(f"the node ended the stream: {event.data[:500]}")
        if event.event != "block":
            return None
        try:
            doc = json.loads(event.data)
        except ValueError as exc:
            raise StreamError(f"a block event's data is not JSON: {exc}") from None
        height = doc.get("height") if isinstance(doc, dict) else None
        if type(height) is not int:
            raise StreamError("a block event's data is not a block (no integer 'height')")
        due = self.next_height
        if due is not None and height != due:
            what = "a gap" if height > due else "a repeat"
            raise StreamError(f"the stream sent block {height} where {due} was due ({what})")
        self.next_height = height + 1
        return doc
