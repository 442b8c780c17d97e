"""Assessments, marking and competencies on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError as PydanticValidationError
from pypdf import PdfReader

from caretrack.assessments import service
from caretrack.assessments.models import Attempt, AttemptStatus, Competency, Scoring
from caretrack.assessments.schemas import AnswersIn, MarksIn, QuestionIn, SectionIn, TemplateIn
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.outbox import store as outbox
from caretrack.core.roles import Role
from caretrack.realtime import feed
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


AT = datetime(2026, 3, 29, 5, 0, tzinfo=UTC)  # early morning on London's spring-forward day


@pytest.mark.parametrize(("validity", "window"), [
    (7, timedelta(days=1, hours=18)), (14, timedelta(days=3, hours=12)), (29, timedelta(days=7, hours=6)),
    (30, timedelta(days=7, hours=12)), (365, timedelta(days=30))])
async def test_a_freshly_passed_skill_is_current_however_short_its_validity(database, validity, window):
    """Due soon is the last quarter of the validity, at most 30 days: a skill valid for 30 days or
    less is no longer due (and renewed) the moment it is passed."""
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara")
    t, (q1, q2) = await template(admin, manual=False, validity_days=validity)
    attempt = await service.do_assign(admin, t.id, cara.id, at=AT)
    await service.do_save_answers(cara, attempt.id, AnswersIn(answers={str(q1.id): 1, str(q2.id): [0, 1]},
                                                              submit=True), at=AT)
    competency = await Competency.get(carer_id=cara.id)
    expires = AT + timedelta(days=validity)
    assert service.due_window(timedelta(days=validity)) == window
    assert service.standing(competency, AT) == service.Standing.COMPETENT
    assert (await service.training_matrix(at=AT)).cell(cara.id, t.skill_id)[0] == service.Standing.COMPETENT
    assert await service.check_renewals(AT) == 0
    just_before = expires - window - timedelta(seconds=1)
    assert service.standing(competency, just_before) == service.Standing.COMPETENT
    assert await service.check_renewals(just_before) == 0
    assert service.standing(competency, expires - window) == service.Standing.DUE
    assert await service.check_renewals(expires - window) == 1
    assert service.standing(competency, expires) == service.Standing.EXPIRED


async def test_an_expired_skill_says_expired_on_and_its_renewal_overdue_since(database):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara")
    t, (q1, q2) = await template(admin, manual=False, validity_days=90)
    attempt = await service.do_assign(admin, t.id, cara.id, at=AT)
    await service.do_save_answers(cara, attempt.id, AnswersIn(answers={str(q1.id): 1, str(q2.id): [0, 1]},
                                                              submit=True), at=AT)
    competency = await Competency.get(carer_id=cara.id)
    expiry = competency.expires_at.date()  # 2026-06-27
    assert service.standing_text(service.standing(competency, AT), competency) == f"valid until {expiry}"
    after = AT + timedelta(days=95)  # the renewal job was down: it assigns the renewal after the expiry
    assert await service.check_renewals(after) == 1
    renewal = await Attempt.get(carer_id=cara.id, reason="renewal").prefetch_related("template")
    assert renewal.due_on == expiry
    [row] = await service.carer_competencies(cara.id, after)
    assert (row.standing, row.text) == (service.Standing.EXPIRED, f"expired on {expiry}")
    assert service.due_status(renewal, after.date()) == service.DueStatus.OVERDUE
    assert service.due_text(renewal, after.date()) == f"overdue since {expiry}"
    assert service.due_text(renewal, expiry) == "due today"
    assert service.due_text(renewal, expiry - timedelta(days=1)) == f"due {expiry}"
    due_soon = AT + timedelta(days=70)
    assert service.standing_text(service.standing(competency, due_soon), competency) == (
        f"due for renewal, expires on {expiry}")


async def test_the_sign_off_message_names_the_unsigned_questions_by_their_number(database):
    """Questions are numbered across the assessment (the pages show 1, 2, 3); position counts
    within a section, so the message named the wrong question."""
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org")
    t = await service.do_create_template(admin, TemplateIn.model_validate({
        "title": "Hoisting", "skill": "Hoisting", "pass_mark": 50, "validity_days": 365}), None)
    knowledge = await service.do_add_section(admin, t.id, SectionIn(title="Knowledge"), None)
    single = await service.do_add_question(admin, knowledge.id, QuestionIn.model_validate({
        "kind": "single", "prompt": "Check the sling?", "options": ["Yes", "No"], "correct": [0]}), None)
    practice = await service.do_add_section(admin, t.id, SectionIn(title="Practice"), None)
    first, second = [await service.do_add_question(admin, practice.id, QuestionIn.model_validate({
        "kind": "practical", "prompt": prompt, "points": 2}), None) for prompt in ("Fit the sling", "Lower safely")]
    attempt = await service.do_assign(admin, t.id, cara.id)
    await service.do_save_answers(cara, attempt.id, AnswersIn(answers={
        str(single.id): 0, str(first.id): "done", str(second.id): "done"}, submit=True))

    def marks(first_signed: bool, second_signed: bool) -> MarksIn:
        return MarksIn.model_validate({"marks": {str(first.id): {"points": 2, "signed_off": first_signed},
                                                 str(second.id): {"points": 2, "signed_off": second_signed}}})

    with pytest.raises(ValidationError) as only_second:
        await service.do_mark(admin, attempt.id, marks(True, False), None)
    assert only_second.value.message == "Sign off the practical observation in question 3 to award it marks."
    with pytest.raises(ValidationError) as both:
        await service.do_mark(admin, attempt.id, marks(False, False), None)
    assert both.value.message == "Sign off the practical observation in questions 2 and 3 to award them marks."
    with pytest.raises(ValidationError, match=r"Give marks for question 3 \(“Lower safely”\)"):
        await service.do_mark(admin, attempt.id, MarksIn.model_validate({"marks": {
            str(first.id): {"points": 2, "signed_off": True}}}), None)
    marked = await service.do_mark(admin, attempt.id, marks(True, True), None)
    assert marked.score == 100


async def test_multiple_choice_scores_by_the_rule_the_admin_chose(database):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org")
    t = await service.do_create_template(admin, TemplateIn.model_validate({
        "title": "Infection control", "skill": "Infection control", "pass_mark": 50, "validity_days": 365}), None)
    section = await service.do_add_section(admin, t.id, SectionIn(title="Knowledge"), None)
    options = ["Gloves", "Apron", "Hand washing", "Perfume"]
    partial, strict = [await service.do_add_question(admin, section.id, QuestionIn.model_validate({
        "kind": "multiple", "prompt": "Which protect against infection?", "options": options, "correct": [0, 1, 2],
        "points": 3, **({"scoring": rule} if rule else {})}), None) for rule in ("partial", None)]
    assert (partial.scoring, strict.scoring) == (Scoring.PARTIAL, Scoring.ALL_OR_NOTHING)
    assert [service.auto_points(partial, a) for a in ([0, 1], [0, 1, 3], [3], [0, 1, 2], [0, 1, 2, 3])] == [
        2, 1, 0, 3, 2]
    assert [service.auto_points(strict, a) for a in ([0, 1], [0, 1, 2], [0, 1, 2, 3])] == [0, 3, 0]
    attempt = await service.do_assign(admin, t.id, cara.id)
    marked = await service.do_save_answers(cara, attempt.id, AnswersIn(answers={
        str(partial.id): [0, 1], str(strict.id): [0, 1]}, submit=True))
    assert marked.score == 33  # 2 of 3 + 0 of 3
    view = await service.template_view(t.id)
    scores = service.question_scores(marked, view)
    assert (str(scores[partial.id]), str(scores[strict.id])) == ("2 of 3", "0 of 3")
    assert service.auto_points(partial, [0]) == 1
    assert (str(service.QuestionScore(0.67, 2)), str(service.QuestionScore(None, 3))) == ("0.67 of 2",
                                                                                       "not marked yet")


def test_only_multiple_choice_has_a_choice_of_scoring_and_a_wrong_rule_is_named():
    single = QuestionIn.model_validate({"kind": "single", "prompt": "Q?", "options": ["a", "b"], "correct": [0],
                                        "scoring": "partial"})
    assert single.scoring == "all_or_nothing"
    with pytest.raises(PydanticValidationError, match="'half' is not one of: all_or_nothing, partial"):
        QuestionIn.model_validate({"kind": "multiple", "prompt": "Q?", "options": ["a", "b"], "correct": [0],
                                   "scoring": "half"})


async def test_assessment_events_read_as_sentences_in_the_feed(database):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    t, (q1, q2, text, practical) = await template(admin)
    attempt = await service.do_assign(admin, t.id, cara.id, AT.date() + timedelta(days=7), at=AT)
    await service.do_save_answers(cara, attempt.id, AnswersIn(answers={
        str(q1.id): 1, str(q2.id): [0, 1], str(text.id): "MAR", str(practical.id): "ok"}, submit=True), at=AT)
    history = [d for user in (admin, cara) for d in await outbox.read_history(user.id, after=0)
               if d.event.type in ("assessment.assigned", "assessment.submitted")]
    names = await feed.names_for(history)
    assert [feed.describe(d, names) for d in history] == [
        "Cara Carer handed in “Medication check” for marking",
        "Bo Boss assigned “Medication check” to Cara Carer, due 2026-04-05"]
    renewal = {"title": "Medication check", "reason": "renewal", "carer_name": "Cara Carer", "due_on": "2026-06-27"}
    assert feed.LINES["assessment.assigned"]("The system", "", renewal) == (
        "The system assigned Cara Carer a renewal of “Medication check”, due 2026-06-27")
