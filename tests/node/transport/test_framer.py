"""The sans-IO framer: exact round trips under any chunking, and garbage that can only
ever produce ``FrameError`` without the decoder holding more than one frame's bytes."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.transport.framer import HEADER_BYTES, FrameDecoder, FrameError, encode_frame

LIMIT = 256

payloads = st.lists(st.binary(min_size=1, max_size=LIMIT), max_size=20)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(payloads, st.lists(st.integers(min_value=0), max_size=40))
@settings(max_examples=300, deadline=None)
def test_any_chunking_of_a_valid_stream_gives_the_frames_back(
    frames: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(p) for p in frames)
    decoder = FrameDecoder(LIMIT)
    out: list[bytes] = []
    for chunk in chunked(stream, cuts):
        out += decoder.feed(chunk)
        assert decoder.buffered_bytes <= LIMIT + HEADER_BYTES - 1
    assert out == frames
    assert decoder.buffered_bytes == 0


def feed_garbage(chunks: list[bytes]) -> None:
    decoder = FrameDecoder(LIMIT)
    for chunk in chunks:
        try:
            for frame in decoder.feed(chunk):
                assert 1 <= len(frame) <= LIMIT
        except FrameError:
            assert decoder.failed
            with pytest.raises(FrameError, match="already failed"):
                decoder.feed(b"\x00\x00\x00\x01x")
            return
        assert decoder.buffered_bytes <= LIMIT + HEADER_BYTES - 1


@given(st.lists(st.binary(max_size=600), max_size=20))
@settings(max_examples=500, deadline=None)
def test_garbage_only_raises_frame_error_and_stays_bounded(chunks: list[bytes]) -> None:
    feed_garbage(chunks)


plausible_pieces = st.one_of(
    st.integers(min_value=0, max_value=LIMIT + 8).map(lambda n: n.to_bytes(4, "big")),
    st.binary(max_size=LIMIT),
)


@given(st.lists(plausible_pieces, max_size=30), st.lists(st.integers(min_value=0), max_size=20))
@settings(max_examples=500, deadline=None)
def test_near_valid_garbage_only_raises_frame_error(pieces: list[bytes], cuts: list[int]) -> None:
    """Headers with small lengths reach the payload paths that random bytes rarely do."""
    feed_garbage(chunked(b"".join(pieces), cuts))


def test_oversize_header_fails_before_the_payload_arrives() -> None:
    decoder = FrameDecoder(LIMIT)
    with pytest.raises(FrameError, match=r"frame of 257 bytes exceeds the limit of 256 bytes"):
        decoder.feed((LIMIT + 1).to_bytes(4, "big"))
    assert decoder.failed and decoder.buffered_bytes == 0


def test_huge_announced_length_allocates_nothing() -> None:
    decoder = FrameDecoder(LIMIT)
    with pytest.raises(FrameError, match="exceeds the limit"):
        decoder.feed(b"\xff\xff\xff\xff" + b"x" * 10)


def test_zero_length_frame_is_refused() -> None:
    decoder = FrameDecoder(LIMIT)
    assert decoder.feed(encode_frame(b"ok")) == [b"ok"]
    with pytest.raises(FrameError, match="zero-length frame"):
        decoder.feed(b"\x00\x00\x00\x00")
    with pytest.raises(FrameError, match="already failed"):
        decoder.feed(encode_frame(b"ok"))


def test_frame_at_exactly_the_limit_is_accepted() -> None:
    decoder = FrameDecoder(LIMIT)
    payload = b"z" * LIMIT
    assert decoder.feed(encode_frame(payload)) == [payload]


def test_encode_refuses_empty_payload() -> None:
    with pytest.raises(FrameError, match="must not be empty"):
        encode_frame(b"")


def test_header_is_big_endian_length() -> None:
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"


@pytest.mark.parametrize("limit", [0, -1, 2**32])
def test_decoder_limit_must_fit_the_header(limit: int) -> None:
    with pytest.raises(ValueError, match="max_frame_bytes"):
        FrameDecoder(limit)
