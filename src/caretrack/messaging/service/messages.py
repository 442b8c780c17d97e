"""Sending and reading messages. A body is sealed before it is written and unsealed when a
member reads it; every send and every read of a thread is audited. Reading a thread marks
what was addressed to the reader's side as read (the sender then sees "Read" and when)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from caretrack.accounts.models import User
from caretrack.core import crypto
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, Forbidden, NotFound, ValidationError
from caretrack.core.settings import Settings
from caretrack.core.transaction import Tx, atomic
from caretrack.messaging import uploads
from caretrack.messaging.models import Attachment, Message, Thread
from caretrack.messaging.schemas import PAGE_SIZE, AttachmentView, MessageIn, MessageView, ThreadPage
from caretrack.messaging.service import nudge
from caretrack.messaging.service.threads import (
    audience,
    received_by,
    recipient_of,
    send_refusal,
    summary,
    thread_for,
)

BODY_CONTEXT = "messages.body"
NAME_CONTEXT = "message_attachments.original_name"


def check_can_send(user: User, thread: Thread) -> None:
    refusal = send_refusal(user, thread)
    if refusal is None:
        return
    if thread.closed_at is not None:
        raise Conflict(refusal)
    raise Forbidden(refusal)


async def do_send(settings: Settings, user: User, thread_id: int, command: MessageIn,
                  files: Sequence[uploads.Upload] = (), *, at: datetime, client_address: str | None = None) -> Message:
    """Send a message (and its checked attachments) in one transaction; its members hear of it live."""
    thread = await thread_for(user, thread_id)
    check_can_send(user, thread)
    if not command.text and not files:
        raise ValidationError("Write a message or attach a file.", fields=[{"field": "text", "message": "required"}])
    types = await uploads.check_attachments(files)
    stored = [uploads.store(settings, f.data, t) for f, t in zip(files, types, strict=True)]
    try:
        async with atomic() as tx:
            thread = await thread_for(user, thread_id, tx.conn)  # read again: closed or blocked meanwhile?
            check_can_send(user, thread)
            message = await Message.create(using_db=tx.conn, thread_id=thread.id, sender_id=user.id,
                                           recipient_id=recipient_of(user, thread), sent_at=at,
                                           body=crypto.seal(command.text or "", BODY_CONTEXT))
            for upload, content_type, name in zip(files, types, stored, strict=True):
                await Attachment.create(using_db=tx.conn, message_id=message.id, file_name=name,
                                        original_name=crypto.seal(uploads.clean_name(upload.name, content_type),
                                                                  NAME_CONTEXT),
                                        content_type=content_type, size_bytes=len(upload.data))
            await Thread.filter(id=thread.id).using_db(tx.conn).update(last_message_at=at)
            await tx.audit(Actor(user.id, client_address), "phi.write", "message", message.id, thread=thread.id,
                           attachments=len(files))
            await tx.emit("message.sent", actor_id=user.id, subject=("thread", thread.id),
                          data={"thread_id": thread.id, "message_id": message.id}, **audience(thread))
            await nudge.plan(tx, settings, message, at=at)
    except BaseException:
        uploads.remove(settings, stored)
        raise
    return message


async def message_view(user: User, message: Message) -> MessageView:
    """How `user` sees one message (its sender sees it right after sending)."""
    await message.fetch_related("sender")
    files = await Attachment.filter(message_id=message.id).order_by("id")
    return _view(user, message, [_attachment_view(message.thread_id, a) for a in files])


def _view(user: User, m: Message, attachments: list[AttachmentView]) -> MessageView:
    return MessageView(id=m.id, sender_id=m.sender_id, sender_name=m.sender.full_name, mine=m.sender_id == user.id,
                       text=crypto.unseal(m.body, BODY_CONTEXT) or "", sent_at=m.sent_at, read_at=m.read_at,
                       attachments=attachments)


def _attachment_view(thread_id: int, attachment: Attachment) -> AttachmentView:
    return AttachmentView(id=attachment.id, name=crypto.unseal(attachment.original_name, NAME_CONTEXT) or "",
                          content_type=attachment.content_type, size_bytes=attachment.size_bytes,
                          download_url=f"/messages/{thread_id}/attachments/{attachment.id}")


async def _mark_read(tx: Tx, user: User, thread: Thread, at: datetime) -> None:
    unread = Message.filter(received_by(user, thread), read_at__isnull=True).using_db(tx.conn)
    ids = await unread.values_list("id", flat=True)
    if not ids:
        return
    await Message.filter(id__in=list(ids)).using_db(tx.conn).update(read_at=at, read_by_id=user.id)
    await tx.emit("message.read", actor_id=user.id, subject=("thread", thread.id),
                  data={"thread_id": thread.id, "up_to": max(ids), "read_at": at}, **audience(thread))


async def read_thread(user: User, thread_id: int, *, before: int | None = None, after: int | None = None,
                      limit: int = PAGE_SIZE, at: datetime, client_address: str | None = None) -> ThreadPage:
    """A page of the thread, oldest first: the newest `limit` messages, those before `before`,
    or those after `after`. Reading marks the thread read for the reader's side."""
    if before is not None and after is not None:
        raise ValidationError("Give 'before' or 'after', not both.")
    async with atomic() as tx:
        thread = await thread_for(user, thread_id, tx.conn)
        await _mark_read(tx, user, thread, at)
        query = Message.filter(thread_id=thread.id).using_db(tx.conn).select_related("sender")
        if after is not None:
            rows = await query.filter(id__gt=after).order_by("id").limit(limit)
            older = False
        else:
            if before is not None:
                query = query.filter(id__lt=before)
            rows = list(reversed(await query.order_by("-id").limit(limit + 1)))
            older = len(rows) > limit
            rows = rows[-limit:] if older else rows
        files = await Attachment.filter(message_id__in=[m.id for m in rows]).using_db(tx.conn).order_by("id")
        await tx.audit(Actor(user.id, client_address), "phi.read", "message_thread", thread.id, messages=len(rows))
    by_message: dict[int, list[AttachmentView]] = {}
    for attachment in files:
        by_message.setdefault(attachment.message_id, []).append(_attachment_view(thread.id, attachment))
    messages = [_view(user, m, by_message.get(m.id, [])) for m in rows]
    return ThreadPage(thread=summary(user, thread, 0), messages=messages, older=older)


async def open_attachment(settings: Settings, user: User, thread_id: int, attachment_id: int,
                          client_address: str | None = None) -> tuple[Attachment, Iterator[bytes], str]:
    """(attachment, its decrypted chunks, its download name) for a member of its thread; audited."""
    thread = await thread_for(user, thread_id)
    attachment = await Attachment.get_or_none(id=attachment_id, message__thread_id=thread.id)
    if attachment is None:
        raise NotFound(f"No attachment with id {attachment_id} in this thread.")
    path = uploads.path_of(settings, attachment.file_name)
    if not path.exists():
        raise NotFound("The attachment's file is missing.")
    async with atomic() as tx:
        await tx.audit(Actor(user.id, client_address), "phi.read", "message_attachment", attachment.id,
                       thread=thread.id)
    chunks = crypto.decrypt_file(path, uploads.file_context(attachment.file_name))
    return attachment, chunks, crypto.unseal(attachment.original_name, NAME_CONTEXT) or "attachment"
