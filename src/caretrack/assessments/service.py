"""Assessment templates, attempts, marking and competencies. Choice questions score
themselves; free-text and practical ones wait for an assessor. A pass certifies the
template's skill for its validity period; a competency within 30 days of lapsing is due and
its carer is assigned a renewal (by the periodic check in the lifespan, and on read)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from caretrack.accounts.models import User
from caretrack.assessments.models import (
    AssessmentSection,
    AssessmentTemplate,
    Attempt,
    AttemptStatus,
    Competency,
    Question,
    QuestionKind,
    Skill,
)
from caretrack.care.service import check_text
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic

DUE_WINDOW = timedelta(days=30)
OPEN = (AttemptStatus.ASSIGNED, AttemptStatus.IN_PROGRESS, AttemptStatus.SUBMITTED)


def now() -> datetime:
    return datetime.now(UTC)


class Standing(StrEnum):
    COMPETENT = "competent"
    DUE = "due"
    EXPIRED = "expired"
    NOT_ASSESSED = "not_assessed"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


def standing(competency: Competency | None, at: datetime | None = None) -> Standing:
    at = at or now()
    if competency is None:
        return Standing.NOT_ASSESSED
    if competency.expires_at <= at:
        return Standing.EXPIRED
    if competency.expires_at <= at + DUE_WINDOW:
        return Standing.DUE
    return Standing.COMPETENT


def _int(value: Any, what: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"The {what} '{str(value)[:20]}' is not a whole number.") from None
    if not low <= number <= high:
        raise ValidationError(f"The {what} must be between {low} and {high}, not {number}.")
    return number


# --- templates -------------------------------------------------------------------------------


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


# --- attempts --------------------------------------------------------------------------------


async def do_assign(admin: User | None, template_id: int, carer_id: Any, due_on: Any = None, *,
                    reason: str = "assigned", client_address: str | None = None) -> Attempt:
    from caretrack.care.service import check_carer, check_date

    template = await get_template(template_id)
    view = await template_view(template.id)
    if not view.questions:
        raise ValidationError("This assessment has no questions yet; add some before assigning it.")
    carer = await check_carer(carer_id)
    due = check_date(due_on, "due date", required=False)
    if await Attempt.exists(template_id=template.id, carer_id=carer.id, status__in=list(OPEN)):
        raise Conflict(f"{carer.full_name} already has “{template.title}” to complete.")
    async with atomic() as tx:
        attempt = await Attempt.create(using_db=tx.conn, template_id=template.id, carer_id=carer.id,
                                       assigned_by_id=admin.id if admin else None, reason=reason, due_on=due)
        await tx.audit(Actor(admin.id if admin else None, client_address), "assessment.assigned", "assessment_attempt",
                       attempt.id, carer_id=carer.id, reason=reason)
        await tx.emit("assessment.assigned", actor_id=admin.id if admin else None,
                      subject=("assessment_attempt", attempt.id),
                      data={"attempt_id": attempt.id, "title": template.title, "reason": reason,
                            "due_on": due.isoformat() if due else None}, users=[carer.id])
    return attempt


async def get_attempt(viewer: User, attempt_id: int) -> Attempt:
    attempt = await Attempt.get_or_none(id=attempt_id).prefetch_related("template", "template__skill", "carer")
    if attempt is None or (viewer.role != Role.ADMIN and attempt.carer_id != viewer.id):
        raise NotFound(f"No assessment with id {attempt_id}.")
    return attempt


def check_answers(view: TemplateView, answers: dict[str, Any]) -> dict[str, Any]:
    """Keep answers to this template's questions, shaped as each type needs."""
    by_id = {str(q.id): q for q in view.questions}
    clean: dict[str, Any] = {}
    for key, value in answers.items():
        question = by_id.get(str(key))
        if question is None:
            raise ValidationError(f"Question {str(key)[:20]} is not part of this assessment.")
        if value in (None, "", []):
            continue
        if question.kind == QuestionKind.SINGLE:
            index = _int(value[0] if isinstance(value, list) and len(value) == 1 else value,
                         f"answer to question {key}", 0, len(question.options) - 1)
            clean[str(key)] = index
        elif question.kind == QuestionKind.MULTIPLE:
            values = value if isinstance(value, list) else [value]
            clean[str(key)] = sorted({_int(v, f"answer to question {key}", 0, len(question.options) - 1)
                                      for v in values})
        else:
            clean[str(key)] = check_text(value, f"answer to question {key}", max_length=5000)
    return clean


