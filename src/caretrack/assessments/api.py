"""Assessments over the JSON API: templates, assigning, answering, marking, the training matrix.
Every GET only reads: renewals are assigned by the periodic job (caretrack.assessments.jobs)."""

from __future__ import annotations

from starlette.requests import Request

from caretrack.accounts.models import User
from caretrack.assessments import service
from caretrack.assessments.models import Attempt
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
from caretrack.core import clock
from caretrack.core.roles import Role
from caretrack.http.apikit import ApiRouter
from caretrack.http.clients import address_of

api = ApiRouter("assessments")


def _out(request: Request, attempt: Attempt) -> AttemptOut:
    return AttemptOut.of(attempt, service.due_status(attempt, clock.now(request).date()))
ADMIN = [Role.ADMIN]
CARER = [Role.CARER]


@api.post("/assessments/templates", summary="Create an assessment template with its sections and questions",
          roles=ADMIN, body=TemplateIn, response=TemplateOut, status=201)
async def api_create_template(request: Request, user: User, body: TemplateIn) -> TemplateOut:
    template = await service.do_create_template(user, body, address_of(request))
    return TemplateOut.of(await service.template_view(template.id))


@api.get("/assessments/templates/{template_id:id}", summary="An assessment template", roles=ADMIN,
         response=TemplateOut, errors=(404,))
async def api_template(request: Request) -> TemplateOut:
    return TemplateOut.of(await service.template_view(request.path_params["template_id"]))


@api.post("/assessments/templates/{template_id:id}/assignments", summary="Assign an assessment to a carer",
          roles=ADMIN, body=AssignIn, response=AttemptOut, status=201, errors=(404, 409))
async def api_assign(request: Request, user: User, body: AssignIn) -> AttemptOut:
    attempt = await service.do_assign(user, request.path_params["template_id"], body.carer_id, body.due_on,
                                      client_address=address_of(request), at=clock.now(request))
    return _out(request, await service.get_attempt(user, attempt.id))


@api.get("/assessments/mine", summary="Your assessments, newest first", roles=CARER, response=AttemptList)
async def api_mine(request: Request, user: User) -> AttemptList:
    return AttemptList(attempts=[_out(request, a) for a in await service.carer_attempts(user.id)])


@api.get("/assessments/attempts/{attempt_id:id}", summary="An assessment attempt", roles=[Role.CARER, Role.ADMIN],
         response=AttemptOut, errors=(404,))
async def api_attempt(request: Request, user: User) -> AttemptOut:
    return _out(request, await service.get_attempt(user, request.path_params["attempt_id"]))


@api.post("/assessments/attempts/{attempt_id:id}/answers", summary="Save answers (and hand in with submit)",
          roles=CARER, body=AnswersIn, response=AttemptOut, errors=(404, 409))
async def api_answers(request: Request, user: User, body: AnswersIn) -> AttemptOut:
    attempt = await service.do_save_answers(user, request.path_params["attempt_id"], body,
                                            client_address=address_of(request), at=clock.now(request))
    return _out(request, attempt)


@api.post("/assessments/attempts/{attempt_id:id}/marks", summary="Mark the free-text and practical questions",
          roles=ADMIN, body=MarksIn, response=AttemptOut, errors=(404, 409))
async def api_marks(request: Request, user: User, body: MarksIn) -> AttemptOut:
    return _out(request, await service.do_mark(user, request.path_params["attempt_id"], body, address_of(request),
                                               at=clock.now(request)))


@api.get("/assessments/matrix", summary="The training matrix: carers × skills", roles=ADMIN, query=MatrixQuery,
         response=MatrixOut)
async def api_matrix(request: Request, query: MatrixQuery) -> MatrixOut:
    at = clock.now(request)
    matrix = await service.training_matrix(skill_id=query.skill_id, only=query.status, q=query.q, at=at)
    return MatrixOut(skills=[SkillOut(id=s.id, name=s.name) for s in matrix.skills], rows=[
        MatrixRow(carer_id=c.id, carer_name=c.full_name, cells=[
            MatrixCell(skill_id=s.id, status=str(matrix.cell(c.id, s.id)[0]),
                       level=comp.level if (comp := matrix.cell(c.id, s.id)[1]) else None,
                       expires_at=comp.expires_at if comp else None) for s in matrix.skills])
        for c in matrix.carers])
