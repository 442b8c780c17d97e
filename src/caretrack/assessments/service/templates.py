"""Assessment templates: sections and questions, editable until a carer starts one. Choice
questions score themselves; free-text and practical ones wait for an assessor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from caretrack.accounts.models import User
from caretrack.assessments.models import (
    AssessmentSection,
    AssessmentTemplate,
    Attempt,
    AttemptStatus,
    Question,
    QuestionKind,
    Skill,
)
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.transaction import atomic
from caretrack.core.validation import check_text


def _int(value: Any, what: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"The {what} '{str(value)[:20]}' is not a whole number.") from None
    if not low <= number <= high:
        raise ValidationError(f"The {what} must be between {low} and {high}, not {number}.")
    return number


async def do_create_template(admin: User, data: dict[str, Any], client_address: str | None) -> AssessmentTemplate:
    title = check_text(data.get("title"), "title", max_length=150)
    skill_name = check_text(data.get("skill"), "skill", max_length=100)
    pass_mark = _int(data.get("pass_mark"), "pass mark", 1, 100)
    validity = _int(data.get("validity_days"), "validity period in days", 1, 3650)
    async with atomic() as tx:
        skill = await Skill.filter(name=skill_name).using_db(tx.conn).first()
        if skill is None:
            skill = await Skill.create(using_db=tx.conn, name=skill_name)
        template = await AssessmentTemplate.create(using_db=tx.conn, title=title, skill_id=skill.id,
                                                   pass_mark=pass_mark, validity_days=validity)
        await tx.audit(Actor(admin.id, client_address), "assessment.template_created", "assessment_template",
                       template.id, skill=skill.name)
    return template


async def get_template(template_id: int) -> AssessmentTemplate:
    template = await AssessmentTemplate.get_or_none(id=template_id).prefetch_related("skill")
    if template is None:
        raise NotFound(f"No assessment template with id {template_id}.")
    return template


async def _editable(template_id: int) -> AssessmentTemplate:
    template = await get_template(template_id)
    if await Attempt.exists(template_id=template.id, status__not=AttemptStatus.ASSIGNED):
        raise Conflict("Carers have started this assessment; create a new template instead of changing it.")
    return template


async def do_add_section(admin: User, template_id: int, title: Any, client_address: str | None) -> AssessmentSection:
    template = await _editable(template_id)
    title = check_text(title, "section title", max_length=150)
    async with atomic() as tx:
        position = await AssessmentSection.filter(template_id=template.id).using_db(tx.conn).count() + 1
        section = await AssessmentSection.create(using_db=tx.conn, template_id=template.id, title=title,
                                                 position=position)
        await tx.audit(Actor(admin.id, client_address), "assessment.section_added", "assessment_template",
                       template.id, section_id=section.id)
    return section


def check_question(data: dict[str, Any]) -> dict[str, Any]:
    try:
        kind = QuestionKind(str(data.get("kind")))
    except ValueError:
        raise ValidationError(
            f"The question type '{str(data.get('kind'))[:20]}' is not one of: single, multiple, text, practical."
        ) from None
    prompt = check_text(data.get("prompt"), "question", max_length=2000)
    points = _int(data.get("points", 1), "points", 1, 100)
    options: list[str] = []
    correct: list[int] = []
    if kind.self_scoring:
        options = [str(o).strip() for o in data.get("options") or [] if str(o).strip()]
        if not 2 <= len(options) <= 10:
            raise ValidationError("A choice question needs between 2 and 10 options.")
        if any(len(o) > 300 for o in options):
            raise ValidationError("An option is longer than 300 characters.")
        try:
            correct = sorted({int(i) for i in data.get("correct") or []})
        except (TypeError, ValueError):
            raise ValidationError("The right answers must be option numbers.") from None
        if not correct or any(not 0 <= i < len(options) for i in correct):
            raise ValidationError(f"Mark at least one right answer among the {len(options)} options.")
        if kind == QuestionKind.SINGLE and len(correct) != 1:
            raise ValidationError("A single-choice question has exactly one right answer.")
    return {"kind": kind, "prompt": prompt, "points": points, "options": options, "correct": correct}


async def do_add_question(admin: User, section_id: int, data: dict[str, Any], client_address: str | None) -> Question:
    section = await AssessmentSection.get_or_none(id=section_id)
    if section is None:
        raise NotFound(f"No assessment section with id {section_id}.")
    await _editable(section.template_id)
    values = check_question(data)
    async with atomic() as tx:
        position = await Question.filter(section_id=section.id).using_db(tx.conn).count() + 1
        question = await Question.create(using_db=tx.conn, section_id=section.id, position=position, **values)
        await tx.audit(Actor(admin.id, client_address), "assessment.question_added", "assessment_template",
                       section.template_id, question_id=question.id)
    return question


@dataclass
class TemplateView:
    template: AssessmentTemplate
    sections: list[tuple[AssessmentSection, list[Question]]]

    @property
    def questions(self) -> list[Question]:
        return [q for _, qs in self.sections for q in qs]

    @property
    def total_points(self) -> int:
        return sum(q.points for q in self.questions)


async def template_view(template_id: int) -> TemplateView:
    template = await get_template(template_id)
    sections = list(await AssessmentSection.filter(template_id=template.id).order_by("position"))
    questions = list(await Question.filter(section__template_id=template.id).order_by("position", "id"))
    return TemplateView(template, [(s, [q for q in questions if q.section_id == s.id]) for s in sections])


async def list_templates() -> list[AssessmentTemplate]:
    return list(await AssessmentTemplate.all().prefetch_related("skill").order_by("-id"))
