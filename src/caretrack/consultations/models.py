"""Video consultations: the call's state, in-call chat, the doctor's notes (PHI),
recordings (encrypted at rest) and single-use guest invitations."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Consultation(Model):
    """One appointment's call. Ended by the doctor: nobody joins an ended consultation."""

    appointment = fields.OneToOneField("caretrack.Appointment", related_name="consultation",
                                       on_delete=fields.CASCADE, primary_key=True)
    started_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    # The doctor's consultation notes, ciphertext only (crypto.seal).
    notes = fields.TextField(null=True)
    notes_updated_at = fields.DatetimeField(null=True)

    class Meta:
        table = "consultations"


class ChatMessage(Model):
    id = fields.IntField(primary_key=True)
    appointment = fields.ForeignKeyField("caretrack.Appointment", related_name="chat_messages",
                                         on_delete=fields.CASCADE)
    sender = fields.ForeignKeyField("caretrack.User", related_name="chat_messages", on_delete=fields.CASCADE)
    text = fields.TextField()  # ciphertext: in-call chat may carry clinical detail
    sent_at = fields.DatetimeField()

    class Meta:
        table = "consultation_chat"


class Recording(Model):
    """A recording's file, encrypted with the newest PHI key, stored under a generated name."""

    id = fields.IntField(primary_key=True)
    appointment = fields.ForeignKeyField("caretrack.Appointment", related_name="recordings",
                                         on_delete=fields.CASCADE)
    file_name = fields.CharField(max_length=80, unique=True)
    key_version = fields.IntField()
    size_bytes = fields.BigIntField()
    started_at = fields.DatetimeField()
    stopped_at = fields.DatetimeField()

    class Meta:
        table = "consultation_recordings"


class GuestRole(StrEnum):
    """Who a guest link is for (the doctor picks one)."""

    INTERPRETER = "interpreter"
    FAMILY = "family"
    CARER = "carer"
    CLINICIAN = "clinician"

    @property
    def label(self) -> str:
        return {"interpreter": "Interpreter", "family": "Family member", "carer": "Carer",
                "clinician": "Other clinician"}[self.value]


class GuestInvite(Model):
    """A single-use link a doctor gives to a guest without an account, whose seat in the call it then is.

    Redeemed signed out or signed in alike: the guest gives a display name and the browser
    that redeemed it holds the seat (a cookie whose hash is `seat_hash`); nobody else can.
    """

    id = fields.IntField(primary_key=True)
    appointment = fields.ForeignKeyField("caretrack.Appointment", related_name="guest_invites",
                                         on_delete=fields.CASCADE)
    appointment_id: int
    token_hash = fields.CharField(max_length=64, unique=True)
    role = fields.CharEnumField(GuestRole, max_length=16, default=GuestRole.INTERPRETER)
    label = fields.CharField(max_length=100)
    created_by = fields.ForeignKeyField("caretrack.User", related_name="guest_invites_made", on_delete=fields.CASCADE)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)
    # the signed-in user who redeemed it, if they were signed in (their account gains nothing)
    guest = fields.ForeignKeyField("caretrack.User", related_name="guest_seats", null=True, on_delete=fields.CASCADE)
    redeemed_at = fields.DatetimeField(null=True)
    display_name = fields.CharField(max_length=60, null=True)
    seat_hash = fields.CharField(max_length=64, unique=True, null=True)
    admitted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "consultation_guest_invites"


class Admission(Model):
    """The doctor let this user into the call: when they reconnect, on any server, they skip
    the waiting room."""

    id = fields.IntField(primary_key=True)
    appointment = fields.ForeignKeyField("caretrack.Appointment", related_name="admissions", on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("caretrack.User", related_name="call_admissions", on_delete=fields.CASCADE)
    admitted_by = fields.ForeignKeyField("caretrack.User", related_name="call_admissions_granted",
                                         on_delete=fields.CASCADE)
    admitted_at = fields.DatetimeField()

    class Meta:
        table = "consultation_admissions"
        unique_together = (("appointment", "user"),)
