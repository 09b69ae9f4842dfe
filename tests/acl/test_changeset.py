"""Change sets (``acl.changeset``) and replaying a block from one (``replay_block``).

That replaying gives what executing gave is checked on every block of every ACL test
(``tests/acl/helpers.py``); these are the format's own properties and the replay's
refusals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acl import changeset
from acl import keys as K
from acl.changeset import ChangeSetError
from acl.machine import StateError, replay_block, writes_digest
from acl.samples import story
from acl.state import Write
from tests.acl.helpers import LocalChain

keys = st.binary(min_size=1, max_size=changeset.KEY_BYTES_MAX)
values = st.none() | st.binary(max_size=300)


@st.composite
def write_sets(draw: st.DrawFn) -> list[Write]:
    ks = sorted(set(draw(st.lists(keys, max_size=12))))
    return [(k, draw(values)) for k in ks]


@settings(max_examples=300, deadline=None)
@given(write_sets())
def test_decode_inverts_encode(writes: list[Write]) -> None:
    data = changeset.encode(writes)
    assert changeset.decode(data) == writes
    assert changeset.digest(data) == writes_digest(writes)


@st.composite
def near_change_sets(draw: st.DrawFn) -> bytes:
    """A valid change set with one byte replaced, or cut short by one byte."""
    data = changeset.encode(draw(write_sets()))
    if not data or draw(st.booleans()):
        return data[:-1]
    at = draw(st.integers(0, len(data) - 1))
    return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200) | near_change_sets())
def test_what_decodes_is_canonical_and_nothing_else_does(data: bytes) -> None:
    """Any bytes: either one ChangeSetError, or writes that encode to exactly these bytes
    (one byte string per change set, so its digest is well defined)."""
    try:
        writes = changeset.decode(data)
    except ChangeSetError:
        return
    assert changeset.encode(writes) == data


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x00", "truncated key length"),
        (b"\x00\x00\x00\x00\x00\x00", "key length 0"),
        (b"\x02\x00" + b"k" * 512 + b"\x00\x00\x00\x00", "key length 512"),
        (b"\x00\x01k\x00\x00", "truncated key or value length"),
        (b"\x00\x01k\x00\x00\x00\x05abc", "overruns the end"),
        (b"\x00\x01b\xff\xff\xff\xff\x00\x01a\xff\xff\xff\xff", "ascending"),
        (b"\x00\x01a\xff\xff\xff\xff\x00\x01a\x00\x00\x00\x00", "ascending"),
        (b"\x00\x01a\x00\x00\x00\x00\x00", "truncated key length"),
    ],
)
def test_malformed_change_sets_are_named(data: bytes, problem: str) -> None:
    with pytest.raises(ChangeSetError, match=problem):
        changeset.decode(data)


def _first_block() -> tuple[LocalChain, LocalChain, int, int]:
    """A chain that applied the story's first block, and one still at genesis."""
    s = story()
    done, fresh = LocalChain(s.genesis), LocalChain(s.genesis)
    block = s.blocks[0]
    done.apply(block.txs, block.timestamp_ms)
    return done, fresh, 1, block.timestamp_ms


def _replay(chain: LocalChain, height: int, ts: int, data: bytes) -> bytes:
    return replay_block(
        chain.state,
        genesis=chain.genesis,
        height=height,
        timestamp_ms=ts,
        results=chain.outcomes[-1].results,
        change_set=data,
    ).state_root


def test_replay_refuses_a_change_set_that_breaks_the_block_sequence() -> None:
    done, fresh, height, ts = _first_block()
    good = done.outcomes[-1].change_set
    assert _replay(fresh, height, ts, good) == done.root
    writes = changeset.decode(good)
    without_height = [w for w in writes if w[0] != K.META_HEIGHT]
    with pytest.raises(ChangeSetError, match="does not record"):
        _replay(fresh, height, ts, changeset.encode(without_height))
    with pytest.raises(ChangeSetError, match="does not record"):
        _replay(fresh, height, ts + 1, good)  # another timestamp than it recorded
    with_root = sorted([*writes, (K.META_ROOT, bytes(32))])
    with pytest.raises(ChangeSetError, match="state root key"):
        _replay(fresh, height, ts, changeset.encode(with_root))
    with pytest.raises(ChangeSetError, match="truncated"):
        _replay(fresh, height, ts, good[:-1] + b"\x00\x00")
    with pytest.raises(StateError, match="applied on state at height 1"):
        _replay(done, height, ts, good)  # the block is already in


def test_any_other_change_set_gives_another_root() -> None:
    done, fresh, height, ts = _first_block()
    writes = changeset.decode(done.outcomes[-1].change_set)
    key = next(k for k, v in writes if v and not k.startswith(b"\x00"))  # not a meta key
    tampered = [(k, (v or b"") + b"x" if k == key else v) for k, v in writes]
    assert _replay(fresh, height, ts, changeset.encode(tampered)) != done.root