async def do_save_answers(carer: User, attempt_id: int, answers: dict[str, Any], *, submit: bool = False,
                          client_address: str | None = None, at: datetime | None = None) -> Attempt:
    """Save progress (answers merge into what was saved before); with `submit`, hand it in:
    choice questions are scored now, anything else waits for the assessor."""
    at = at or now()
    attempt = await get_attempt(carer, attempt_id)
    if attempt.carer_id != carer.id:
        raise NotFound(f"No assessment with id {attempt_id}.")
    if attempt.status not in (AttemptStatus.ASSIGNED, AttemptStatus.IN_PROGRESS):
        raise Conflict("This assessment has been handed in; it cannot be changed.")
    view = await template_view(attempt.template_id)
    merged = {**attempt.answers, **check_answers(view, answers)}
    for key in [k for k, v in answers.items() if v in (None, "", [])]:
        merged.pop(str(key), None)
    if submit:
        missing = [q.position for q in view.questions if str(q.id) not in merged]
        if missing:
            raise ValidationError(f"Answer every question before handing in ({len(missing)} unanswered).")
    async with atomic() as tx:
        changes: dict[str, Any] = {"answers": merged, "saved_at": at, "status": AttemptStatus.IN_PROGRESS}
        if submit:
            changes.update(status=AttemptStatus.SUBMITTED, submitted_at=at)
        updated = await Attempt.filter(id=attempt.id, status__in=[AttemptStatus.ASSIGNED, AttemptStatus.IN_PROGRESS]
                                       ).using_db(tx.conn).update(**changes)
        if not updated:
            raise Conflict("This assessment has been handed in; it cannot be changed.")
        await attempt.refresh_from_db(using_db=tx.conn)
        if submit:
            await tx.audit(Actor(carer.id, client_address), "assessment.submitted", "assessment_attempt", attempt.id)
            if all(q.kind.self_scoring for q in view.questions):
                await _finish(tx, attempt, view, carer, None, at)
            else:
                await tx.emit("assessment.submitted", actor_id=carer.id, subject=("assessment_attempt", attempt.id),
                              data={"attempt_id": attempt.id, "title": view.template.title,
                                    "carer_name": carer.full_name}, roles=[Role.ADMIN])
    return await get_attempt(carer, attempt.id)


def auto_points(question: Question, answer: Any) -> int:
    if question.kind == QuestionKind.SINGLE:
        return question.points if [answer] == question.correct else 0
    if question.kind == QuestionKind.MULTIPLE:
        return question.points if sorted(answer or []) == question.correct else 0
    raise ValueError("not a self-scoring question")


async def do_mark(assessor: User, attempt_id: int, marks: dict[str, Any], client_address: str | None,
                  at: datetime | None = None) -> Attempt:
    """The assessor's marks for the free-text and practical questions; a practical earns
    points only with the assessor's sign-off. Marking every such question finishes it."""
    attempt = await get_attempt(assessor, attempt_id)
    if attempt.status != AttemptStatus.SUBMITTED:
        raise Conflict(f"This assessment is {attempt.status.value.replace('_', ' ')}, not waiting for marking.")
    view = await template_view(attempt.template_id)
    manual = [q for q in view.questions if not q.kind.self_scoring]
    clean: dict[str, Any] = {}
    for question in manual:
        mark = marks.get(str(question.id))
        if not isinstance(mark, dict) or mark.get("points") in (None, ""):
            raise ValidationError(f"Give marks for question {question.position} (“{question.prompt[:40]}”).")
        points = _int(mark.get("points"), f"mark for question {question.position}", 0, question.points)
        signed_off = bool(mark.get("signed_off"))
        if question.kind == QuestionKind.PRACTICAL and points > 0 and not signed_off:
            raise ValidationError(f"Sign off the practical observation in question {question.position} "
                                  "to award it marks.")
        clean[str(question.id)] = {"points": points, "signed_off": signed_off,
                                   "comment": check_text(mark.get("comment"), "comment", max_length=1000,
                                                         required=False)}
    carer = attempt.carer
    async with atomic() as tx:
        updated = await Attempt.filter(id=attempt.id, status=AttemptStatus.SUBMITTED).using_db(tx.conn).update(
            marks=clean, marked_by_id=assessor.id)
        if not updated:
            raise Conflict("Someone else has just marked this assessment.")
        await attempt.refresh_from_db(using_db=tx.conn)
        await tx.audit(Actor(assessor.id, client_address), "assessment.marked", "assessment_attempt", attempt.id)
        await _finish(tx, attempt, view, carer, assessor, at or now())
    return await get_attempt(assessor, attempt.id)


def score_of(attempt: Attempt, view: TemplateView) -> tuple[int, int]:
    earned = 0
    for question in view.questions:
        answer = attempt.answers.get(str(question.id))
        if question.kind.self_scoring:
            earned += auto_points(question, answer) if answer is not None else 0
        else:
            earned += int((attempt.marks.get(str(question.id)) or {}).get("points", 0))
    return earned, view.total_points


