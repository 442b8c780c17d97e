"""Assessment templates: sections and questions, editable until a carer starts one. Choice
questions score themselves (multiple choice all or nothing, or with partial credit, as the admin
chooses); free-text and practical ones wait for an assessor. The actions take
the commands of caretrack.assessments.schemas, already checked."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from caretrack.accounts.models import User
from caretrack.assessments.models import (
    AssessmentSection,
    AssessmentTemplate,
    Attempt,
    AttemptStatus,
    Question,
    QuestionKind,
    Scoring,
    Skill,
)
from caretrack.assessments.schemas import QuestionIn, SectionIn, TemplateIn
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, NotFound
from caretrack.core.transaction import Tx, atomic


async def do_create_template(admin: User, command: TemplateIn, client_address: str | None) -> AssessmentTemplate:
    """A template with its sections and questions, in one transaction."""
    actor = Actor(admin.id, client_address)
    async with atomic() as tx:
        skill = await Skill.filter(name=command.skill).using_db(tx.conn).first()
        if skill is None:
            skill = await Skill.create(using_db=tx.conn, name=command.skill)
        template = await AssessmentTemplate.create(using_db=tx.conn, title=command.title, skill_id=skill.id,
                                                   pass_mark=command.pass_mark, validity_days=command.validity_days)
        await tx.audit(actor, "assessment.template_created", "assessment_template", template.id, skill=skill.name)
        for section in command.sections:
            await _add_section(tx, actor, template.id, section)
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


async def do_add_section(admin: User, template_id: int, command: SectionIn,
                         client_address: str | None) -> AssessmentSection:
    template = await _editable(template_id)
    async with atomic() as tx:
        return await _add_section(tx, Actor(admin.id, client_address), template.id, command)


async def _add_section(tx: Tx, actor: Actor, template_id: int, command: SectionIn) -> AssessmentSection:
    position = await AssessmentSection.filter(template_id=template_id).using_db(tx.conn).count() + 1
    section = await AssessmentSection.create(using_db=tx.conn, template_id=template_id, title=command.title,
                                             position=position)
    await tx.audit(actor, "assessment.section_added", "assessment_template", template_id, section_id=section.id)
    for question in command.questions:
        await _add_question(tx, actor, section, question)
    return section


async def do_add_question(admin: User, section_id: int, command: QuestionIn, client_address: str | None) -> Question:
    section = await AssessmentSection.get_or_none(id=section_id)
    if section is None:
        raise NotFound(f"No assessment section with id {section_id}.")
    await _editable(section.template_id)
    async with atomic() as tx:
        return await _add_question(tx, Actor(admin.id, client_address), section, command)


async def _add_question(tx: Tx, actor: Actor, section: AssessmentSection, command: QuestionIn) -> Question:
    position = await Question.filter(section_id=section.id).using_db(tx.conn).count() + 1
    question = await Question.create(using_db=tx.conn, section_id=section.id, position=position,
                                     kind=QuestionKind(command.kind), prompt=command.prompt, points=command.points,
                                     options=command.options, correct=command.correct,
                                     scoring=Scoring(command.scoring))
    await tx.audit(actor, "assessment.question_added", "assessment_template", section.template_id,
                   question_id=question.id)
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

    @cached_property
    def _numbers(self) -> dict[int, int]:
        return {q.id: n for n, q in enumerate(self.questions, start=1)}

    def number(self, question: Question) -> int:
        """The question's number in the whole assessment (1, 2, ... across its sections), as the
        pages show it; `position` counts within a section only."""
        return self._numbers[question.id]

    def first_number(self, section: AssessmentSection) -> int:
        """The number of a section's first question (for an <ol start>)."""
        return 1 + sum(len(qs) for s, qs in self.sections if s.position < section.position)


async def template_view(template_id: int) -> TemplateView:
    template = await get_template(template_id)
    sections = list(await AssessmentSection.filter(template_id=template.id).order_by("position"))
    questions = list(await Question.filter(section__template_id=template.id).order_by("position", "id"))
    return TemplateView(template, [(s, [q for q in questions if q.section_id == s.id]) for s in sections])


async def list_templates() -> list[AssessmentTemplate]:
    return list(await AssessmentTemplate.all().prefetch_related("skill").order_by("-id"))
