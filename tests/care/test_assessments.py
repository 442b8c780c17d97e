"""Assessments, marking and competencies on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from pypdf import PdfReader

from caretrack.assessments import service
from caretrack.assessments.models import Attempt, AttemptStatus, Competency
from caretrack.assessments.schemas import AnswersIn, MarksIn
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.outbox import store as outbox
from caretrack.core.roles import Role
from caretrack.reports.service import competency_record_pdf
from tests.care.helpers import admin_user, template
from tests.helpers import make_user


async def test_choice_questions_score_themselves_and_a_pass_certifies_the_skill(database, now):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara")
    t, (q1, q2) = await template(admin, manual=False)
    attempt = await service.do_assign(admin, t.id, cara.id)
    saved = await service.do_save_answers(cara, attempt.id, AnswersIn(answers={str(q1.id): 1}))
    assert saved.status == AttemptStatus.IN_PROGRESS and saved.answers == {str(q1.id): 1}
    with pytest.raises(ValidationError, match="1 unanswered"):
        await service.do_save_answers(cara, attempt.id, AnswersIn(answers={}, submit=True))
    done = await service.do_save_answers(cara, attempt.id, AnswersIn(answers={str(q2.id): [0, 1]}, submit=True),
                                         at=now)
    assert (done.status, done.score, done.passed) == (AttemptStatus.MARKED, 100, True)
    competency = await Competency.get(carer_id=cara.id)
    assert competency.level == 100 and competency.achieved_at == now
    assert competency.expires_at == now + timedelta(days=365)
    results = [d.event for d in await outbox.read_history(admin.id, after=0) if d.event.type == "assessment.result"]
    assert len(results) == 1 and results[0].data["score"] == 100 and results[0].data["passed"] is True
    with pytest.raises(Conflict):
        await service.do_save_answers(cara, attempt.id, AnswersIn(answers={str(q1.id): 0}))


async def test_the_assessor_marks_written_and_practical_answers(database):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org")
    carl = await make_user(Role.CARER, "carl@example.org")
    t, (q1, q2, text, practical) = await template(admin)
    attempt = await service.do_assign(admin, t.id, cara.id)
    with pytest.raises(NotFound):
        await service.get_attempt(carl, attempt.id)
    with pytest.raises(ValidationError, match="not part of this assessment"):
        await service.do_save_answers(cara, attempt.id, AnswersIn(answers={"999999": "x"}))
    submitted = await service.do_save_answers(cara, attempt.id, AnswersIn(answers={
        str(q1.id): 1, str(q2.id): [0], str(text.id): "I write it on the MAR chart", str(practical.id): "Done"},
        submit=True))
    assert submitted.status == AttemptStatus.SUBMITTED and submitted.score is None
    with pytest.raises(ValidationError, match="Sign off"):
        await service.do_mark(admin, attempt.id, MarksIn.model_validate({"marks": {
            str(text.id): {"points": 3}, str(practical.id): {"points": 3, "signed_off": False}}}), None)
    marked = await service.do_mark(admin, attempt.id, MarksIn.model_validate({"marks": {
        str(text.id): {"points": 2}, str(practical.id): {"points": 3, "signed_off": True}}}), None)
    # 2 (single) + 0 (multiple, half right is wrong) + 2 + 3 = 7 of 10
    assert (marked.status, marked.score, marked.passed) == (AttemptStatus.MARKED, 70, True)
    assert await Competency.exists(carer_id=cara.id, skill_id=t.skill_id)


async def test_expiry_moves_a_competency_to_due_then_expired_and_assigns_a_renewal(database, now):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara")
    t, (q1, q2) = await template(admin, manual=False, validity_days=90)
    attempt = await service.do_assign(admin, t.id, cara.id)
    await service.do_save_answers(cara, attempt.id, AnswersIn(answers={str(q1.id): 1, str(q2.id): [0, 1]}, submit=True),
                                  at=now)
    competency = await Competency.get(carer_id=cara.id)
    assert service.standing(competency, now) == service.Standing.COMPETENT
    assert await service.check_renewals(now) == 0
    in_70_days = now + timedelta(days=70)  # 20 days before it lapses
    assert service.standing(competency, in_70_days) == service.Standing.DUE
    matrix = await service.training_matrix(at=in_70_days)
    assert matrix.cell(cara.id, t.skill_id)[0] == service.Standing.DUE
    assert await service.check_renewals(in_70_days) == 1
    assert await service.check_renewals(in_70_days) == 0  # one open renewal is enough
    renewal = await Attempt.get(carer_id=cara.id, reason="renewal")
    assert renewal.status == AttemptStatus.ASSIGNED and renewal.due_on == competency.expires_at.date()
    assigned = [d.event for d in await outbox.read_history(cara.id, after=0) if d.event.type == "assessment.assigned"]
    assert [e.data["reason"] for e in assigned] == ["assigned", "renewal"]
    in_91_days = now + timedelta(days=91)
    assert service.standing(competency, now + timedelta(days=90) - timedelta(seconds=1)) == service.Standing.DUE
    assert service.standing(competency, now + timedelta(days=90)) == service.Standing.EXPIRED
    assert service.standing(competency, in_91_days) == service.Standing.EXPIRED
    assert (await service.training_matrix(only="expired", at=in_91_days)).carers == [cara]
    assert (await service.training_matrix(only="competent", at=in_91_days)).carers == []
    with pytest.raises(ValidationError, match="not one of"):
        await service.training_matrix(only="green")


async def test_the_training_record_pdf_lists_standing_and_scores(database):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    t, (q1, q2) = await template(admin, manual=False, skill="Moving and handling")
    await template(admin, manual=False, skill="Food hygiene")
    attempt = await service.do_assign(admin, t.id, cara.id)
    await service.do_save_answers(cara, attempt.id,  # 2 of 4
                                  AnswersIn(answers={str(q1.id): 1, str(q2.id): [0]}, submit=True))
    second = await service.do_assign(admin, t.id, cara.id)
    await service.do_save_answers(cara, second.id, AnswersIn(answers={str(q1.id): 1, str(q2.id): [0, 1]}, submit=True))
    data = await competency_record_pdf(admin, cara.id, "Sunrise Home Care")
    reader = PdfReader(io.BytesIO(data))
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert "Sunrise Home Care" in text and "Cara Carer" in text and "Page 1 of 1" in text and "Generated:" in text
    assert "Summary: 1 competent, 0 due, 0 expired, 1 not assessed" in text
    lines = text.splitlines()
    assert any(line.startswith("Moving and handling competent 100%") for line in lines), lines
    assert any(line.startswith("Food hygiene not assessed") for line in lines), lines
    results = [line for line in lines if line.startswith("Moving and handling check")]
    assert [r.split()[7:10] for r in results] == [["marked", "100%", "passed"], ["marked", "50%", "not"]], results
    carl = await make_user(Role.CARER, "carl@example.org")
    with pytest.raises(NotFound):
        await competency_record_pdf(carl, cara.id, "x")
