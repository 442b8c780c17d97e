"""The visit summary over the JSON API: its doctor writes it; its doctor and patient read it."""

from __future__ import annotations

from starlette.requests import Request

from caretrack.accounts.models import User
from caretrack.consultations import summary
from caretrack.consultations.summary_schemas import SummaryOut, SummaryWrite
from caretrack.core import clock
from caretrack.http.apikit import ApiRouter
from caretrack.http.clients import address_of

api = ApiRouter("consultations")


@api.get("/consultations/{appointment_id:id}/summary", summary="The visit summary", roles=None,
         response=SummaryOut, errors=(404,),
         description="The appointment's patient reads the published text; its doctor also the draft. "
                     "Anyone else (guests and admins included) gets 404.")
async def api_summary(request: Request, user: User) -> SummaryOut:
    return await summary.read_summary(user, request.path_params["appointment_id"], address_of(request))


@api.put("/consultations/{appointment_id:id}/summary", summary="Write the visit summary (doctor only)", roles=None,
         body=SummaryWrite, response=SummaryOut, errors=(404, 409),
         description="Saves the draft; with `publish: true` the patient can read it and is told (by the channel "
                     "they chose; the notice carries a link, never the text).")
async def api_save_summary(request: Request, user: User, body: SummaryWrite) -> SummaryOut:
    return await summary.do_save_summary(request.app.state.settings, user, request.path_params["appointment_id"],
                                         body, at=clock.now(request), client_address=address_of(request))
