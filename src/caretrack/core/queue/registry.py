"""Job kinds and their handlers. A domain's jobs.py registers its handlers with `@job(...)`;
site imports every jobs module, so a runner knows every kind."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from caretrack.core.queue.runner import JobContext

KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")  # "<domain>.<action>"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)

Run = Callable[["JobContext"], Coroutine[Any, Any, None]]


class JobError(Exception):
    """A job kind or a scheduling call is wrong (a programming error, not bad input)."""


class Retry(Exception):
    """Run the job again, `after` from now (default: the backoff for this attempt)."""

    def __init__(self, reason: str, after: timedelta | None = None) -> None:
        super().__init__(reason)
        self.after = after


class Skipped(Exception):
    """End the job without success and without retrying; the reason is kept."""


@dataclass(frozen=True)
class Handler:
    kind: str
    run: Run
    max_attempts: int
    every: timedelta | None  # recurring: one job per tick
    offset: timedelta | None = None  # ticks fall on a grid: UTC midnight 1970 + offset + k * every
    timeout: timedelta = timedelta(minutes=15)  # a run that takes longer is stopped and retried

    def first_tick(self, at: datetime) -> datetime:
        """When a recurring kind first runs: at once, or at its grid's next tick."""
        if self.offset is None:
            return at
        return self.next_tick(at - timedelta(microseconds=1))

    def next_tick(self, after: datetime) -> datetime:
        """The tick after `after`: `every` later, or the grid's next one (never catching up on
        ticks missed while no runner ran)."""
        assert self.every is not None
        if self.offset is None:
            return after + self.every
        base = EPOCH + self.offset
        return base + self.every * ((after - base) // self.every + 1)


HANDLERS: dict[str, Handler] = {}


def job(kind: str, *, max_attempts: int = 10, every: timedelta | None = None,
        offset: timedelta | None = None) -> Callable[[Run], Run]:
    """Register `run` as the handler of `kind`: recurring every `every` when given, and with
    `offset`, on a fixed grid (`every=timedelta(days=1), offset=timedelta(hours=7)`: daily at
    07:00 UTC) rather than from whenever the first runner started."""
    if not KIND.match(kind):
        raise JobError(f"Job kind {kind!r} must look like 'domain.action' (lower case).")
    if offset is not None and (every is None or not timedelta(0) <= offset < every):
        raise JobError(f"Job {kind!r}: an offset needs `every` and must lie within one period.")
    if max_attempts < 1:
        raise JobError(f"Job {kind!r}: max_attempts must be at least 1.")

    def register(run: Run) -> Run:
        existing = HANDLERS.get(kind)
        if existing is not None and existing.run is not run:
            raise JobError(f"Job kind {kind!r} already has a handler ({existing.run.__qualname__}).")
        HANDLERS[kind] = Handler(kind, run, max_attempts, every, offset)
        return run

    return register


def max_attempts_of(kind: str) -> int:
    handler = HANDLERS.get(kind)
    return handler.max_attempts if handler else 10


def backoff(attempt: int, rng: random.Random | None = None) -> timedelta:
    """Exponential from 30 s, capped at 6 h, with "equal jitter": between half and all of it,
    so that jobs failing together do not come back together."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (1 << min(attempt - 1, 20)))
    draw = rng.random() if rng is not None else random.random()
    return ceiling * (0.5 + draw / 2)
