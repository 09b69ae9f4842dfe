"""Length-prefixed frames for the peer transport, sans-IO.

A frame is a 4-byte big-endian payload length followed by the payload. The decoder is
fed whatever bytes the socket produced and hands back whole payloads; it never trusts
the length field to allocate memory, so a peer cannot make a node reserve more than
``max_frame_bytes`` by announcing a huge frame. Keeping the framer free of sockets lets
it be fuzzed with arbitrary chunkings and garbage.

Zero-length frames are invalid: no message of ours is empty, and refusing them stops a
peer from spinning the decoder with an endless stream of 4-byte headers.
"""

from __future__ import annotations

HEADER_BYTES = 4
LENGTH_MAX = 2**32 - 1
"""The most a 4-byte length can say; ``max_frame_bytes`` may not exceed it."""


class FrameError(ValueError):
    """The byte stream is not a valid frame sequence; the connection must be closed."""


def encode_frame(payload: bytes) -> bytes:
    """The frame carrying ``payload`` (1 .. 2**32-1 bytes)."""
    n = len(payload)
    if n == 0:
        raise FrameError("a frame payload must not be empty")
    if n > LENGTH_MAX:
        raise FrameError(f"a frame payload is at most {LENGTH_MAX} bytes, got {n}")
    return n.to_bytes(HEADER_BYTES, "big") + bytes(payload)


class FrameDecoder:
    """Turns a byte stream into payloads of 1 .. ``max_frame_bytes`` bytes.

    After a ``FrameError`` the stream position is lost, so the decoder stays failed and
    refuses further input; the caller closes the connection. Payloads completed by the
    same ``feed`` call before the bad header are discarded with it: they came from a peer
    that is about to be disconnected, and consensus tolerates the loss.
    """

    __slots__ = ("_buffer", "_failed", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int) -> None:
        if not 1 <= max_frame_bytes <= LENGTH_MAX:
            raise ValueError(f"max_frame_bytes must be in 1..{LENGTH_MAX}, got {max_frame_bytes}")
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._failed: FrameError | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes of an incomplete frame held back; at most ``max_frame_bytes + 3``."""
        return len(self._buffer)

    @property
    def failed(self) -> bool:
        return self._failed is not None

    def feed(self, data: bytes) -> list[bytes]:
        """Every payload completed by ``data``, in order; the rest is kept for later."""
        if self._failed is not None:
            raise FrameError(f"decoder already failed ({self._failed}); close the connection")
        buf = self._buffer
        buf += data
        frames: list[bytes] = []
        pos = 0
        end = len(buf)
        try:
            while end - pos >= HEADER_BYTES:
                n = int.from_bytes(buf[pos : pos + HEADER_BYTES], "big")
                if n == 0:
                    raise FrameError("zero-length frame")
                if n > self.max_frame_bytes:
                    raise FrameError(
                        f"frame of {n} bytes exceeds the limit of {self.max_frame_bytes} bytes"
                    )
                if end - pos - HEADER_BYTES < n:
                    break
                start = pos + HEADER_BYTES
                frames.append(bytes(buf[start : start + n]))
                pos = start + n
        except FrameError as exc:
            self._failed = exc
            self._buffer = bytearray()
            raise
        del buf[:pos]
        return frames
