"""The visit summary: what the doctor writes for the patient after a consultation, apart
from the private notes (`Consultation.notes`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from caretrack.booking.models import Appointment


class VisitSummary(Model):
    """A consultation's summary, written by the doctor for the patient.

    A draft the doctor works on and the text the patient reads once published, both sealed
    (crypto.seal)."""

    appointment: fields.OneToOneRelation[Appointment] = fields.OneToOneField(
        "caretrack.Appointment", related_name="visit_summary", on_delete=fields.CASCADE, primary_key=True)
    appointment_id: int
    # Ciphertext ("consultation_summaries.draft"): the doctor's working text, never shown to the patient.
    draft = fields.TextField()
    draft_saved_at = fields.DatetimeField()
    # Ciphertext ("consultation_summaries.text"): the published text the patient reads.
    text = fields.TextField(null=True)
    published_at = fields.DatetimeField(null=True)  # the first publication
    updated_at = fields.DatetimeField(null=True)  # the latest publication, when there was more than one
    version = fields.IntField(default=0)  # how many times it was published

    class Meta:
        table = "consultation_summaries"
