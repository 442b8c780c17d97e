"""Assessment pages: the admin's template builder, assigning, marking and training matrix; the
carer taking an assessment and their record. Every GET only reads (renewals come from the
periodic job, caretrack.assessments.jobs)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.assessments import service
from caretrack.assessments.models import AttemptStatus, QuestionKind, Skill
from caretrack.assessments.schemas import AnswersIn, AssignIn, MarksIn, QuestionIn, SectionIn, TemplateIn
from caretrack.core import clock
from caretrack.core.errors import CareTrackError
from caretrack.core.roles import Role
from caretrack.core.validation import id_from_text
from caretrack.http.clients import address_of
from caretrack.http.pagekit import PageRouter, parse_form, redirect, render

pages = PageRouter()
ADMIN = [Role.ADMIN]
CARER = [Role.CARER]
Flashes = list[tuple[str, str]] | None


# --- the admin -------------------------------------------------------------------------------


async def _templates_page(request: Request, flashes: Flashes = None, status_code: int = 200,
                          form: dict[str, Any] | None = None) -> Response:
    return render(request, "care/admin_assessments.html", {
        "templates": await service.list_templates(), "waiting": await service.waiting_for_marking(),
        "form": form or {}}, status_code=status_code, flashes=flashes)


@pages.get("/admin/assessments", roles=ADMIN)
async def admin_assessments(request: Request) -> Response:
    return await _templates_page(request)


@pages.post("/admin/assessments", roles=ADMIN)
async def admin_create_template(request: Request, user: User, form: FormData) -> Response:
    data = {k: str(form.get(k, "")) for k in ("title", "skill", "pass_mark", "validity_days")}
    try:
        command = parse_form(TemplateIn, data)
        template = await service.do_create_template(user, command, address_of(request))
    except CareTrackError as exc:
        return await _templates_page(request, [("error", exc.message)], exc.status_code, data)
    return redirect(f"/admin/assessments/{template.id}")


async def _builder(request: Request, template_id: int, flashes: Flashes = None, status_code: int = 200) -> Response:
    view = await service.template_view(template_id)
    attempts = await service.list_attempts_of_template(template_id)
    return render(request, "care/admin_template.html", {
        "view": view, "kinds": [k.value for k in QuestionKind], "carers": await service.active_carers(),
        "attempts": attempts},
        status_code=status_code, flashes=flashes)


@pages.get("/admin/assessments/{template_id:id}", roles=ADMIN)
async def admin_template(request: Request) -> Response:
    return await _builder(request, request.path_params["template_id"])


@pages.post("/admin/assessments/{template_id:id}/sections", roles=ADMIN)
async def admin_add_section(request: Request, user: User, form: FormData) -> Response:
    template_id = request.path_params["template_id"]
    try:
        command = parse_form(SectionIn, {"title": str(form.get("title", ""))})
        await service.do_add_section(user, template_id, command, address_of(request))
    except CareTrackError as exc:
        return await _builder(request, template_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/assessments/{template_id}")


def parse_options(text: str) -> tuple[list[str], list[int]]:
    """One option per line; a leading '*' marks a right answer."""
    options: list[str] = []
    correct: list[int] = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("*"):
            correct.append(len(options))
            line = line[1:].strip()
        options.append(line)
    return options, correct


@pages.post("/admin/assessments/{template_id:id}/questions", roles=ADMIN)
async def admin_add_question(request: Request, user: User, form: FormData) -> Response:
    template_id = request.path_params["template_id"]
    view = await service.template_view(template_id)
    options, correct = parse_options(str(form.get("options", "")))
    try:
        section_id = id_from_text(str(form.get("section_id", "")), "section_id")
        if section_id not in {s.id for s, _ in view.sections}:
            raise ValueError
        command = parse_form(QuestionIn, {"kind": str(form.get("kind", "")), "prompt": str(form.get("prompt", "")),
                                          "points": str(form.get("points") or 1), "options": options,
                                          "correct": correct,
                                          "scoring": str(form.get("scoring") or "all_or_nothing")})
        await service.do_add_question(user, section_id, command, address_of(request))
    except ValueError:
        return await _builder(request, template_id, [("error", "Choose a section of this assessment.")], 422)
    except CareTrackError as exc:
        return await _builder(request, template_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/assessments/{template_id}")


@pages.post("/admin/assessments/{template_id:id}/assign", roles=ADMIN)
async def admin_assign(request: Request, user: User, form: FormData) -> Response:
    template_id = request.path_params["template_id"]
    try:
        command = parse_form(AssignIn, {"carer_id": str(form.get("carer_id", "")),
                                         "due_on": str(form.get("due_on", "")) or None})
        await service.do_assign(user, template_id, command.carer_id, command.due_on,
                                client_address=address_of(request), at=clock.now(request))
    except CareTrackError as exc:
        return await _builder(request, template_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/assessments/{template_id}")


@pages.get("/admin/assessments/attempts/{attempt_id:id}", roles=ADMIN)
async def admin_attempt(request: Request, user: User, flashes: Flashes = None, status_code: int = 200) -> Response:
    attempt = await service.get_attempt(user, request.path_params["attempt_id"])
    view = await service.template_view(attempt.template_id)
    return render(request, "care/admin_attempt.html", {"attempt": attempt, "view": view,
                                                        "scores": service.question_scores(attempt, view)},
                  status_code=status_code, flashes=flashes)


@pages.post("/admin/assessments/attempts/{attempt_id:id}", roles=ADMIN)
async def admin_mark(request: Request, user: User, form: FormData) -> Response:
    attempt_id = request.path_params["attempt_id"]
    attempt = await service.get_attempt(user, attempt_id)
    view = await service.template_view(attempt.template_id)
    # A question left without points is left out: the service names it ("Give marks for question 2").
    marks = {str(q.id): {"points": str(form.get(f"points_{q.id}")),
                         "signed_off": form.get(f"signed_off_{q.id}") == "on",
                         "comment": str(form.get(f"comment_{q.id}") or "")}
             for q in view.questions if not q.kind.self_scoring and form.get(f"points_{q.id}")}
    try:
        command = parse_form(MarksIn, {"marks": marks})
        await service.do_mark(user, attempt_id, command, address_of(request), at=clock.now(request))
    except CareTrackError as exc:
        return await admin_attempt(request, user, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/assessments/attempts/{attempt_id}")


@pages.get("/admin/training", roles=ADMIN)
async def training(request: Request) -> Response:
    params = request.query_params
    skill = id_from_text(params.get("skill_id"), "skill_id")
    at = clock.now(request)
    matrix = await service.training_matrix(skill_id=skill, only=params.get("status") or None,
                                           q=params.get("q") or None, at=at)
    return render(request, "care/training.html", {
        "matrix": matrix, "all_skills": list(await Skill.all().order_by("name")), "skill_id": skill,
        "status": params.get("status") or "", "q": params.get("q") or "", "standings": list(service.Standing),
        "standing_text": service.standing_text})


# --- the carer ------------------------------------------------------------------------


@pages.get("/carer/assessments/{attempt_id:id}", roles=CARER)
async def take(request: Request, user: User, flashes: Flashes = None, status_code: int = 200) -> Response:
    attempt = await service.get_attempt(user, request.path_params["attempt_id"])
    view = await service.template_view(attempt.template_id)
    return render(request, "care/take_assessment.html", {"attempt": attempt, "view": view,
                                                         "editable": attempt.status in (AttemptStatus.ASSIGNED,
                                                                                        AttemptStatus.IN_PROGRESS),
                                                         "scores": service.question_scores(attempt, view),
                                                         "due": service.due_text(attempt, clock.now(request).date())},
                  status_code=status_code, flashes=flashes)


@pages.post("/carer/assessments/{attempt_id:id}", roles=CARER)
async def save_attempt(request: Request, user: User, form: FormData) -> Response:
    attempt_id = request.path_params["attempt_id"]
    attempt = await service.get_attempt(user, attempt_id)
    view = await service.template_view(attempt.template_id)
    answers: dict[str, object] = {}
    for q in view.questions:
        key = f"q{q.id}"
        if q.kind == QuestionKind.MULTIPLE:
            answers[str(q.id)] = [str(v) for v in form.getlist(key)]
        else:
            answers[str(q.id)] = str(form.get(key, ""))
    submit = form.get("action") == "submit"
    try:
        command = parse_form(AnswersIn, {"answers": answers, "submit": submit})
        await service.do_save_answers(user, attempt_id, command, client_address=address_of(request),
                                      at=clock.now(request))
    except CareTrackError as exc:
        return await take(request, user, [("error", exc.message)], exc.status_code)
    if submit:
        return redirect(f"/carer/assessments/{attempt_id}")
    return await take(request, user, [("success", "Your answers are saved; you can come back to finish.")])


@pages.get("/carer/record", roles=CARER)
async def carer_record(request: Request, user: User) -> Response:
    at = clock.now(request)
    return render(request, "care/carer_record.html", {
        "competencies": await service.carer_competencies(user.id, at),
        "attempts": await service.carer_attempts(user.id), "today": at.date(), "due_text": service.due_text})
