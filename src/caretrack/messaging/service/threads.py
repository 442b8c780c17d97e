"""Who may talk to whom, and the threads themselves: finding and starting one, listing a
user's threads, closing, reopening, blocking and unblocking.

Membership: a care thread belongs to its patient and its doctor; an office thread to its
carer and to every admin (the office). Anyone else asking for a thread gets a 404 naming
only the id they gave, so ids reveal nothing."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Literal

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from caretrack.accounts.models import User
from caretrack.booking.models import Appointment
from caretrack.booking.service import has_consultation
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, Forbidden, NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.transaction import Tx, atomic
from caretrack.messaging.models import Message, Thread, ThreadKind
from caretrack.messaging.schemas import ThreadStart, ThreadSummary

OFFICE = "office"
THE_OFFICE = "The office"


def not_found(thread_id: int) -> NotFound:
    return NotFound(f"No message thread with id {thread_id}.")


def is_member(user: User, thread: Thread) -> bool:
    if thread.kind == ThreadKind.CARE:
        return user.id in (thread.patient_id, thread.doctor_id)
    return user.id == thread.carer_id or user.role == Role.ADMIN


def side_of_id(thread: Thread, user_id: int | None) -> str:
    """"patient", "doctor", "carer" or "office" (any admin, in an office thread)."""
    if thread.kind == ThreadKind.CARE:
        return "patient" if user_id == thread.patient_id else "doctor"
    return "carer" if user_id == thread.carer_id else OFFICE


def side_of(user: User, thread: Thread) -> str:
    return side_of_id(thread, user.id)


def recipient_of(user: User, thread: Thread) -> int | None:
    """Whom `user`'s message in `thread` is to: the other member, or None for the office."""
    if thread.kind == ThreadKind.CARE:
        other: int | None = thread.doctor_id if user.id == thread.patient_id else thread.patient_id
        return other
    return thread.carer_id if user.role == Role.ADMIN else None


def received_by(user: User, thread: Thread | None = None) -> Q:
    """The messages addressed to `user`'s side (of `thread`, or of every thread)."""
    mine = Q(recipient_id=user.id)
    if user.role == Role.ADMIN and (thread is None or thread.kind == ThreadKind.OFFICE):
        mine = mine | Q(recipient_id__isnull=True)
    return mine if thread is None else mine & Q(thread_id=thread.id)


def audience(thread: Thread) -> dict[str, list[Any]]:
    """The recipients of a thread's live events (tx.emit's users= and roles=)."""
    if thread.kind == ThreadKind.CARE:
        return {"users": [thread.patient_id, thread.doctor_id], "roles": []}
    return {"users": [thread.carer_id], "roles": [Role.ADMIN]}


async def thread_for(user: User, thread_id: int, conn: Any = None) -> Thread:
    """The thread if `user` is a member; a 404 otherwise."""
    query = Thread.filter(id=thread_id).select_related("patient", "doctor", "carer")
    thread = await (query.using_db(conn) if conn is not None else query).first()
    if thread is None or not is_member(user, thread):
        raise not_found(thread_id)
    return thread


def other_name(user: User, thread: Thread) -> str:
    """The other side's name (the thread is read with its patient, doctor and carer)."""
    if thread.kind == ThreadKind.OFFICE:
        other = thread.carer if user.role == Role.ADMIN else None
    else:
        other = thread.doctor if user.id == thread.patient_id else thread.patient
    return str(other.full_name) if other is not None else THE_OFFICE


def send_refusal(user: User, thread: Thread) -> str | None:
    """Why `user` may not send in `thread` now, in words that state the rule; None when they may."""
    if thread.closed_at is not None:
        closer = "you" if thread.closed_by_id == user.id else "the other side"
        return (f"This conversation was closed by {closer}, so no more messages can be sent; "
                "whoever closed it can reopen it.")
    if thread.blocked_by_id is not None:
        if thread.blocked_by_id == user.id:
            return "You have blocked this conversation; unblock it to send messages again."
        blocker = side_of_id(thread, thread.blocked_by_id)
        return f"The {blocker} has blocked messages from you in this conversation, so you cannot send here."
    return None


def state_of(thread: Thread) -> Literal["open", "closed", "blocked"]:
    if thread.closed_at is not None:
        return "closed"
    return "blocked" if thread.blocked_by_id is not None else "open"


