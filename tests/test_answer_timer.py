"""The gateway's answer timer: a question is asked again only once its answer is later than
answers have been lately, so a burst of first contacts is not asked three times over."""

from __future__ import annotations

from protocols.registered.gateway_flows import AnswerTimer

FLOOR, CEILING = 0.2, 1.0


def answered_at_once(timer: AnswerTimer, answers: int) -> AnswerTimer:
    """``answers`` answers 5 ms after their questions: an authority at rest."""
    for _ in range(answers):
        timer.answered(0.005, attempts=0)
    return timer


def test_an_idle_authority_keeps_the_configured_timeout():
    assert AnswerTimer(FLOOR, CEILING).timeout() == FLOOR
    assert answered_at_once(AnswerTimer(FLOOR, CEILING), 50).timeout() == FLOOR


def test_answers_that_queue_lengthen_the_wait_so_their_questions_are_not_asked_again():
    timer = answered_at_once(AnswerTimer(FLOOR, CEILING), 20)
    waits = []
    for k in range(30):  # a burst: answers come later and later, then at 400 ms
        waited = min(0.4, 0.05 * (k + 1))
        waits.append(timer.timeout())
        timer.answered(waited, attempts=0)
    assert timer.timeout() > 0.4 and max(waits) <= CEILING
    # the burst over: back to the configured timeout
    assert answered_at_once(timer, 100).timeout() == FLOOR


def test_an_answer_to_a_question_asked_again_is_not_timed():
    timer = AnswerTimer(FLOOR, CEILING)
    for _ in range(20):
        timer.answered(0.9, attempts=1)
    assert timer.timeout() == FLOOR


def test_the_wait_never_passes_the_ceiling():
    timer = AnswerTimer(FLOOR, CEILING)
    for _ in range(20):
        timer.answered(5.0, attempts=0)
    assert timer.timeout() == CEILING


def test_answers_grown_slower_than_the_wait_lengthen_it_by_backing_off():
    """Every answer slower than the wait answers a question asked twice, which is not timed:
    only backing off lets the wait learn that answers now take 350 ms."""
    timer = AnswerTimer(FLOOR, CEILING)
    asked_twice = 0
    for _ in range(20):
        attempts = 0
        if timer.timeout() < 0.35:  # the wait runs out before the answer comes
            timer.asked_again()
            attempts, asked_twice = 1, asked_twice + 1
        timer.answered(0.35, attempts)
    assert timer.timeout() > 0.35 and asked_twice <= 2
