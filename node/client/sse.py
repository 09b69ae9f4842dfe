"""Server-Sent Events read as the WHATWG HTML standard says (§9.2.6, "Interpreting an
event stream"): what the SDK's ``Client.stream`` parses the node's commit stream with.

Sans-IO: ``SseParser.feed`` takes bytes as they arrive and returns the events they
complete. Lines end with CRLF, LF or CR (a CRLF split between two chunks is one line
end); a line starting with ``:`` is a comment (the node's keep-alives); ``data`` lines
of one event are joined with ``\\n``; the last ``id`` carries over to later events
until another ``id`` line replaces it; an event without data is not dispatched; an
unfinished event at the end of the stream is dropped. A leading BOM is skipped.
Unlike a browser, the parser bounds what it buffers (``bytes_max``) and raises
``SseError`` past it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EVENT_BYTES_MAX = 64 * 1024 * 1024
"""A block of 10,000 txs is ~1.5 MB of event; anything near this bound is not a block."""

_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


class SseError(ValueError):
    """The event stream broke a bound of this parser."""


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    """The ``event`` field; ``"message"`` when the event named none."""
    data: str
    id: str | None
    """The last event id as of this event (``None``: none yet, or reset by an empty id)."""


class SseParser:
    def __init__(self, bytes_max: int = EVENT_BYTES_MAX) -> None:
        self.bytes_max = bytes_max
        self.last_id: str | None = None
        self.retry_ms: int | None = None
        self._line = bytearray()
        self._skip_lf = False
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._data_bytes = 0

    def feed(self, chunk: bytes) -> list[SseEvent]:
        out: list[SseEvent] = []
        start = 0
        if chunk and self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":  # the LF of a CRLF split between chunks
                start = 1
        for m in _LINE_END.finditer(chunk, start):
            self._line += chunk[start : m.start()]
            event = self._take_line(bytes(self._line))
            self._line.clear()
            if event is not None:
                out.append(event)
            start = m.end()
            if m.group() == b"\r" and start == len(chunk):
                self._skip_lf = True
        self._line += chunk[start:]
        if len(self._line) + self._data_bytes > self.bytes_max:
            raise SseError(f"an event of over {self.bytes_max} bytes")
        return out

    def _take_line(self, raw: bytes) -> SseEvent | None:
        if not self._started:
            self._started = True
            if raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
        if not raw:
            return self._dispatch()
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return None  # a comment
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_bytes += len(raw) + 1
            if self._data_bytes > self.bytes_max:
                raise SseError(f"an event of over {self.bytes_max} bytes")
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_id = value or None
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None  # other fields are ignored, as the standard says

    def _dispatch(self) -> SseEvent | None:
        data, event = self._data, self._event or "message"
        self._data, self._event, self._data_bytes = [], "", 0
        if not data:
            return None
        return SseEvent(event, "\n".join(data), self.last_id)
