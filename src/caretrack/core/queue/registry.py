"""Job kinds and their handlers. A domain's jobs.py registers its handlers with `@job(...)`;
site imports every jobs module, so a runner knows every kind."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from caretrack.core.queue.runner import JobContext

KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")  # "<domain>.<action>"
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


HANDLERS: dict[str, Handler] = {}


def job(kind: str, *, max_attempts: int = 10, every: timedelta | None = None) -> Callable[[Run], Run]:
    """Register `run` as the handler of `kind` (recurring every `every` when given)."""
    if not KIND.match(kind):
        raise JobError(f"Job kind {kind!r} must look like 'domain.action' (lower case).")
    if max_attempts < 1:
        raise JobError(f"Job {kind!r}: max_attempts must be at least 1.")

    def register(run: Run) -> Run:
        existing = HANDLERS.get(kind)
        if existing is not None and existing.run is not run:
            raise JobError(f"Job kind {kind!r} already has a handler ({existing.run.__qualname__}).")
        HANDLERS[kind] = Handler(kind, run, max_attempts, every)
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
