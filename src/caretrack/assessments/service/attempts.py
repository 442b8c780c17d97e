"""Attempts: assigning an assessment to a carer, saving and handing in answers, marking. A
pass certifies the template's skill for its validity period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from caretrack.accounts.models import User
from caretrack.assessments.models import (
    Attempt,
    AttemptStatus,
    Competency,
    DueStatus,
    Question,
    QuestionKind,
    Scoring,
)
from caretrack.assessments.schemas import AnswersIn, MarksIn
from caretrack.assessments.service.carers import check_carer
from caretrack.assessments.service.reminders import due_key_prefix, plan_due_reminders
from caretrack.assessments.service.templates import TemplateView, get_template, template_view
from caretrack.core.audit.service import Actor
from caretrack.core.clock import utcnow
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.transaction import Tx, atomic
from caretrack.core.validation import check_date, check_text

OPEN = (AttemptStatus.ASSIGNED, AttemptStatus.IN_PROGRESS, AttemptStatus.SUBMITTED)


def due_status(attempt: Attempt, today: date) -> DueStatus | None:
    """None when there is no due date or the carer has handed it in."""
    if attempt.due_on is None or attempt.status not in (AttemptStatus.ASSIGNED, AttemptStatus.IN_PROGRESS):
        return None
    if attempt.due_on < today:
        return DueStatus.OVERDUE
    return DueStatus.DUE_TODAY if attempt.due_on == today else DueStatus.UPCOMING


def due_text(attempt: Attempt, today: date) -> str:
    """'due 2026-11-20', 'due today' or 'overdue since 2026-11-20' ('' when due_status is None)."""
    state = due_status(attempt, today)
    if state is None:
        return ""
    return {DueStatus.UPCOMING: f"due {attempt.due_on}", DueStatus.DUE_TODAY: "due today",
            DueStatus.OVERDUE: f"overdue since {attempt.due_on}"}[state]


def _numbered(numbers: list[int]) -> str:
    """'question 4', 'questions 2 and 4', 'questions 1, 2 and 4'."""
    if len(numbers) == 1:
        return f"question {numbers[0]}"
    return "questions " + ", ".join(str(n) for n in numbers[:-1]) + f" and {numbers[-1]}"


def _int(value: Any, what: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"The {what} '{str(value)[:20]}' is not a whole number.") from None
    if not low <= number <= high:
        raise ValidationError(f"The {what} must be between {low} and {high}, not {number}.")
    return number


async def do_assign(admin: User | None, template_id: int, carer_id: int, due_on: Any = None, *,
                    reason: str = "assigned", client_address: str | None = None,
                    at: datetime | None = None) -> Attempt:
    """Assign an assessment to a carer, with the reminders of its due date."""
    at = at or utcnow()
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
                            "due_on": due.isoformat() if due else None, "carer_name": carer.full_name},
                      users=[carer.id])
        await plan_due_reminders(tx, attempt, carer, at)
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


async def do_save_answers(carer: User, attempt_id: int, command: AnswersIn, *, client_address: str | None = None,
                          at: datetime | None = None) -> Attempt:
    """Save progress (answers merge into what was saved before); with `submit`, hand it in:
    choice questions are scored now, anything else waits for the assessor. Each answer is
    checked against its question here, which the command cannot see."""
    answers, submit = command.answers, command.submit
    at = at or utcnow()
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
        missing = [view.number(q) for q in view.questions if str(q.id) not in merged]
        if missing:
            raise ValidationError(f"Answer every question before handing in ({len(missing)} unanswered: "
                                  f"{_numbered(missing)}).")
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
            await tx.cancel_jobs(due_key_prefix(attempt.id), at=at)
            if all(q.kind.self_scoring for q in view.questions):
                await _finish(tx, attempt, view, carer, None, at)
            else:
                await tx.emit("assessment.submitted", actor_id=carer.id, subject=("assessment_attempt", attempt.id),
                              data={"attempt_id": attempt.id, "title": view.template.title,
                                    "carer_name": carer.full_name}, roles=[Role.ADMIN])
    return await get_attempt(carer, attempt.id)


def auto_points(question: Question, answer: Any) -> float:
    """A choice question's points for an answer. Multiple choice scores by the question's rule:
    all or nothing, or partial (each right option picked earns points/len(correct), each wrong
    pick loses as much, never below 0; rounded to 2 places)."""
    if question.kind == QuestionKind.SINGLE:
        return question.points if [answer] == question.correct else 0
    if question.kind == QuestionKind.MULTIPLE:
        picked = set(answer or [])
        if question.scoring != Scoring.PARTIAL:
            return question.points if sorted(picked) == question.correct else 0
        right = len(picked & set(question.correct))
        return round(question.points * max(0, right - len(picked - set(question.correct)))
                     / len(question.correct), 2)
    raise ValueError("not a self-scoring question")


def points_text(points: float) -> str:
    """1.0 as '1', 1.33 as '1.33'."""
    return f"{points:g}"


@dataclass(frozen=True)
class QuestionScore:
    earned: float | None  # None: not marked yet
    points: int

    def __str__(self) -> str:
        return "not marked yet" if self.earned is None else f"{points_text(self.earned)} of {self.points}"


def question_scores(attempt: Attempt, view: TemplateView) -> dict[int, QuestionScore]:
    """Each question's score in an attempt (choice questions once answered, the others once marked)."""
    scores: dict[int, QuestionScore] = {}
    for question in view.questions:
        answer = attempt.answers.get(str(question.id))
        if question.kind.self_scoring:
            earned: float | None = auto_points(question, answer) if answer is not None else 0
        else:
            mark = attempt.marks.get(str(question.id))
            earned = int(mark.get("points", 0)) if mark else None
        scores[question.id] = QuestionScore(earned, question.points)
    return scores


