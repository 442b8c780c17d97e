"""In-app messaging: threads between a patient and their doctor, or between a carer and the
office (every admin), their messages (bodies sealed at rest) and attachments."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from caretrack.accounts.models import User


class ThreadKind(StrEnum):
    CARE = "care"      # a patient and a doctor who have (or had) an appointment together
    OFFICE = "office"  # a carer and the office: every admin is a member


class Thread(Model):
    """One conversation. A care thread has its patient and doctor, an office thread its carer
    (the other side is every admin). Closed: nobody sends; blocked: `blocked_by`'s other side
    cannot send."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(ThreadKind, max_length=16)
    patient: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="patient_threads", null=True, on_delete=fields.CASCADE)
    doctor: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="doctor_threads", null=True, on_delete=fields.CASCADE)
    carer: fields.OneToOneNullableRelation[User] = fields.OneToOneField(
        "caretrack.User", related_name="office_thread", null=True, on_delete=fields.CASCADE)
    created_at = fields.DatetimeField()
    last_message_at = fields.DatetimeField(db_index=True)
    closed_at = fields.DatetimeField(null=True)
    closed_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="threads_closed", null=True, on_delete=fields.SET_NULL)
    blocked_at = fields.DatetimeField(null=True)
    blocked_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="threads_blocked", null=True, on_delete=fields.SET_NULL)

    patient_id: int | None
    doctor_id: int | None
    carer_id: int | None
    closed_by_id: int | None
    blocked_by_id: int | None

    class Meta:
        table = "message_threads"
        unique_together = (("patient", "doctor"),)


class Message(Model):
    """A message to one user (`recipient`), or to the office when `recipient` is None. The
    body is ciphertext (crypto.seal, context `messages.body`). `read_at` is when the
    recipient side first opened the thread after it arrived."""

    id = fields.IntField(primary_key=True)
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "caretrack.Thread", related_name="messages", on_delete=fields.CASCADE)
    sender: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="messages_sent", on_delete=fields.CASCADE)
    recipient: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="messages_received", null=True, on_delete=fields.CASCADE)
    body = fields.TextField()
    sent_at = fields.DatetimeField(db_index=True)
    read_at = fields.DatetimeField(null=True)
    read_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="messages_read", null=True, on_delete=fields.SET_NULL)

    thread_id: int
    sender_id: int
    recipient_id: int | None
    read_by_id: int | None

    class Meta:
        table = "messages"
        indexes = (("recipient_id", "read_at"),)


class Attachment(Model):
    """A file sent with a message (PDF, PNG or JPEG, checked by content), stored under a
    generated name in the data directory; the sender's file name is sealed (it may say what
    the file is about)."""

    id = fields.IntField(primary_key=True)
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "caretrack.Message", related_name="attachments", on_delete=fields.CASCADE)
    file_name = fields.CharField(max_length=80, unique=True)
    original_name = fields.TextField()
    content_type = fields.CharField(max_length=40)
    size_bytes = fields.IntField()

    message_id: int

    class Meta:
        table = "message_attachments"
