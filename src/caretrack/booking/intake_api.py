"""An appointment's intake over the JSON API: the patient submits it, the appointment's
doctor and patient read it (audited). The definitions are caretrack.intake.api's."""

from __future__ import annotations

from starlette.requests import Request

from caretrack.accounts.models import User
from caretrack.booking.service import get_appointment
from caretrack.core import clock
from caretrack.core.roles import Role
from caretrack.http.apikit import ApiRouter
from caretrack.intake import answers
from caretrack.intake.schemas import IntakeOut, IntakeSubmission

api = ApiRouter("intake")


@api.get("/appointments/{appointment_id:id}/intake", summary="The appointment's intake answers and consents",
         roles=[Role.PATIENT, Role.DOCTOR], response=IntakeOut, errors=(403, 404),
         description="For the appointment's doctor and patient; every read is audited.")
async def api_intake(request: Request, user: User) -> IntakeOut:
    appointment = await get_appointment(user, request.path_params["appointment_id"])
    return await answers.read(user, appointment)


@api.put("/appointments/{appointment_id:id}/intake", summary="Answer the intake and sign its consents (patient)",
         roles=[Role.PATIENT], body=IntakeSubmission, response=IntakeOut, errors=(403, 404, 409),
         description="Every problem is reported at once in `fields`. Submitting again replaces the answers.")
async def api_submit_intake(request: Request, user: User, body: IntakeSubmission) -> IntakeOut:
    appointment = await get_appointment(user, request.path_params["appointment_id"])
    await answers.do_submit(user, appointment, body, at=clock.now(request))
    return await answers.read(user, appointment)
