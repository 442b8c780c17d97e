"""In-app messaging: threads between a patient and their doctor, or between a carer and the
office (every admin), their messages (bodies sealed at rest) and attachments."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class ThreadKind(StrEnum):
    CARE = "care"      # a patient and a doctor who have (or had) an appointment together
    OFFICE = "office"  # a carer and the office: every admin is a member


class Thread(Model):
    """One conversation. A care thread has its patient and doctor, an office thread its carer
    (the other side is every admin). Closed: nobody sends; blocked: `blocked_by`'s other side
    cannot send."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(ThreadKind, max_length=16)
    patient = fields.ForeignKeyField("caretrack.User", related_name="patient_threads", null=True,
                                     on_delete=fields.CASCADE)
    doctor = fields.ForeignKeyField("caretrack.User", related_name="doctor_threads", null=True,
                                    on_delete=fields.CASCADE)
    carer = fields.OneToOneField("caretrack.User", related_name="office_thread", null=True,
                                 on_delete=fields.CASCADE)
    created_at = fields.DatetimeField()
    last_message_at = fields.DatetimeField(db_index=True)
    closed_at = fields.DatetimeField(null=True)
    closed_by = fields.ForeignKeyField("caretrack.User", related_name="threads_closed", null=True,
                                       on_delete=fields.SET_NULL)
    blocked_at = fields.DatetimeField(null=True)
    blocked_by = fields.ForeignKeyField("caretrack.User", related_name="threads_blocked", null=True,
                                        on_delete=fields.SET_NULL)

    class Meta:
        table = "message_threads"
        unique_together = (("patient", "doctor"),)


class Message(Model):
    """A message to one user (`recipient`), or to the office when `recipient` is None. The
    body is ciphertext (crypto.seal, context `messages.body`). `read_at` is when the
    recipient side first opened the thread after it arrived."""

    id = fields.IntField(primary_key=True)
    thread = fields.ForeignKeyField("caretrack.Thread", related_name="messages", on_delete=fields.CASCADE)
    sender = fields.ForeignKeyField("caretrack.User", related_name="messages_sent", on_delete=fields.CASCADE)
    recipient = fields.ForeignKeyField("caretrack.User", related_name="messages_received", null=True,
                                       on_delete=fields.CASCADE)
    body = fields.TextField()
    sent_at = fields.DatetimeField(db_index=True)
    read_at = fields.DatetimeField(null=True)
    read_by = fields.ForeignKeyField("caretrack.User", related_name="messages_read", null=True,
                                     on_delete=fields.SET_NULL)

    class Meta:
        table = "messages"
        indexes = (("recipient_id", "read_at"),)


class Attachment(Model):
    """A file sent with a message (PDF, PNG or JPEG, checked by content), stored under a
    generated name in the data directory; the sender's file name is sealed (it may say what
    the file is about)."""

    id = fields.IntField(primary_key=True)
    message = fields.ForeignKeyField("caretrack.Message", related_name="attachments", on_delete=fields.CASCADE)
    file_name = fields.CharField(max_length=80, unique=True)
    original_name = fields.TextField()
    content_type = fields.CharField(max_length=40)
    size_bytes = fields.IntField()

    class Meta:
        table = "message_attachments"
