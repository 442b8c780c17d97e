"""One unit of work: rows, audit rows, outbox events and jobs commit together, with whatever else
a domain writes on `tx.conn` (an email: `mail.send(tx, ...)`); work that must follow the
commit (waking the event relay, the job runner) runs only after it.

    async with atomic() as tx:
        user = await User.create(using_db=tx.conn, ...)
        await tx.audit(actor, "user.created", "user", user.id)
        await tx.emit("user.signed_up", actor_id=user.id, subject=("user", user.id), roles=["admin"])
        await mail.send(tx, user.email, "verify_email", {...})

Never start a task inside the block: a task would inherit a transaction that has already
finished (the Tortoise pitfall). Post-commit work goes through `tx.after_commit`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from caretrack.core import audit as audit_log
from caretrack.core.audit.service import Actor
from caretrack.core.logs import get_logger
from caretrack.core.outbox import store as outbox
from caretrack.core.queue import store as jobs

log = get_logger("caretrack.core.transaction")


@dataclass
class Tx:
    conn: BaseDBAsyncClient
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """A plain function (not a coroutine) to call once the transaction has committed."""
        if callback not in self._after_commit:
            self._after_commit.append(callback)

    async def audit(self, actor: Actor, action: str, subject_type: str | None = None,
                    subject_id: Any = None, **detail: Any) -> None:
        await audit_log.record(self.conn, actor, action, subject_type, subject_id, **detail)

    async def emit(self, event_type: str, *, actor_id: int | None, subject: tuple[str, Any] | None = None,
                   data: dict[str, Any] | None = None, users: Iterable[int] = (), roles: Iterable[str] = ()) -> None:
        """Write a live-update event for its recipients into the outbox."""
        await outbox.write_event(self.conn, event_type, actor_id=actor_id, subject=subject,
                                 data=data or {}, users=users, roles=roles)
        self.after_commit(outbox.wake_relay)

    async def defer(self, kind: str, payload: dict[str, Any] | None = None, *, due: datetime | None = None,
                    key: str | None = None) -> int:
        """Queue a job (caretrack.core.queue) due at `due` (None: at once); returns its id."""
        job = await jobs.defer(self.conn, kind, payload, due=due, key=key)
        self.after_commit(jobs.wake)
        return int(job.id)

    async def cancel_jobs(self, key_prefix: str, *, at: datetime | None = None) -> int:
        """Cancel the queued jobs whose key starts with `key_prefix`."""
        return await jobs.cancel(self.conn, key_prefix, at=at)


@contextlib.asynccontextmanager
async def atomic() -> AsyncIterator[Tx]:
    async with in_transaction() as conn:
        tx = Tx(conn)
        yield tx
    for callback in tx._after_commit:
        try:
            callback()
        except Exception:  # a wake-up that fails is retried by the periodic sweep
            log.exception("after-commit callback failed", callback=getattr(callback, "__name__", repr(callback)))
