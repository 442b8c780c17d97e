"""Skills, assessment templates (sections of questions), attempts and competencies."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class QuestionKind(StrEnum):
    SINGLE = "single"        # one right option, scores itself
    MULTIPLE = "multiple"    # a set of right options, scores itself by the question's Scoring
    TEXT = "text"            # free text, an assessor marks it
    PRACTICAL = "practical"  # an observed practical, the assessor marks and signs it off

    @property
    def self_scoring(self) -> bool:
        return self in (QuestionKind.SINGLE, QuestionKind.MULTIPLE)


class Scoring(StrEnum):
    """How a multiple-choice question scores, chosen by the admin and shown to the carer."""
    ALL_OR_NOTHING = "all_or_nothing"  # every right option and no wrong one, or nothing
    PARTIAL = "partial"  # each right option picked earns its share, each wrong pick loses one; never below 0

    @property
    def label(self) -> str:
        return "all or nothing" if self == Scoring.ALL_OR_NOTHING else "partial credit"


class AttemptStatus(StrEnum):
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"   # waiting for an assessor
    MARKED = "marked"


class DueStatus(StrEnum):
    """Where an attempt the carer still has to hand in stands against its due date (derived, not stored)."""
    UPCOMING = "upcoming"
    DUE_TODAY = "due_today"
    OVERDUE = "overdue"


class Skill(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100, unique=True)

    class Meta:
        table = "skills"


class AssessmentTemplate(Model):
    id = fields.IntField(primary_key=True)
    title = fields.CharField(max_length=150)
    skill = fields.ForeignKeyField("caretrack.Skill", related_name="templates", on_delete=fields.RESTRICT)
    pass_mark = fields.IntField()  # percent
    validity_days = fields.IntField()
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "assessment_templates"


class AssessmentSection(Model):
    id = fields.IntField(primary_key=True)
    template = fields.ForeignKeyField("caretrack.AssessmentTemplate", related_name="sections",
                                      on_delete=fields.CASCADE)
    title = fields.CharField(max_length=150)
    position = fields.IntField()

    class Meta:
        table = "assessment_sections"


class Question(Model):
    id = fields.IntField(primary_key=True)
    section = fields.ForeignKeyField("caretrack.AssessmentSection", related_name="questions",
                                     on_delete=fields.CASCADE)
    position = fields.IntField()
    kind = fields.CharEnumField(QuestionKind, max_length=12)
    prompt = fields.TextField()
    options = fields.JSONField(default=list)  # list[str] for choice questions
    correct = fields.JSONField(default=list)  # list[int] option indexes
    points = fields.IntField(default=1)
    # db_default: the rows of questions written before there was a choice score all or nothing.
    scoring = fields.CharEnumField(Scoring, max_length=16, default=Scoring.ALL_OR_NOTHING,
                                   db_default=Scoring.ALL_OR_NOTHING)

    class Meta:
        table = "assessment_questions"


class Attempt(Model):
    id = fields.IntField(primary_key=True)
    template = fields.ForeignKeyField("caretrack.AssessmentTemplate", related_name="attempts",
                                      on_delete=fields.RESTRICT)
    carer = fields.ForeignKeyField("caretrack.User", related_name="assessment_attempts", on_delete=fields.RESTRICT)
    assigned_by = fields.ForeignKeyField("caretrack.User", related_name="assigned_attempts", null=True,
                                         on_delete=fields.SET_NULL)
    reason = fields.CharField(max_length=16, default="assigned")  # assigned | renewal
    status = fields.CharEnumField(AttemptStatus, max_length=12, default=AttemptStatus.ASSIGNED)
    answers = fields.JSONField(default=dict)  # {question_id: int | list[int] | str}
    marks = fields.JSONField(default=dict)    # {question_id: {"points": int, "signed_off": bool, "comment": str}}
    score = fields.IntField(null=True)        # percent
    passed = fields.BooleanField(null=True)
    assigned_at = fields.DatetimeField(auto_now_add=True)
    due_on = fields.DateField(null=True)
    saved_at = fields.DatetimeField(null=True)
    submitted_at = fields.DatetimeField(null=True)
    marked_at = fields.DatetimeField(null=True)
    marked_by = fields.ForeignKeyField("caretrack.User", related_name="marked_attempts", null=True,
                                       on_delete=fields.SET_NULL)

    class Meta:
        table = "assessment_attempts"


# A carer's current standing in a skill: the latest passed attempt and when it lapses.
class Competency(Model):
    id = fields.IntField(primary_key=True)
    carer = fields.ForeignKeyField("caretrack.User", related_name="competencies", on_delete=fields.CASCADE)
    skill = fields.ForeignKeyField("caretrack.Skill", related_name="competencies", on_delete=fields.CASCADE)
    level = fields.IntField()  # the score (percent) of the attempt that certified it
    achieved_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    attempt = fields.ForeignKeyField("caretrack.Attempt", related_name="certified", null=True,
                                     on_delete=fields.SET_NULL)
    carer_id: int  # the key columns, for the type checker
    skill_id: int

    class Meta:
        table = "competencies"
        unique_together = (("carer", "skill"),)
