"""How many messages one socket may send: a token bucket, and when a client is flooding.

Shared by signalling sessions and the host application's own sockets (CareTrack's
/ws/events), so both close a flooder the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum


class Verdict(Enum):
    ACCEPT = "accept"  # within budget
    OVER = "over"  # over budget; the first of an episode (the client may be warned)
    OVER_AGAIN = "over again"  # over budget, in an episode that is already known
    FLOODING = "flooding"  # close the socket


class MessageBudget:
    """Each message takes a token; tokens refill at `rate` a second, up to `burst`.

    A message that finds no token is over budget. Over-budget messages less than `window`
    seconds apart form one episode; an episode that reaches `strikes` messages, or lasts
    `window` seconds, is a flood. Messages are never delayed (a delay only lets a
    flooder's backlog pile up in the buffers and keeps it connected longer): a flooding
    client is closed at most `window` seconds, and `strikes` messages, after its first
    over-budget message. A burst that stays under `strikes` and a client that is only now
    and then over budget are left alone.

    `clock` is a monotonic clock in seconds (tests pass their own).
    """

    def __init__(self, rate: float, burst: int, strikes: int, window: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.strikes = strikes
        self.window = window
        self.clock = clock
        self._tokens = float(burst)
        self._refilled = clock()
        self._episode_start: float | None = None
        self._last_over = 0.0
        self._over = 0

    def take(self) -> Verdict:
        """Account for one message received now."""
        moment = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (moment - self._refilled) * self.rate)
        self._refilled = moment
        if self._tokens >= 1:
            self._tokens -= 1
            return Verdict.ACCEPT
        first = self._episode_start is None or moment - self._last_over >= self.window
        if first or self._episode_start is None:  # (None implies first; spelled for mypy)
            self._episode_start, self._over = moment, 0
        self._over += 1
        self._last_over = moment
        if self._over >= self.strikes or moment - self._episode_start >= self.window:
            return Verdict.FLOODING
        return Verdict.OVER if first else Verdict.OVER_AGAIN