def summary(user: User, thread: Thread, unread: int) -> ThreadSummary:
    refusal = send_refusal(user, thread)
    return ThreadSummary(
        id=thread.id, kind=thread.kind.value, with_name=other_name(user, thread), state=state_of(thread),
        closed_at=thread.closed_at, blocked_by_me=thread.blocked_by_id == user.id, can_send=refusal is None,
        send_refusal=refusal, unread=unread, last_message_at=thread.last_message_at, url=f"/messages/{thread.id}")


async def thread_summary(user: User, thread: Thread) -> ThreadSummary:
    unread = await Message.filter(received_by(user, thread), read_at__isnull=True).count()
    return summary(user, thread, unread)


async def unread_by_thread(user: User) -> Counter[int]:
    rows = await Message.filter(received_by(user), read_at__isnull=True).values("thread_id")
    return Counter(int(row["thread_id"]) for row in rows)


async def unread_total(user: User) -> int:
    return await Message.filter(received_by(user), read_at__isnull=True).count()


async def list_threads(user: User) -> tuple[list[ThreadSummary], int]:
    """The user's threads, newest activity first, each with its unread count; and the total."""
    if user.role == Role.ADMIN:
        query = Thread.filter(kind=ThreadKind.OFFICE)
    elif user.role == Role.CARER:
        query = Thread.filter(carer_id=user.id)
    else:
        query = Thread.filter(Q(patient_id=user.id) | Q(doctor_id=user.id))
    threads = await query.select_related("patient", "doctor", "carer").order_by("-last_message_at", "-id")
    unread = await unread_by_thread(user)
    return [summary(user, t, unread.get(t.id, 0)) for t in threads], sum(unread.values())


async def contacts(user: User) -> list[tuple[int, str]]:
    """Whom `user` may start a thread with (id, name): a patient's doctors, a doctor's patients,
    every carer for an admin; a carer's one contact is the office (not listed)."""
    if user.role in (Role.PATIENT, Role.DOCTOR):
        mine, theirs = ("patient_id", "doctor_id") if user.role == Role.PATIENT else ("doctor_id", "patient_id")
        ids = await Appointment.filter(**{mine: user.id}, booked_at__isnull=False).distinct().values_list(
            theirs, flat=True)
        people = await User.filter(id__in=list(ids), is_active=True).order_by("full_name")
    elif user.role == Role.ADMIN:
        people = await User.filter(role=Role.CARER, is_active=True).order_by("full_name")
    else:
        people = []
    return [(p.id, p.full_name) for p in people]


async def _counterpart(user: User, command: ThreadStart) -> User | None:
    """The other member of the thread `user` asks for (None: the office), or the refusal."""
    other_id = command.with_user_id
    if user.role == Role.CARER:
        if other_id is not None:
            raise ValidationError("Carers message the office: leave out with_user_id.",
                                  fields=[{"field": "with_user_id", "message": "leave it out"}])
        return None
    if other_id is None:
        raise ValidationError("Say whom to message (with_user_id).",
                              fields=[{"field": "with_user_id", "message": "required"}])
    nobody = NotFound(f"No one with id {other_id} that you can message.")
    other = await User.get_or_none(id=other_id, is_active=True)
    if user.role == Role.ADMIN:
        if other is None:
            raise nobody
        if other.role != Role.CARER:  # admins see every user: naming the rule reveals nothing
            article = "an" if other.role == Role.ADMIN else "a"
            raise ValidationError(f"The office messages carers; {other.full_name} is {article} {other.role.value}.")
        return other
    if other is None or other.id == user.id:
        raise nobody
    if user.role == Role.PATIENT:
        related = other.role == Role.DOCTOR and await has_consultation(other.id, user.id)
    else:
        related = other.role == Role.PATIENT and await has_consultation(user.id, other.id)
    if not related:
        raise nobody
    return other


async def do_start_thread(user: User, command: ThreadStart, *, at: datetime,
                          client_address: str | None = None) -> Thread:
    """Find or open the thread `command` names; only people with a care relationship get one."""
    other = await _counterpart(user, command)
    if other is None:
        carer_id = user.id
    elif user.role == Role.ADMIN:
        carer_id = other.id
    else:
        carer_id = None
    if carer_id is not None:
        where: dict[str, Any] = {"kind": ThreadKind.OFFICE, "carer_id": carer_id}
    else:
        assert other is not None
        patient_id, doctor_id = (user.id, other.id) if user.role == Role.PATIENT else (other.id, user.id)
        where = {"kind": ThreadKind.CARE, "patient_id": patient_id, "doctor_id": doctor_id}
    existing = await Thread.get_or_none(**where)
    if existing is None:
        try:
            async with atomic() as tx:
                existing = await Thread.create(using_db=tx.conn, created_at=at, last_message_at=at, **where)
                await tx.audit(Actor(user.id, client_address), "message.thread_started", "message_thread",
                               existing.id, kind=where["kind"].value)
        except IntegrityError:  # started by the other side at the same moment
            existing = await Thread.get(**where)
    return await thread_for(user, existing.id)


