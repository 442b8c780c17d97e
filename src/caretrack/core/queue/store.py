"""The write side: jobs are written in the caller's transaction (`tx.defer`, `tx.cancel_jobs`)
and runners in this process are woken once it has committed."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from caretrack.core.queue.models import Job
from caretrack.core.queue.registry import KIND, JobError, max_attempts_of

_wakers: set[asyncio.Event] = set()  # one per runner in this process


def wake() -> None:
    for event in _wakers:
        event.set()


def waker() -> asyncio.Event:
    event = asyncio.Event()
    _wakers.add(event)
    return event


def drop_waker(event: asyncio.Event) -> None:
    _wakers.discard(event)


async def defer(conn: BaseDBAsyncClient, kind: str, payload: dict[str, Any] | None = None, *,
                due: datetime | None = None, key: str | None = None, created: datetime | None = None) -> Job:
    """Queue `kind` with `payload`, due at `due` (None: at once)."""
    if not KIND.match(kind):
        raise JobError(f"Job kind {kind!r} must look like 'domain.action'.")
    if due is not None and due.tzinfo is None:
        raise JobError(f"Job {kind!r}: give `due` with a time zone (UTC), not {due!r}.")
    return await Job.create(using_db=conn, kind=kind, payload=json.dumps(payload or {}), key=key,
                            due_at=due, max_attempts=max_attempts_of(kind),
                            created_at=created or datetime.now(UTC))


async def cancel(conn: BaseDBAsyncClient, key_prefix: str, *, at: datetime | None = None) -> int:
    """Cancel the queued jobs whose key starts with `key_prefix`; returns how many."""
    if not key_prefix:
        raise JobError("Cancel jobs by a non-empty key prefix.")
    return await Job.filter(key__startswith=key_prefix, status="queued").using_db(conn).update(
        status="cancelled", finished_at=at or datetime.now(UTC))
