"""Intake before a visit: a doctor's consultation types, each with an ordered questionnaire
and consent documents (versioned), and what a patient answered and signed for one
appointment (sealed)."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from caretrack.accounts.models import User

# Appointment is booking's, a floor above: named by its string, typed as a plain Model.


class QuestionKind(StrEnum):
    SHORT_TEXT = "short_text"
    LONG_TEXT = "long_text"
    YES_NO = "yes_no"
    CHOICE = "choice"  # exactly one of `choices`


class ConsultationType(Model):
    """A kind of consultation a doctor offers, chosen by patients booking that doctor.

    Archived types are kept (appointments name them) but no longer offered."""

    id = fields.IntField(primary_key=True)
    doctor: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="consultation_types", on_delete=fields.CASCADE)
    doctor_id: int
    name = fields.CharField(max_length=100)
    description = fields.TextField(default="")
    archived = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "consultation_types"


class IntakeQuestion(Model):
    """One question of a type's intake questionnaire, asked in `position` order."""

    id = fields.IntField(primary_key=True)
    consultation_type: fields.ForeignKeyRelation[ConsultationType] = fields.ForeignKeyField(
        "caretrack.ConsultationType", related_name="questions", on_delete=fields.CASCADE)
    consultation_type_id: int
    position = fields.IntField(default=0)
    kind = fields.CharEnumField(QuestionKind, max_length=16)
    prompt = fields.CharField(max_length=300)
    required = fields.BooleanField(default=True)
    max_length = fields.IntField(null=True)  # text questions: the longest answer accepted
    choices: fields.JSONField[list[str]] = fields.JSONField(default=list)  # choice questions: the options, in order

    class Meta:
        table = "intake_questions"


class ConsentDocument(Model):
    """A consent document of a consultation type, worded by its versions.

    The newest version is `version`. A retired document is no longer asked for, and its
    signatures remain."""

    id = fields.IntField(primary_key=True)
    consultation_type: fields.ForeignKeyRelation[ConsultationType] = fields.ForeignKeyField(
        "caretrack.ConsultationType", related_name="consents", on_delete=fields.CASCADE)
    consultation_type_id: int
    position = fields.IntField(default=0)
    version = fields.IntField(default=1)
    retired = fields.BooleanField(default=False)

    class Meta:
        table = "consent_documents"


class ConsentVersion(Model):
    """One wording of a consent document, never changed once written."""

    id = fields.IntField(primary_key=True)
    document: fields.ForeignKeyRelation[ConsentDocument] = fields.ForeignKeyField(
        "caretrack.ConsentDocument", related_name="versions", on_delete=fields.CASCADE)
    document_id: int
    version = fields.IntField()
    title = fields.CharField(max_length=150)
    text = fields.TextField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "consent_versions"
        unique_together = (("document", "version"),)


class IntakeResponse(Model):
    """The patient's intake answers for one appointment, sealed.

    A JSON list of {question, prompt, kind, answer}, so later edits of the questionnaire
    do not change what was answered."""

    appointment: fields.OneToOneRelation[Model] = fields.OneToOneField(
        "caretrack.Appointment", related_name="intake", on_delete=fields.CASCADE, primary_key=True)
    appointment_id: int
    consultation_type: fields.ForeignKeyRelation[ConsultationType] = fields.ForeignKeyField(
        "caretrack.ConsultationType", related_name="responses", on_delete=fields.RESTRICT)
    consultation_type_id: int
    answers = fields.TextField()  # ciphertext (crypto.seal)
    submitted_at = fields.DatetimeField()

    class Meta:
        table = "intake_responses"


class ConsentSignature(Model):
    """The patient signed one version of a consent document for one appointment.

    They ticked that they agree and typed their full name (sealed)."""

    id = fields.IntField(primary_key=True)
    appointment: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "caretrack.Appointment", related_name="consent_signatures", on_delete=fields.CASCADE)
    appointment_id: int
    consent_version: fields.ForeignKeyRelation[ConsentVersion] = fields.ForeignKeyField(
        "caretrack.ConsentVersion", related_name="signatures", on_delete=fields.RESTRICT)
    consent_version_id: int
    signed_name = fields.TextField()  # ciphertext (crypto.seal)
    signed_by: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="consent_signatures", on_delete=fields.CASCADE)
    signed_by_id: int
    signed_at = fields.DatetimeField()

    class Meta:
        table = "consent_signatures"
        unique_together = (("appointment", "consent_version"),)
