"""The nudge: a message still unread `settings.message_nudge_minutes` after it was sent sends
its recipient (each admin, for a message to the office) a reminder that carries no message
text and no sender, only a link to the thread. One job per message, queued in the sending
transaction; when it runs it checks again, and skips a message read by then."""

from __future__ import annotations

from datetime import datetime, timedelta

from caretrack.accounts.models import User
from caretrack.core.audit.service import SYSTEM
from caretrack.core.queue import JobContext, Skipped
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.transaction import Tx, atomic
from caretrack.messaging.models import Message, Thread
from caretrack.notifications.schemas import Kind
from caretrack.notifications.service import notify

NUDGE = "messaging.nudge"


def nudge_key(message_id: int) -> str:
    return f"messaging.nudge:{message_id}"


async def plan(tx: Tx, settings: Settings, message: Message, *, at: datetime) -> None:
    await tx.defer(NUDGE, {"message_id": message.id}, due=at + timedelta(minutes=settings.message_nudge_minutes),
                   key=nudge_key(message.id))


async def _recipients(message: Message) -> list[User]:
    if message.recipient_id is not None:
        return await User.filter(id=message.recipient_id, is_active=True)
    return await User.filter(role=Role.ADMIN, is_active=True).order_by("id")


async def send_nudge(ctx: JobContext) -> None:
    """The `messaging.nudge` job."""
    message = await Message.get_or_none(id=ctx.payload["message_id"])
    if message is None:
        raise Skipped("the message is gone")
    if message.read_at is not None:
        raise Skipped(f"read at {message.read_at.isoformat()}, before the nudge")
    thread = await Thread.get(id=message.thread_id)
    if thread.closed_at is not None:
        raise Skipped("the conversation was closed")
    people = await _recipients(message)
    if not people:
        raise Skipped("nobody active to nudge")
    link = f"{ctx.settings.base_url}/messages/{thread.id}"
    async with atomic() as tx:
        sent = 0
        for person in people:  # on each one's channels; the text names nobody and quotes nothing
            used = await notify(tx, person, Kind.MESSAGE_NUDGE, at=ctx.at,
                                email=("messaging_nudge", {"name": person.full_name, "link": link}, ()),
                                sms_text=f"CareTrack: you have an unread message. Read it: {link}")
            sent += len(used)
        await tx.audit(SYSTEM, "message.nudged", "message", message.id, thread=thread.id, sent=sent)
        await ctx.finish(tx)
