"""Follow-up offers over the JSON API: the doctor offers, the patient books in one step."""

from __future__ import annotations

from starlette.requests import Request

from caretrack.accounts.models import User
from caretrack.booking import followups
from caretrack.booking.followup_schemas import (
    FollowUpBook,
    FollowUpCreate,
    FollowUpList,
    FollowUpOut,
    FollowUpSlotQuery,
    FollowUpSlots,
)
from caretrack.booking.schemas import AppointmentOut
from caretrack.booking.service import get_appointment
from caretrack.core import clock
from caretrack.core.roles import Role
from caretrack.http.apikit import ApiRouter
from caretrack.http.clients import address_of

api = ApiRouter("booking")


@api.get("/appointments/{appointment_id:id}/follow-up-slots", summary="Your free slots to offer as a follow-up",
         roles=[Role.DOCTOR], query=FollowUpSlotQuery, response=FollowUpSlots, errors=(404,),
         description="The appointment's doctor only; slots after the consultation, labelled in your hours' zone.")
async def api_follow_up_slots(request: Request, user: User, query: FollowUpSlotQuery) -> FollowUpSlots:
    zone, slots = await followups.offerable_slots(user, request.path_params["appointment_id"],
                                                  at=clock.now(request), days=query.days)
    return FollowUpSlots(time_zone=zone, slots=[followups.slot_out(s, zone) for s in slots])


@api.post("/appointments/{appointment_id:id}/follow-ups", summary="Offer the patient a follow-up",
          roles=[Role.DOCTOR], body=FollowUpCreate, response=FollowUpOut, status=201, errors=(404, 409),
          description="One of your free slots, or any free slot between two dates; the patient is told.")
async def api_offer(request: Request, user: User, body: FollowUpCreate) -> FollowUpOut:
    at = clock.now(request)
    offer = await followups.do_offer(request.app.state.settings, user, request.path_params["appointment_id"], body,
                                     at=at, client_address=address_of(request))
    return await followups.view(offer, user, at)


@api.get("/appointments/{appointment_id:id}/follow-ups", summary="The follow-ups offered after an appointment",
         roles=[Role.PATIENT, Role.DOCTOR], response=FollowUpList, errors=(404,))
async def api_offers(request: Request, user: User) -> FollowUpList:
    at = clock.now(request)
    appointment = await get_appointment(user, request.path_params["appointment_id"])
    return FollowUpList(offers=[await followups.view(o, user, at)
                                for o in await followups.offers_for(user, appointment)])


@api.get("/follow-ups/{offer_id:id}", summary="One follow-up offer", roles=[Role.PATIENT, Role.DOCTOR],
         response=FollowUpOut, errors=(404,), description="Its patient and its doctor; anyone else gets 404.")
async def api_follow_up(request: Request, user: User) -> FollowUpOut:
    at = clock.now(request)
    return await followups.view(await followups.get_offer(user, request.path_params["offer_id"]), user, at)


@api.post("/follow-ups/{offer_id:id}/book", summary="Book the follow-up offered (paid in credits)",
          roles=[Role.PATIENT], body=FollowUpBook, response=AppointmentOut, status=201, errors=(402, 404, 409),
          description="Books through the normal booking path; accepting the same offer again returns the same "
                      "booking and charges once. 409 when the offer expired or the time was taken meanwhile.")
async def api_book_follow_up(request: Request, user: User, body: FollowUpBook) -> AppointmentOut:
    appointment = await followups.do_accept(request.app.state.settings, user, request.path_params["offer_id"], body,
                                            at=clock.now(request), client_address=address_of(request))
    await appointment.fetch_related("doctor", "patient")
    return AppointmentOut.of(appointment)
