"""signalling.budget.MessageBudget on a clock the test moves: bursts pass, floods are closed
within `strikes` messages and `window` seconds of the first over-budget one."""

from __future__ import annotations

from signalling.budget import MessageBudget, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def budget(clock: Clock) -> MessageBudget:
    return MessageBudget(rate=10, burst=5, strikes=20, window=1.0, clock=clock)


def test_a_client_within_the_rate_is_always_accepted():
    clock = Clock()
    b = budget(clock)
    for _ in range(1000):
        clock.now += 0.1
        assert b.take() is Verdict.ACCEPT


def test_a_fast_flood_is_closed_at_the_strike_limit():
    b = budget(Clock())  # the clock stands still: nothing refills
    verdicts = [b.take() for _ in range(5 + 20)]
    assert verdicts[:5] == [Verdict.ACCEPT] * 5
    assert verdicts[5] is Verdict.OVER
    assert verdicts[6:-1] == [Verdict.OVER_AGAIN] * 18
    assert verdicts[-1] is Verdict.FLOODING


def test_a_slower_flood_is_closed_one_window_after_its_first_over_budget_message():
    clock = Clock()
    b = budget(clock)
    for _ in range(5):
        assert b.take() is Verdict.ACCEPT
    assert b.take() is Verdict.OVER
    first_over = clock.now
    verdicts = []
    while Verdict.FLOODING not in verdicts and len(verdicts) < 1000:
        clock.now += 0.05  # 20 a second: twice the rate, so every other message is over budget
        verdicts.append(b.take())
    assert verdicts[-1] is Verdict.FLOODING
    assert 1.0 <= clock.now - first_over <= 1.1  # the first over-budget message after a window
    assert verdicts.count(Verdict.OVER_AGAIN) < 20  # closed by time, before the strike limit


def test_a_burst_under_the_strike_limit_then_calm_is_left_alone_and_forgiven():
    clock = Clock()
    b = budget(clock)
    assert [b.take() for _ in range(5 + 10)].count(Verdict.OVER) == 1
    clock.now += 1.5  # a quiet window: the episode is over, and the bucket refilled
    assert [b.take() for _ in range(5)] == [Verdict.ACCEPT] * 5
    for _ in range(10):  # now and then over budget, a window apart: never a flood
        clock.now += 1.0
        verdicts = [b.take() for _ in range(11)]
        assert Verdict.FLOODING not in verdicts
