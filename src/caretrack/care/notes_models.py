"""Handover notes and incidents on care packages. Their text is PHI, sealed with
caretrack.core.crypto ("<table>.<column>"); every read that unseals it is audited."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from caretrack.accounts.models import User
    from caretrack.care.models import CarePackage, TaskCompletion


class IncidentKind(StrEnum):
    FALL = "fall"
    MEDICATION_ERROR = "medication_error"
    SAFEGUARDING = "safeguarding"
    INJURY = "injury"
    PROPERTY_DAMAGE = "property_damage"
    OTHER = "other"

    @property
    def label(self) -> str:
        return INCIDENT_LABELS[self]


INCIDENT_LABELS = {IncidentKind.FALL: "Fall", IncidentKind.MEDICATION_ERROR: "Medication error",
                   IncidentKind.SAFEGUARDING: "Safeguarding concern", IncidentKind.INJURY: "Injury",
                   IncidentKind.PROPERTY_DAMAGE: "Property damage", IncidentKind.OTHER: "Other"}


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class IncidentStatus(StrEnum):
    OPEN = "open"                  # raised, nobody in the office has taken it on yet
    ACKNOWLEDGED = "acknowledged"  # an admin has taken it on
    CLOSED = "closed"              # dealt with, with an outcome


class HandoverNote(Model):
    """A carer's handover note on a care package, for the office and or the next carer"""

    id = fields.IntField(primary_key=True)
    package: fields.ForeignKeyRelation[CarePackage] = fields.ForeignKeyField(
        "caretrack.CarePackage", related_name="handover_notes", on_delete=fields.CASCADE)
    author: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="handover_notes", on_delete=fields.RESTRICT)
    # A note written on its own holds its text here (PHI, sealed "handover_notes.body"); a note
    # logged with a completion is that completion's note (TaskCompletion.note), kept once.
    body = fields.TextField(null=True)
    completion: fields.OneToOneNullableRelation[TaskCompletion] = fields.OneToOneField(
        "caretrack.TaskCompletion", related_name="handover_note", null=True, on_delete=fields.CASCADE)
    for_office = fields.BooleanField(default=False)
    for_next_carer = fields.BooleanField(default=False)
    written_at = fields.DatetimeField(db_index=True)
    recorded_at = fields.DatetimeField(auto_now_add=True)

    package_id: int
    author_id: int
    completion_id: int | None

    class Meta:
        table = "care_handover_notes"


class Incident(Model):
    """An incident on a care package, raised by a carer or an admin and followed up by the office"""

    id = fields.IntField(primary_key=True)
    package: fields.ForeignKeyRelation[CarePackage] = fields.ForeignKeyField(
        "caretrack.CarePackage", related_name="incidents", on_delete=fields.CASCADE)
    raised_by: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="incidents_raised", on_delete=fields.RESTRICT)
    note: fields.ForeignKeyNullableRelation[HandoverNote] = fields.ForeignKeyField(
        "caretrack.HandoverNote", related_name="incidents", null=True,
        on_delete=fields.SET_NULL)  # the note it was raised from
    kind = fields.CharEnumField(IncidentKind, max_length=20)
    severity = fields.CharEnumField(Severity, max_length=8)
    # PHI, sealed ("care_incidents.<column>").
    what_happened = fields.TextField()
    action_taken = fields.TextField(null=True)
    occurred_at = fields.DatetimeField()
    raised_at = fields.DatetimeField(db_index=True)
    status = fields.CharEnumField(IncidentStatus, max_length=12, default=IncidentStatus.OPEN)
    acknowledged_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="incidents_acknowledged", null=True, on_delete=fields.RESTRICT)
    acknowledged_at = fields.DatetimeField(null=True)
    closed_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="incidents_closed", null=True, on_delete=fields.RESTRICT)
    closed_at = fields.DatetimeField(null=True)
    outcome = fields.TextField(null=True)  # PHI, sealed ("care_incidents.outcome")

    package_id: int
    raised_by_id: int
    note_id: int | None
    acknowledged_by_id: int | None
    closed_by_id: int | None

    class Meta:
        table = "care_incidents"