async def do_start_from_appointment(user: User, appointment_id: int, *, at: datetime,
                                    client_address: str | None = None) -> Thread:
    """The thread between an appointment's patient and doctor, opened by either of them."""
    rows = await Appointment.filter(id=appointment_id).values("patient_id", "doctor_id")
    if not rows or user.id not in (rows[0]["patient_id"], rows[0]["doctor_id"]):
        raise NotFound(f"No appointment with id {appointment_id}.")
    other = rows[0]["doctor_id"] if user.id == rows[0]["patient_id"] else rows[0]["patient_id"]
    return await do_start_thread(user, ThreadStart(with_user_id=other), at=at, client_address=client_address)


# --- closing and blocking ----------------------------------------------------------------------


async def _change(tx: Tx, user: User, thread: Thread, action: str, client_address: str | None,
                  **values: Any) -> None:
    await Thread.filter(id=thread.id).using_db(tx.conn).update(**values)
    await tx.audit(Actor(user.id, client_address), action, "message_thread", thread.id)
    for name, value in values.items():
        setattr(thread, name, value)
    await tx.emit("message.thread_changed", actor_id=user.id, subject=("thread", thread.id),
                  data={"thread_id": thread.id, "state": state_of(thread)}, **audience(thread))


def _check_not_blocked(user: User, thread: Thread) -> None:
    """The side that was blocked can neither close nor reopen: it could otherwise shut the
    blocker out of the conversation, or keep the blocker's page reloading."""
    if thread.blocked_by_id is not None and thread.blocked_by_id != user.id:
        blocker = side_of_id(thread, thread.blocked_by_id)
        raise Forbidden(f"The {blocker} has blocked this conversation, so you cannot close or reopen it.")


async def do_close(user: User, thread_id: int, *, at: datetime, client_address: str | None = None) -> Thread:
    async with atomic() as tx:
        thread = await thread_for(user, thread_id, tx.conn)
        _check_not_blocked(user, thread)
        if thread.closed_at is not None:
            raise Conflict("This conversation is already closed.")
        await _change(tx, user, thread, "message.thread_closed", client_address, closed_at=at, closed_by_id=user.id)
    return thread


async def do_reopen(user: User, thread_id: int, *, at: datetime, client_address: str | None = None) -> Thread:
    async with atomic() as tx:
        thread = await thread_for(user, thread_id, tx.conn)
        _check_not_blocked(user, thread)
        if thread.closed_at is None:
            raise Conflict("This conversation is open already.")
        closer = side_of_id(thread, thread.closed_by_id)
        if thread.closed_by_id is not None and closer != side_of(user, thread) and thread.blocked_by_id != user.id:
            raise Forbidden(f"Only the {closer} who closed this conversation can reopen it.")
        await _change(tx, user, thread, "message.thread_reopened", client_address, closed_at=None, closed_by_id=None)
    return thread


async def do_block(user: User, thread_id: int, *, at: datetime, client_address: str | None = None) -> Thread:
    async with atomic() as tx:
        thread = await thread_for(user, thread_id, tx.conn)
        if thread.kind != ThreadKind.CARE:
            raise ValidationError("Blocking is for conversations between a patient and a doctor; "
                                  "close this conversation instead.")
        if thread.blocked_by_id == user.id:
            raise Conflict("You have already blocked this conversation.")
        if thread.blocked_by_id is not None:
            raise Conflict(f"The {side_of_id(thread, thread.blocked_by_id)} has already blocked this conversation.")
        await _change(tx, user, thread, "message.thread_blocked", client_address, blocked_at=at, blocked_by_id=user.id)
    return thread


async def do_unblock(user: User, thread_id: int, *, at: datetime, client_address: str | None = None) -> Thread:
    async with atomic() as tx:
        thread = await thread_for(user, thread_id, tx.conn)
        if thread.blocked_by_id is None:
            raise Conflict("This conversation is not blocked.")
        if thread.blocked_by_id != user.id:
            raise Forbidden(f"Only the {side_of_id(thread, thread.blocked_by_id)} who blocked this conversation "
                            "can unblock it.")
        await _change(tx, user, thread, "message.thread_unblocked", client_address, blocked_at=None,
                      blocked_by_id=None)
    return thread
