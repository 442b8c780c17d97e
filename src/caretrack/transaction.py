"""One unit of work: rows, audit rows, outbox events and emails commit together; work that
must follow the commit (waking the event relay, the mail sender) runs only after it.

    async with atomic() as tx:
        user = await User.create(using_db=tx.conn, ...)
        await tx.audit(actor, "user.created", "user", user.id)
        await tx.emit("user.signed_up", actor_id=user.id, subject=("user", user.id), roles=["admin"])
        await tx.email(user.email, "verify_email", {...})

Never start a task inside the block: a task would inherit a transaction that has already
finished (the Tortoise pitfall). Post-commit work goes through `tx.after_commit`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from caretrack import audit as audit_log
from caretrack.audit.service import Actor
from caretrack.logs import get_logger

log = get_logger("caretrack.transaction")


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
        from caretrack.realtime import outbox

        await outbox.write_event(self.conn, event_type, actor_id=actor_id, subject=subject,
                                 data=data or {}, users=users, roles=roles)
        self.after_commit(outbox.wake_relay)

    async def email(self, to: str, template: str, context: dict[str, Any],
                    attachments: Iterable[tuple[str, str, bytes]] = ()) -> None:
        from caretrack.mail import service as mail

        await mail.queue(self.conn, to, template, context, attachments)
        self.after_commit(mail.wake_sender)


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
