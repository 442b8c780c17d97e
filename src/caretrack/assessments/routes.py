"""Assessments over HTTP: the admin's template builder, assigning, marking and training
matrix; the carer taking an assessment; JSON API and pages."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.assessments import service
from caretrack.assessments.models import AttemptStatus, QuestionKind
from caretrack.assessments.schemas import (
    AnswersIn,
    AssignIn,
    AttemptList,
    AttemptOut,
    MarksIn,
    MatrixCell,
    MatrixOut,
    MatrixQuery,
    MatrixRow,
    SkillOut,
    TemplateIn,
    TemplateOut,
)
from caretrack.care.service import carers
from caretrack.core import clock
from caretrack.core.errors import CareTrackError
from caretrack.core.roles import Role
from caretrack.core.validation import id_from_text
from caretrack.http.apikit import ApiRouter
from caretrack.http.clients import client_address
from caretrack.http.pagekit import PageRouter, redirect, render

api = ApiRouter("assessments")
pages = PageRouter()
ADMIN = [Role.ADMIN]
CARER = [Role.CARER]


def _address(request: Request) -> str | None:
    return client_address(request.scope)


# --- API -------------------------------------------------------------------------------------


@api.post("/assessments/templates", summary="Create an assessment template with its sections and questions",
          roles=ADMIN, body=TemplateIn, response=TemplateOut, status=201)
async def api_create_template(request: Request, user: User, body: TemplateIn) -> TemplateOut:
    for section in body.sections:  # validate everything before writing anything
        for question in section.questions:
            service.check_question(question.model_dump())
    template = await service.do_create_template(user, body.model_dump(), _address(request))
    for section in body.sections:
        created = await service.do_add_section(user, template.id, section.title, _address(request))
        for question in section.questions:
            await service.do_add_question(user, created.id, question.model_dump(), _address(request))
    return TemplateOut.of(await service.template_view(template.id))


@api.get("/assessments/templates/{template_id:id}", summary="An assessment template", roles=ADMIN,
         response=TemplateOut, errors=(404,))
async def api_template(request: Request) -> TemplateOut:
    return TemplateOut.of(await service.template_view(request.path_params["template_id"]))


@api.post("/assessments/templates/{template_id:id}/assignments", summary="Assign an assessment to a carer",
          roles=ADMIN, body=AssignIn, response=AttemptOut, status=201, errors=(404, 409))
async def api_assign(request: Request, user: User, body: AssignIn) -> AttemptOut:
    attempt = await service.do_assign(user, request.path_params["template_id"], body.carer_id, body.due_on,
                                      client_address=_address(request))
    return AttemptOut.of(await service.get_attempt(user, attempt.id))


@api.get("/assessments/mine", summary="Your assessments, newest first", roles=CARER, response=AttemptList)
async def api_mine(request: Request, user: User) -> AttemptList:
    await service.check_renewals(clock.now(request), carer_id=user.id)
    return AttemptList(attempts=[AttemptOut.of(a) for a in await service.carer_attempts(user.id)])


@api.get("/assessments/attempts/{attempt_id:id}", summary="An assessment attempt", roles=[Role.CARER, Role.ADMIN],
         response=AttemptOut, errors=(404,))
async def api_attempt(request: Request, user: User) -> AttemptOut:
    return AttemptOut.of(await service.get_attempt(user, request.path_params["attempt_id"]))


@api.post("/assessments/attempts/{attempt_id:id}/answers", summary="Save answers (and hand in with submit)",
          roles=CARER, body=AnswersIn, response=AttemptOut, errors=(404, 409))
async def api_answers(request: Request, user: User, body: AnswersIn) -> AttemptOut:
    attempt = await service.do_save_answers(user, request.path_params["attempt_id"], body.answers,
                                            submit=body.submit, client_address=_address(request),
                                            at=clock.now(request))
    return AttemptOut.of(attempt)


@api.post("/assessments/attempts/{attempt_id:id}/marks", summary="Mark the free-text and practical questions",
          roles=ADMIN, body=MarksIn, response=AttemptOut, errors=(404, 409))
async def api_marks(request: Request, user: User, body: MarksIn) -> AttemptOut:
    marks = {k: v.model_dump() for k, v in body.marks.items()}
    return AttemptOut.of(await service.do_mark(user, request.path_params["attempt_id"], marks, _address(request),
                                               at=clock.now(request)))


@api.get("/assessments/matrix", summary="The training matrix: carers × skills", roles=ADMIN, query=MatrixQuery,
         response=MatrixOut)
async def api_matrix(request: Request, query: MatrixQuery) -> MatrixOut:
    at = clock.now(request)
    await service.check_renewals(at)
    matrix = await service.training_matrix(skill_id=query.skill_id, only=query.status, q=query.q, at=at)
    return MatrixOut(skills=[SkillOut(id=s.id, name=s.name) for s in matrix.skills], rows=[
        MatrixRow(carer_id=c.id, carer_name=c.full_name, cells=[
            MatrixCell(skill_id=s.id, status=str(matrix.cell(c.id, s.id)[0]),
                       level=comp.level if (comp := matrix.cell(c.id, s.id)[1]) else None,
                       expires_at=comp.expires_at if comp else None) for s in matrix.skills])
        for c in matrix.carers])


# --- pages: the admin ------------------------------------------------------------------------


async def _templates_page(request: Request, flashes=None, status_code: int = 200, form=None) -> Response:
    return render(request, "care/admin_assessments.html", {
        "templates": await service.list_templates(), "waiting": await service.waiting_for_marking(),
        "form": form or {}}, status_code=status_code, flashes=flashes)


@pages.get("/admin/assessments", roles=ADMIN)
async def admin_assessments(request: Request) -> Response:
    return await _templates_page(request)


@pages.post("/admin/assessments", roles=ADMIN)
async def admin_create_template(request: Request, user: User, form) -> Response:
    data = {k: str(form.get(k, "")) for k in ("title", "skill", "pass_mark", "validity_days")}
    try:
        template = await service.do_create_template(user, data, _address(request))
    except CareTrackError as exc:
        return await _templates_page(request, [("error", exc.message)], exc.status_code, data)
    return redirect(f"/admin/assessments/{template.id}")


async def _builder(request: Request, template_id: int, flashes=None, status_code: int = 200) -> Response:
    view = await service.template_view(template_id)
    attempts = await service.list_attempts_of_template(template_id)
    return render(request, "care/admin_template.html", {
        "view": view, "kinds": [k.value for k in QuestionKind], "carers": await carers(), "attempts": attempts},
        status_code=status_code, flashes=flashes)


@pages.get("/admin/assessments/{template_id:id}", roles=ADMIN)
async def admin_template(request: Request) -> Response:
    return await _builder(request, request.path_params["template_id"])


@pages.post("/admin/assessments/{template_id:id}/sections", roles=ADMIN)
async def admin_add_section(request: Request, user: User, form) -> Response:
    template_id = request.path_params["template_id"]
    try:
        await service.do_add_section(user, template_id, form.get("title"), _address(request))
    except CareTrackError as exc:
        return await _builder(request, template_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/assessments/{template_id}")


def parse_options(text: str) -> tuple[list[str], list[int]]:
    """One option per line; a leading '*' marks a right answer."""
    options, correct = [], []
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
async def admin_add_question(request: Request, user: User, form) -> Response:
    template_id = request.path_params["template_id"]
    view = await service.template_view(template_id)
    options, correct = parse_options(str(form.get("options", "")))
    try:
        section_id = id_from_text(str(form.get("section_id", "")), "section_id")
        if section_id not in {s.id for s, _ in view.sections}:
            raise ValueError
        await service.do_add_question(user, section_id, {
            "kind": form.get("kind"), "prompt": form.get("prompt"), "points": form.get("points") or 1,
            "options": options, "correct": correct}, _address(request))
    except ValueError:
        return await _builder(request, template_id, [("error", "Choose a section of this assessment.")], 422)
    except CareTrackError as exc:
        return await _builder(request, template_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/assessments/{template_id}")


@pages.post("/admin/assessments/{template_id:id}/assign", roles=ADMIN)
async def admin_assign(request: Request, user: User, form) -> Response:
    template_id = request.path_params["template_id"]
    try:
        await service.do_assign(user, template_id, form.get("carer_id"), form.get("due_on") or None,
                                client_address=_address(request))
    except CareTrackError as exc:
        return await _builder(request, template_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/assessments/{template_id}")


@pages.get("/admin/assessments/attempts/{attempt_id:id}", roles=ADMIN)
async def admin_attempt(request: Request, user: User, flashes=None, status_code: int = 200) -> Response:
    attempt = await service.get_attempt(user, request.path_params["attempt_id"])
    view = await service.template_view(attempt.template_id)
    return render(request, "care/admin_attempt.html", {"attempt": attempt, "view": view,
                                                        "auto_points": service.auto_points},
                  status_code=status_code, flashes=flashes)


@pages.post("/admin/assessments/attempts/{attempt_id:id}", roles=ADMIN)
async def admin_mark(request: Request, user: User, form) -> Response:
    attempt_id = request.path_params["attempt_id"]
    attempt = await service.get_attempt(user, attempt_id)
    view = await service.template_view(attempt.template_id)
    marks = {str(q.id): {"points": form.get(f"points_{q.id}"), "signed_off": form.get(f"signed_off_{q.id}") == "on",
                         "comment": form.get(f"comment_{q.id}")}
             for q in view.questions if not q.kind.self_scoring}
    try:
        await service.do_mark(user, attempt_id, marks, _address(request), at=clock.now(request))
    except CareTrackError as exc:
        return await admin_attempt(request, user, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/assessments/attempts/{attempt_id}")


@pages.get("/admin/training", roles=ADMIN)
async def training(request: Request) -> Response:
    params = request.query_params
    skill = id_from_text(params.get("skill_id"), "skill_id")
    at = clock.now(request)
    await service.check_renewals(at)
    matrix = await service.training_matrix(skill_id=skill, only=params.get("status") or None,
                                           q=params.get("q") or None, at=at)
    from caretrack.assessments.models import Skill

    return render(request, "care/training.html", {
        "matrix": matrix, "all_skills": list(await Skill.all().order_by("name")), "skill_id": skill,
        "status": params.get("status") or "", "q": params.get("q") or "", "standings": list(service.Standing)})


# --- pages: the carer ------------------------------------------------------------------------


@pages.get("/carer/assessments/{attempt_id:id}", roles=CARER)
async def take(request: Request, user: User, flashes=None, status_code: int = 200) -> Response:
    attempt = await service.get_attempt(user, request.path_params["attempt_id"])
    view = await service.template_view(attempt.template_id)
    return render(request, "care/take_assessment.html", {"attempt": attempt, "view": view,
                                                         "editable": attempt.status in (AttemptStatus.ASSIGNED,
                                                                                        AttemptStatus.IN_PROGRESS)},
                  status_code=status_code, flashes=flashes)


@pages.post("/carer/assessments/{attempt_id:id}", roles=CARER)
async def save_attempt(request: Request, user: User, form) -> Response:
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
        await service.do_save_answers(user, attempt_id, answers, submit=submit, client_address=_address(request),
                                      at=clock.now(request))
    except CareTrackError as exc:
        return await take(request, user, [("error", exc.message)], exc.status_code)
    if submit:
        return redirect(f"/carer/assessments/{attempt_id}")
    return await take(request, user, [("success", "Your answers are saved; you can come back to finish.")])


@pages.get("/carer/record", roles=CARER)
async def carer_record(request: Request, user: User) -> Response:
    return render(request, "care/carer_record.html", {
        "competencies": await service.carer_competencies(user.id, clock.now(request)),
        "attempts": await service.carer_attempts(user.id)})

