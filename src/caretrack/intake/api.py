"""Consultation types over the JSON API: doctors define their own, admins any doctor's;
patients list what a doctor offers. An appointment's answers are booking.intake_api's."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.core import clock
from caretrack.core.roles import Role
from caretrack.http.apikit import ApiRouter
from caretrack.intake import service
from caretrack.intake.schemas import ConsentIn, QuestionIn, TypeIn, TypeList, TypeOut, TypeQuery, TypeUpdate

api = ApiRouter("intake")
EDITORS = [Role.DOCTOR, Role.ADMIN]


async def _view(user: User, type_id: int) -> TypeOut:
    return await service.type_view(await service.owned_type(user, type_id))


@api.get("/consultation-types", summary="Consultation types you may edit", roles=EDITORS, query=TypeQuery,
         response=TypeList, description="A doctor's own; for an admin every doctor's, or one doctor's.")
async def api_types(request: Request, user: User, query: TypeQuery) -> TypeList:
    return TypeList(types=await service.list_types(user, query.doctor_id))


@api.post("/consultation-types", summary="Define a consultation type", roles=EDITORS, body=TypeIn, response=TypeOut,
          status=201, description="An admin names the doctor (doctor_id); a doctor's type is their own.")
async def api_create_type(request: Request, user: User, body: TypeIn) -> TypeOut:
    created = await service.do_create_type(user, body, at=clock.now(request))
    return await service.type_view(created)


@api.get("/consultation-types/{type_id:id}", summary="One consultation type", roles=EDITORS, response=TypeOut,
         errors=(404,))
async def api_type(request: Request, user: User) -> TypeOut:
    return await _view(user, request.path_params["type_id"])


@api.put("/consultation-types/{type_id:id}", summary="Rename, describe or archive a consultation type",
         roles=EDITORS, body=TypeUpdate, response=TypeOut, errors=(404,))
async def api_update_type(request: Request, user: User, body: TypeUpdate) -> TypeOut:
    updated = await service.do_update_type(user, request.path_params["type_id"], body, at=clock.now(request))
    return await service.type_view(updated)


@api.post("/consultation-types/{type_id:id}/questions", summary="Add an intake question", roles=EDITORS,
          body=QuestionIn, response=TypeOut, status=201, errors=(404,))
async def api_add_question(request: Request, user: User, body: QuestionIn) -> TypeOut:
    question = await service.do_add_question(user, request.path_params["type_id"], body)
    return await _view(user, question.consultation_type_id)


@api.put("/intake-questions/{question_id:id}", summary="Change an intake question", roles=EDITORS,
         body=QuestionIn, response=TypeOut, errors=(404,))
async def api_update_question(request: Request, user: User, body: QuestionIn) -> TypeOut:
    question = await service.do_update_question(user, request.path_params["question_id"], body)
    return await _view(user, question.consultation_type_id)


@api.delete("/intake-questions/{question_id:id}", summary="Remove an intake question", roles=EDITORS, status=204,
            errors=(404,), description="Answers already given keep the question's wording.")
async def api_delete_question(request: Request, user: User) -> Response:
    await service.do_delete_question(user, request.path_params["question_id"])
    return Response(status_code=204)


@api.post("/consultation-types/{type_id:id}/consents", summary="Add a consent document", roles=EDITORS,
          body=ConsentIn, response=TypeOut, status=201, errors=(404,))
async def api_add_consent(request: Request, user: User, body: ConsentIn) -> TypeOut:
    document = await service.do_add_consent(user, request.path_params["type_id"], body, at=clock.now(request))
    return await _view(user, document.consultation_type_id)


@api.put("/consent-documents/{document_id:id}", summary="Reword a consent document (a new version)",
         roles=EDITORS, body=ConsentIn, response=TypeOut, errors=(404,),
         description="Signatures already given keep the version they signed.")
async def api_update_consent(request: Request, user: User, body: ConsentIn) -> TypeOut:
    version = await service.do_update_consent(user, request.path_params["document_id"], body, at=clock.now(request))
    document = await service.document_of(version)
    return await _view(user, document.consultation_type_id)


@api.delete("/consent-documents/{document_id:id}", summary="Retire a consent document", roles=EDITORS, status=204,
            errors=(404,), description="It is no longer asked for; its signatures remain.")
async def api_retire_consent(request: Request, user: User) -> Response:
    await service.do_retire_consent(user, request.path_params["document_id"])
    return Response(status_code=204)


@api.get("/doctors/{doctor_id:id}/consultation-types", summary="The consultation types a doctor offers",
         roles=[Role.PATIENT], response=TypeList, errors=(404,),
         description="Book one of them (consultation_type_id); a doctor with none is booked without.")
async def api_offered(request: Request) -> TypeList:
    offered = await service.offered_types(request.path_params["doctor_id"])
    return TypeList(types=[await service.type_view(t, include_retired=False) for t in offered])
