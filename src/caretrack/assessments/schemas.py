"""JSON shapes of the assessments API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from caretrack.assessments.models import Attempt
from caretrack.core.validation import Count, Id, check_date, domain_rule, id_from_text, refuse


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


class QuestionIn(Strict):
    kind: Literal["single", "multiple", "text", "practical"]
    prompt: str = Field(max_length=2000)
    options: list[str] = Field(default_factory=list, max_length=10)
    correct: list[Count] = Field(default_factory=list, description="0-based indexes of the right options")
    points: int = Field(1, ge=1, le=100)


class SectionIn(Strict):
    title: str = Field(max_length=150)
    questions: list[QuestionIn] = Field(default_factory=list, max_length=100)


class TemplateIn(Strict):
    title: str = Field(max_length=150)
    skill: str = Field(max_length=100, description="The competency it certifies (created if new)")
    pass_mark: int = Field(ge=1, le=100, description="Percent")
    validity_days: int = Field(ge=1, le=3650)
    sections: list[SectionIn] = Field(default_factory=list, max_length=50)


class QuestionOut(BaseModel):
    id: int
    kind: str
    prompt: str
    options: list[str]
    points: int


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
                       QuestionOut(id=q.id, kind=str(q.kind), prompt=q.prompt, options=q.options, points=q.points)
                       for q in qs]) for s, qs in view.sections])


class AssignIn(Strict):
    carer_id: CarerId
    due_on: Annotated[date | None, BeforeValidator(_due_on)] = None


class AnswersIn(Strict):
    answers: dict[str, Any] = Field(description="question id -> option index (single), list of indexes "
                                                "(multiple) or text")
    submit: bool = False


class MarkIn(Strict):
    points: Count
    signed_off: bool = False
    comment: str | None = Field(None, max_length=1000)


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
    assigned_at: datetime
    submitted_at: datetime | None

    @classmethod
    def of(cls, a: Attempt) -> AttemptOut:
        return cls(id=a.id, template_id=a.template_id, title=a.template.title, skill=a.template.skill.name,
                   carer_id=a.carer_id, status=str(a.status), reason=a.reason, answers=a.answers, score=a.score,
                   passed=a.passed, due_on=a.due_on, assigned_at=a.assigned_at, submitted_at=a.submitted_at)


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