async def do_mark(assessor: User, attempt_id: int, command: MarksIn, client_address: str | None,
                  at: datetime | None = None) -> Attempt:
    """The assessor's marks for the free-text and practical questions; a practical earns
    points only with the assessor's sign-off. Marking every such question finishes it."""
    attempt = await get_attempt(assessor, attempt_id)
    if attempt.status != AttemptStatus.SUBMITTED:
        raise Conflict(f"This assessment is {attempt.status.value.replace('_', ' ')}, not waiting for marking.")
    view = await template_view(attempt.template_id)
    manual = [q for q in view.questions if not q.kind.self_scoring]
    missing = [view.number(q) for q in manual if str(q.id) not in command.marks]
    if missing:
        first = next(q for q in manual if str(q.id) not in command.marks)
        raise ValidationError(f"Give marks for {_numbered(missing)}"
                              + (f" (“{first.prompt[:40]}”)." if len(missing) == 1 else "."))
    clean: dict[str, Any] = {}
    unsigned: list[int] = []
    for question in manual:
        mark = command.marks[str(question.id)]
        points = _int(mark.points, f"mark for question {view.number(question)}", 0, question.points)
        if question.kind == QuestionKind.PRACTICAL and points > 0 and not mark.signed_off:
            unsigned.append(view.number(question))
        clean[str(question.id)] = {"points": points, "signed_off": mark.signed_off, "comment": mark.comment}
    if unsigned:
        raise ValidationError(f"Sign off the practical observation in {_numbered(unsigned)} to award "
                              + ("it marks." if len(unsigned) == 1 else "them marks."))
    carer = attempt.carer
    async with atomic() as tx:
        updated = await Attempt.filter(id=attempt.id, status=AttemptStatus.SUBMITTED).using_db(tx.conn).update(
            marks=clean, marked_by_id=assessor.id)
        if not updated:
            raise Conflict("Someone else has just marked this assessment.")
        await attempt.refresh_from_db(using_db=tx.conn)
        await tx.audit(Actor(assessor.id, client_address), "assessment.marked", "assessment_attempt", attempt.id)
        await _finish(tx, attempt, view, carer, assessor, at or utcnow())
    return await get_attempt(assessor, attempt.id)


def score_of(attempt: Attempt, view: TemplateView) -> tuple[float, int]:
    earned = sum(score.earned or 0 for score in question_scores(attempt, view).values())
    return earned, view.total_points


async def _finish(tx: Tx, attempt: Attempt, view: TemplateView, carer: User, assessor: User | None,
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