async def _finish(tx, attempt: Attempt, view: TemplateView, carer: User, assessor: User | None,
                  at: datetime) -> None:
    earned, total = score_of(attempt, view)
    score = round(100 * earned / total) if total else 0
    passed = score >= view.template.pass_mark
    await Attempt.filter(id=attempt.id).using_db(tx.conn).update(
        status=AttemptStatus.MARKED, score=score, passed=passed, marked_at=at)
    if passed:
        expires = at + timedelta(days=view.template.validity_days)
        skill_id = view.template.skill_id
        existing = await Competency.filter(carer_id=carer.id, skill_id=skill_id).using_db(tx.conn).first()
        if existing is None:
            await Competency.create(using_db=tx.conn, carer_id=carer.id, skill_id=skill_id, level=score,
                                    achieved_at=at, expires_at=expires, attempt_id=attempt.id)
        else:
            await Competency.filter(id=existing.id).using_db(tx.conn).update(
                level=score, achieved_at=at, expires_at=expires, attempt_id=attempt.id)
        await tx.audit(Actor(assessor.id if assessor else carer.id), "competency.certified", "user", carer.id,
                       skill_id=skill_id, expires_at=expires.isoformat())
    await tx.emit("assessment.result", actor_id=carer.id, subject=("assessment_attempt", attempt.id),
                  data={"attempt_id": attempt.id, "title": view.template.title, "score": score, "passed": passed,
                        "carer_name": carer.full_name, "pass_mark": view.template.pass_mark},
                  roles=[Role.ADMIN], users=[carer.id])


async def carer_attempts(carer_id: int) -> list[Attempt]:
    return list(await Attempt.filter(carer_id=carer_id).prefetch_related("template", "template__skill")
                .order_by("-assigned_at"))


async def list_attempts_of_template(template_id: int) -> list[Attempt]:
    return list(await Attempt.filter(template_id=template_id).prefetch_related("carer").order_by("-assigned_at"))


async def waiting_for_marking() -> list[Attempt]:
    return list(await Attempt.filter(status=AttemptStatus.SUBMITTED).prefetch_related("template", "carer")
                .order_by("submitted_at"))


# --- competencies ----------------------------------------------------------------------------


async def check_renewals(at: datetime | None = None, carer_id: int | None = None) -> int:
    """Assign a renewal to each carer whose competency lapses within 30 days (or has lapsed)
    and who has no open attempt at that skill. Returns how many were assigned."""
    at = at or now()
    query = Competency.filter(expires_at__lte=at + DUE_WINDOW).prefetch_related("carer")
    if carer_id is not None:
        query = query.filter(carer_id=carer_id)
    assigned = 0
    for competency in await query:
        if not competency.carer.is_active:
            continue
        if await Attempt.exists(carer_id=competency.carer_id, template__skill_id=competency.skill_id,
                                status__in=list(OPEN)):
            continue
        template = await AssessmentTemplate.filter(skill_id=competency.skill_id, is_active=True).order_by("-id").first()
        if template is None or not await Question.exists(section__template_id=template.id):
            continue
        try:
            await do_assign(None, template.id, competency.carer_id, competency.expires_at.date(), reason="renewal")
        except Conflict:  # assigned by a parallel check
            continue
        assigned += 1
    return assigned


@dataclass
class CompetencyRow:
    skill: Skill
    competency: Competency | None
    standing: Standing


async def carer_competencies(carer_id: int, at: datetime | None = None) -> list[CompetencyRow]:
    """Every skill, with this carer's standing in it."""
    at = at or now()
    skills = list(await Skill.all().order_by("name"))
    held = {c.skill_id: c for c in await Competency.filter(carer_id=carer_id)}
    return [CompetencyRow(s, held.get(s.id), standing(held.get(s.id), at)) for s in skills]


@dataclass
class Matrix:
    carers: list[User]
    skills: list[Skill]
    cells: dict[tuple[int, int], tuple[Standing, Competency | None]]

    def cell(self, carer_id: int, skill_id: int) -> tuple[Standing, Competency | None]:
        return self.cells.get((carer_id, skill_id), (Standing.NOT_ASSESSED, None))

    def counts(self) -> dict[Standing, int]:
        totals = {s: 0 for s in Standing}
        for carer in self.carers:
            for skill in self.skills:
                totals[self.cell(carer.id, skill.id)[0]] += 1
        return totals


async def training_matrix(*, skill_id: int | None = None, only: str | None = None, q: str | None = None,
                          at: datetime | None = None) -> Matrix:
    """Carers × skills, filtered by skill, by standing (carers with at least one such cell)
    and by a name search."""
    at = at or now()
    if only:
        try:
            only_standing = Standing(only)
        except ValueError:
            raise ValidationError(f"'{only[:20]}' is not one of: competent, due, expired, not_assessed.") from None
    else:
        only_standing = None
    carers = User.filter(role=Role.CARER, is_active=True).order_by("full_name")
    if q:
        carers = carers.filter(full_name__icontains=q.strip()[:100])
    skills = Skill.all().order_by("name")
    if skill_id is not None:
        skills = skills.filter(id=skill_id)
    carer_list, skill_list = list(await carers), list(await skills)
    competencies = await Competency.filter(carer_id__in=[c.id for c in carer_list] or [0],
                                           skill_id__in=[s.id for s in skill_list] or [0])
    cells = {(c.carer_id, c.skill_id): (standing(c, at), c) for c in competencies}
    matrix = Matrix(carer_list, skill_list, cells)
    if only_standing is not None:
        matrix.carers = [c for c in carer_list if any(matrix.cell(c.id, s.id)[0] == only_standing
                                                      for s in skill_list)]
    return matrix
