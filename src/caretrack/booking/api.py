"""Booking over the JSON API; the pages live in booking/pages.py."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.booking import applications, calendar, service
from caretrack.booking import slots as slotlib
from caretrack.booking.models import ApplicationStatus, ReminderPolicy
from caretrack.booking.schemas import (
    ApplicationList,
    ApplicationOut,
    AppointmentList,
    AppointmentOut,
    AppointmentQuery,
    AvailabilityIn,
    AvailabilityOut,
    BookSlot,
    CalendarFeedOut,
    CancelRequest,
    Decision,
    DoctorList,
    DoctorOut,
    DoctorQuery,
    HoldSlot,
    OutcomeRequest,
    ReminderPolicyIn,
    ReminderPolicyOut,
    RescheduleRequest,
    SlotList,
    SlotOut,
    SlotQuery,
)
from caretrack.booking.service import reminders
from caretrack.booking.zones import working_zone
from caretrack.core import clock
from caretrack.core.audit.service import Actor
from caretrack.core.errors import NotFound
from caretrack.core.roles import Role
from caretrack.http.apikit import ApiRouter
from caretrack.http.clients import address_of

api = ApiRouter("booking")
PATIENT, DOCTOR, ADMIN = [Role.PATIENT], [Role.DOCTOR], [Role.ADMIN]


def _settings(request: Request):
    return request.app.state.settings


async def _out(appointment) -> AppointmentOut:
    await appointment.fetch_related("doctor", "patient")
    return AppointmentOut.of(appointment)


@api.get("/doctors", summary="Search bookable doctors", roles=None, query=DoctorQuery, response=DoctorList)
async def api_doctors(request: Request, query: DoctorQuery) -> DoctorList:
    rows, total = await applications.search_doctors(query.specialty, query.language, query.name, query.limit,
                                                    query.offset, at=clock.now(request))
    return DoctorList(doctors=[DoctorOut.of(p) for p in rows], total=total)


@api.get("/doctors/{doctor_id:id}/slots", summary="A doctor's free slots", roles=None, query=SlotQuery,
         response=SlotList, errors=(404,),
         description="Free slots from today (or `start`, a date in the doctor's zone) for `days` dates; "
                     "`local_start` is in the signed-in user's time zone.")
async def api_slots(request: Request, user: User, query: SlotQuery) -> SlotList:
    slots = await service.list_slots(request.path_params["doctor_id"], start_day=query.start, days=query.days,
                                     at=clock.now(request))
    zone = await working_zone(user)
    tz = slotlib.zone(zone)
    return SlotList(doctor_id=request.path_params["doctor_id"], time_zone=zone,
                    slots=[SlotOut(starts_at=s.starts_at, ends_at=s.ends_at,
                                   local_start=s.starts_at.astimezone(tz).isoformat()) for s in slots])


@api.post("/holds", summary="Hold a slot for 5 minutes", roles=PATIENT, body=HoldSlot, response=AppointmentOut,
          status=201, errors=(404, 409))
async def api_hold(request: Request, user: User, body: HoldSlot) -> AppointmentOut:
    return await _out(await service.do_hold(user, body, at=clock.now(request)))


@api.post("/bookings", summary="Book and pay for a slot", roles=PATIENT, body=BookSlot, response=AppointmentOut,
          status=201, errors=(402, 404, 409),
          description="Send an Idempotency-Key header: a retry with the same key returns the first booking "
                      "and charges once. Your own hold on the slot is converted.")
async def api_book(request: Request, user: User, body: BookSlot) -> AppointmentOut:
    appointment = await service.do_book(_settings(request), user, body,
                                        idempotency_key=request.headers.get("idempotency-key"),
                                        client_address=address_of(request), at=clock.now(request))
    return await _out(appointment)


@api.get("/appointments", summary="Your appointments", roles=[Role.PATIENT, Role.DOCTOR], query=AppointmentQuery,
         response=AppointmentList)
async def api_appointments(request: Request, user: User, query: AppointmentQuery) -> AppointmentList:
    rows = await service.list_appointments(user, upcoming=query.upcoming, at=clock.now(request))
    return AppointmentList(appointments=[AppointmentOut.of(a) for a in rows])


@api.get("/appointments/{appointment_id:id}", summary="One appointment", roles=None, response=AppointmentOut,
         errors=(404,), description="Its patient, its doctor or an admin; anyone else gets 404. A hold that "
                                     "lapsed answers its patient with status `expired`, a `notice` and `slots_url`.")
async def api_appointment(request: Request, user: User) -> AppointmentOut:
    appointment = await service.get_appointment(user, request.path_params["appointment_id"])
    out = AppointmentOut.of(appointment)
    if service.hold_expired(appointment, clock.now(request)):
        out = out.model_copy(update={
            "status": "expired", "notice": service.expired_hold_notice(appointment, await working_zone(user)),
            "slots_url": f"/api/v1/doctors/{appointment.doctor_id}/slots"})
    return out


@api.post("/appointments/{appointment_id:id}/cancel", summary="Cancel an appointment",
          roles=[Role.PATIENT, Role.DOCTOR], body=CancelRequest, response=AppointmentOut, errors=(404, 409))
async def api_cancel(request: Request, user: User, body: CancelRequest) -> AppointmentOut:
    return await _out(await service.do_cancel(_settings(request), user, request.path_params["appointment_id"],
                                              body, client_address=address_of(request), at=clock.now(request)))


@api.post("/appointments/{appointment_id:id}/reschedule", summary="Move an appointment to another slot",
          roles=[Role.PATIENT, Role.DOCTOR], body=RescheduleRequest, response=AppointmentOut, errors=(404, 409))
async def api_reschedule(request: Request, user: User, body: RescheduleRequest) -> AppointmentOut:
    return await _out(await service.do_reschedule(_settings(request), user, request.path_params["appointment_id"],
                                                  body, client_address=address_of(request),
                                                  at=clock.now(request)))


@api.post("/appointments/{appointment_id:id}/outcome", summary="Mark completed or no-show (after the start)",
          roles=DOCTOR, body=OutcomeRequest, response=AppointmentOut, errors=(404, 409))
async def api_outcome(request: Request, user: User, body: OutcomeRequest) -> AppointmentOut:
    return await _out(await service.do_record_outcome(_settings(request), user, request.path_params["appointment_id"],
                                                      body, client_address=address_of(request),
                                                      at=clock.now(request)))


@api.post("/doctors/me/availability", summary="Publish your hours and booking rules", roles=DOCTOR,
          body=AvailabilityIn, response=AvailabilityOut, errors=(403,))
async def api_availability(request: Request, user: User, body: AvailabilityIn) -> AvailabilityOut:
    availability = await service.do_set_availability(user, body)
    return AvailabilityOut.model_validate(availability, from_attributes=True)


@api.get("/admin/doctor-applications", summary="Doctor applications waiting for review", roles=ADMIN,
         response=ApplicationList)
async def api_applications(request: Request) -> ApplicationList:
    return ApplicationList(applications=[ApplicationOut.of(p) for p in
                                         await applications.list_applications(ApplicationStatus.PENDING)])


@api.post("/admin/doctor-applications/{doctor_id:id}/decision", summary="Approve or reject an application",
          roles=ADMIN, body=Decision, response=ApplicationOut, errors=(404, 409))
async def api_decide(request: Request, user: User, body: Decision) -> ApplicationOut:
    await applications.do_review(_settings(request), user, request.path_params["doctor_id"], body, address_of(request),
                                 at=clock.now(request))
    profile = await applications.get_profile(request.path_params["doctor_id"])
    if profile is None:
        raise NotFound("No such application.")
    return ApplicationOut.of(profile)


@api.post("/me/calendar-feed", summary="Create or replace your private calendar URL", roles=[Role.PATIENT, Role.DOCTOR],
          response=CalendarFeedOut, status=201, description="The previous URL stops working.")
async def api_feed(request: Request, user: User) -> CalendarFeedOut:
    return CalendarFeedOut(url=await calendar.do_regenerate_feed(_settings(request), user))


@api.delete("/me/calendar-feed", summary="Turn off your calendar URL", roles=[Role.PATIENT, Role.DOCTOR], status=204)
async def api_feed_off(request: Request, user: User) -> Response:
    await calendar.do_revoke_feed(user)
    return Response(status_code=204)



def _policy_out(policy: ReminderPolicy) -> ReminderPolicyOut:
    return ReminderPolicyOut(offsets=list(policy.offsets), grace_minutes=policy.grace_minutes,
                             updated_at=policy.updated_at)


@api.get("/admin/reminder-policy", summary="When consultation reminders go out", roles=ADMIN,
         response=ReminderPolicyOut)
async def api_reminder_policy(request: Request) -> ReminderPolicyOut:
    return _policy_out(await reminders.current_policy())


@api.put("/admin/reminder-policy", summary="Change when consultation reminders go out", roles=ADMIN,
         body=ReminderPolicyIn, response=ReminderPolicyOut,
         description="Offsets are minutes before the start. Upcoming bookings' reminders are re-planned.")
async def api_set_reminder_policy(request: Request, user: User, body: ReminderPolicyIn) -> ReminderPolicyOut:
    policy = await reminders.do_set_policy(Actor(user.id, address_of(request)), body, at=clock.now(request))
    return _policy_out(policy)
