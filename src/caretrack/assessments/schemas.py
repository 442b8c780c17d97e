"""Typed commands and views of assessments: one command per action, parsed once at the edge by
the API (JSON) and the page (form) alike, and handed to the service as it is. The rules that
need the template (an answer's range, a mark's maximum) stay in the service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from caretrack.assessments.models import Attempt, DueStatus, QuestionKind, Scoring
from caretrack.core.errors import ValidationError
from caretrack.core.validation import (
    INT32_MAX,
    Count,
    Id,
    check_date,
    domain_rule,
    id_from_text,
    refuse,
    text_field,
    whole_number,
)


@domain_rule
def _carer_id(value: Any) -> Any:
    """A carer named by a form (text) or a body (a number): blank is 'choose one'."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise refuse("missing", "Choose a carer.")
    if isinstance(value, str) and "\x00" not in value:  # NUL is refused by the edge, field by field
        return id_from_text(value.strip(), "carer_id")
    return value


@domain_rule
def _due_on(value: Any) -> Any:
    if value is None or (isinstance(value, str) and "\x00" not in value):
        return check_date(value, "due date", required=False)
    return value


CarerId = Annotated[Id, BeforeValidator(_carer_id)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


KINDS = ", ".join(k.value for k in QuestionKind)


@domain_rule
def _kind(value: Any) -> Any:
    if isinstance(value, str) and "\x00" not in value and value not in {k.value for k in QuestionKind}:
        raise ValidationError(f"The question type '{value[:20]}' is not one of: {KINDS}.")
    return value


SCORINGS = ", ".join(s.value for s in Scoring)


@domain_rule
def _scoring_name(value: Any) -> Any:
    if isinstance(value, str) and "\x00" not in value and value not in {s.value for s in Scoring}:
        raise ValidationError(f"The scoring rule '{value[:20]}' is not one of: {SCORINGS}.")
    return value


def _self_scoring(info: ValidationInfo) -> bool | None:
    kind = info.data.get("kind")
    return None if kind is None else QuestionKind(kind).self_scoring


def _options(value: list[str], info: ValidationInfo) -> list[str]:
    # Blank options are dropped; only choice questions have options.
    options = [o.strip() for o in value if o.strip()]
    scoring = _self_scoring(info)
    if scoring is False:
        return []
    if scoring and not 2 <= len(options) <= 10:
        raise refuse("invalid", "A choice question needs between 2 and 10 options.")
    if any(len(o) > 300 for o in options):
        raise refuse("invalid", "An option is longer than 300 characters.")
    return options


def _correct(value: list[int], info: ValidationInfo) -> list[int]:
    correct = sorted(set(value))
    scoring, options = _self_scoring(info), info.data.get("options")
    if not scoring or options is None:
        return [] if scoring is False else correct
    if not correct or any(not 0 <= i < len(options) for i in correct):
        raise refuse("invalid", f"Mark at least one right answer among the {len(options)} options.")
    if info.data["kind"] == QuestionKind.SINGLE and len(correct) != 1:
        raise refuse("invalid", "A single-choice question has exactly one right answer.")
    return correct


def _scoring(value: str, info: ValidationInfo) -> str:
    # Only multiple choice has a choice of rule; any other question is right or wrong as a whole.
    return value if info.data.get("kind") == QuestionKind.MULTIPLE else Scoring.ALL_OR_NOTHING.value


SCORING_TEXT = ("Multiple choice only: all_or_nothing (every right option and no wrong one earns the points) or "
                "partial (each right option picked earns its share, each wrong pick loses one, never below 0)")


# Add a question to a section. Choice questions (single, multiple) need options and their right
# answers; the others are marked by an assessor and keep neither.
class QuestionIn(Strict):
    kind: Annotated[Literal["single", "multiple", "text", "practical"], BeforeValidator(_kind)]
    prompt: Annotated[str, text_field("question", 2000)] = Field(max_length=2000)
    options: Annotated[list[str], AfterValidator(_options)] = Field(default_factory=list, max_length=10,
                                                                     validate_default=True)
    correct: Annotated[list[Count], AfterValidator(_correct)] = Field(
        default_factory=list, description="0-based indexes of the right options", validate_default=True)
    points: Annotated[int, whole_number("points", 1, 100)] = Field(1, ge=1, le=100)
    scoring: Annotated[Literal["all_or_nothing", "partial"], BeforeValidator(_scoring_name),
                       AfterValidator(_scoring)] = Field("all_or_nothing", description=SCORING_TEXT,
                                                         validate_default=True)


# Add a section (with its questions) to a template.
class SectionIn(Strict):
    title: Annotated[str, text_field("section title", 150)] = Field(max_length=150)
    questions: list[QuestionIn] = Field(default_factory=list, max_length=100)


# Create a template with its sections and questions; the skill is created if new.
class TemplateIn(Strict):
    title: Annotated[str, text_field("title", 150)] = Field(max_length=150)
    skill: Annotated[str, text_field("skill", 100)] = Field(
        max_length=100, description="The competency it certifies (created if new)")
    pass_mark: Annotated[int, whole_number("pass mark", 1, 100)] = Field(ge=1, le=100, description="Percent")
    validity_days: Annotated[int, whole_number("validity period in days", 1, 3650)] = Field(ge=1, le=3650)
    sections: list[SectionIn] = Field(default_factory=list, max_length=50)


class QuestionOut(BaseModel):
    id: int
    kind: str
    prompt: str
    options: list[str]
    points: int
    scoring: Scoring


class SectionOut(BaseModel):
    id: int
    title: str
    questions: list[QuestionOut]


class TemplateOut(BaseModel):
    id: int
    title: str
    skill: str
    pass_mark: int
    validity_days: int
    sections: list[SectionOut]

    @classmethod
    def of(cls, view) -> TemplateOut:
        t = view.template
        return cls(id=t.id, title=t.title, skill=t.skill.name, pass_mark=t.pass_mark, validity_days=t.validity_days,
                   sections=[SectionOut(id=s.id, title=s.title, questions=[
                       QuestionOut(id=q.id, kind=str(q.kind), prompt=q.prompt, options=q.options, points=q.points,
                                   scoring=q.scoring)
                       for q in qs]) for s, qs in view.sections])


class AssignIn(Strict):
    carer_id: CarerId
    due_on: Annotated[date | None, BeforeValidator(_due_on)] = None


class AnswersIn(Strict):
    answers: dict[str, Any] = Field(description="question id -> option index (single), list of indexes "
                                                "(multiple) or text")
    submit: bool = False


class MarkIn(Strict):
    points: Annotated[Count, whole_number("mark", 0, INT32_MAX)]
    signed_off: bool = False
    comment: Annotated[str | None, text_field("comment", 1000, required=False)] = Field(None, max_length=1000)


class MarksIn(Strict):
    marks: dict[str, MarkIn]


class AttemptOut(BaseModel):
    id: int
    template_id: int
    title: str
    skill: str
    carer_id: int
    status: str
    reason: str
    answers: dict[str, Any]
    score: int | None
    passed: bool | None
    due_on: date | None
    due_status: DueStatus | None = Field(
        description="Against the due date, while the carer has it to hand in (null once handed in or "
                    "without a due date)")
    assigned_at: datetime
    submitted_at: datetime | None

    @classmethod
    def of(cls, a: Attempt, due_status: DueStatus | None) -> AttemptOut:
        return cls(id=a.id, template_id=a.template_id, title=a.template.title, skill=a.template.skill.name,
                   carer_id=a.carer_id, status=str(a.status), reason=a.reason, answers=a.answers, score=a.score,
                   passed=a.passed, due_on=a.due_on, due_status=due_status,
                   assigned_at=a.assigned_at, submitted_at=a.submitted_at)


class AttemptList(BaseModel):
    attempts: list[AttemptOut]


class MatrixQuery(Strict):
    skill_id: Id | None = None
    status: Literal["competent", "due", "expired", "not_assessed"] | None = None
    q: str | None = Field(None, max_length=100)


class MatrixCell(BaseModel):
    skill_id: int
    status: str
    level: int | None
    expires_at: datetime | None


class MatrixRow(BaseModel):
    carer_id: int
    carer_name: str
    cells: list[MatrixCell]


class SkillOut(BaseModel):
    id: int
    name: str


class MatrixOut(BaseModel):
    skills: list[SkillOut]
    rows: list[MatrixRow]
