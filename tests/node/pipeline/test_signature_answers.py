"""When a node answers a peer's header signature with its own: only when the peer may
have missed the broadcast (a link event since, a broadcast some queue refused, a block
applied in an earlier run or too long ago to be recorded)."""

from __future__ import annotations

from node.pipeline.signature_answers import SignatureAnswers


def test_a_broadcast_that_reached_every_peer_is_not_repeated() -> None:
    answers = SignatureAnswers()
    answers.broadcast(5, reached_all=True)
    assert not answers.should_answer(5)


def test_a_link_event_after_the_broadcast_makes_it_answered() -> None:
    answers = SignatureAnswers()
    answers.broadcast(5, reached_all=True)
    answers.link_changed()  # a peer went down (it may restart and lose what it had)
    answers.broadcast(6, reached_all=True)
    assert answers.should_answer(5)
    assert not answers.should_answer(6)


def test_a_broadcast_some_queue_refused_is_answered() -> None:
    answers = SignatureAnswers()
    answers.broadcast(5, reached_all=False)
    assert answers.should_answer(5)


def test_a_height_never_broadcast_in_this_run_is_answered() -> None:
    """Applied before a restart (the answer then comes from the stored certificate)."""
    assert SignatureAnswers().should_answer(3)


def test_heights_older_than_the_record_are_answered() -> None:
    answers = SignatureAnswers(heights_recorded=3)
    for h in range(1, 6):
        answers.broadcast(h, reached_all=True)
    assert [answers.should_answer(h) for h in range(1, 6)] == [True, True, False, False, False]
