"""Booking pages: applying and reviewing, hours, finding a doctor, holding and booking,
one appointment, the calendar feed."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from caretrack.accounts.models import User
from caretrack.booking import applications, attendance, calendar, forms, intake_forms, service
from caretrack.booking import slots as slotlib
from caretrack.booking.models import AppointmentStatus, Availability, AvailabilityException, DoctorProfile
from caretrack.booking.service import reminders
from caretrack.booking.status import status_label
from caretrack.booking.uploads import FORM_OVERHEAD_BYTES, MAX_DOCUMENT_BYTES, document_path
from caretrack.booking.zones import working_zone
from caretrack.core import clock
from caretrack.core.audit.service import Actor
from caretrack.core.errors import CareTrackError, NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.validation import parse_command
from caretrack.http.apikit import PUBLIC
from caretrack.http.clients import address_of
from caretrack.http.pagekit import PageRouter, field_problems, problem_flashes, redirect, render
from caretrack.intake import service as intake
from caretrack.payments import service as payments
from caretrack.payments.schemas import PurchaseRequest

pages = PageRouter()
PATIENT, DOCTOR, ADMIN = [Role.PATIENT], [Role.DOCTOR], [Role.ADMIN]
Flashes = list[tuple[str, str]]


def _settings(request: Request):
    return request.app.state.settings


def local(instant: datetime, time_zone: str) -> datetime:
    try:
        return instant.astimezone(slotlib.zone(time_zone))
    except ValidationError:
        return instant.astimezone(UTC)


def group_by_day(slots, time_zone: str) -> OrderedDict[date, list]:
    days: OrderedDict[date, list] = OrderedDict()
    for slot in slots:
        days.setdefault(local(slot.starts_at, time_zone).date(), []).append(slot)
    return days


# --- doctor: application --------------------------------------------------------------------


async def doctor_context(user: User, at: datetime | None = None) -> dict:
    """What the doctor's dashboard shows (dashboards.doctor_home renders it)."""
    at = at or service.now()
    profile = await DoctorProfile.get_or_none(user_id=user.id)
    availability = exceptions = None
    if profile is not None and profile.status == "approved":
        availability = await Availability.get_or_none(doctor_id=user.id)
        exceptions = await AvailabilityException.filter(doctor_id=user.id, on_date__gte=at.date()).order_by("on_date")
    upcoming = await service.list_appointments(user, upcoming=True, limit=50, at=at)
    return {"profile": profile, "availability": availability, "exceptions": exceptions or [],
            "upcoming": upcoming, "earnings": await payments.earnings_summary(user), "weekdays": slotlib.WEEKDAYS,
            "weekly_by_day": {w["weekday"]: w for w in (availability.weekly if availability else [])},
            "today": at.date(), "tz": await working_zone(user), "limits": service.LIMITS, "hours": {},
            "application_limits": applications.FIELD_LIMITS, "max_fee": applications.MAX_FEE,
            "tomorrow": at.date() + timedelta(days=1)}


async def _doctor_page(request: Request, user: User, flashes: Flashes | None = None, status: int = 200,
                       form: dict[str, str] | None = None, *, refusal: CareTrackError | None = None,
                       hours: dict[str, str] | None = None) -> Response:
    """The doctor's dashboard; after a refused form (`refusal`), every problem is listed and shown
    by its field, and the hours form (`hours`) keeps what was typed."""
    context = await doctor_context(user, clock.now(request))
    if refusal is not None:
        flashes, status = problem_flashes(refusal), refusal.status_code
    return render(request, "dashboards/doctor.html", {"user": user, "form": form or {}, **context,
                                                       "hours": hours or {}},
                  status_code=status, flashes=flashes, errors=field_problems(refusal) if refusal else None)


@pages.post("/doctor/application", roles=DOCTOR, max_body=MAX_DOCUMENT_BYTES + FORM_OVERHEAD_BYTES)
async def submit_application(request: Request, user: User, form: FormData) -> Response:
    """Multipart with a PDF; the page router reads it with a size limit before parsing."""
    values = forms.application_values(form)
    upload = form.get("document")
    data, name = None, None
    try:
        if upload is not None and hasattr(upload, "read"):
            data = await upload.read()
            name = upload.filename
    finally:
        await form.close()
    if not data:
        data = None
    elif len(data) > MAX_DOCUMENT_BYTES:
        return await _doctor_page(request, user, [("error", "The document is larger than 5 MiB.")], 413, values)
    try:
        await applications.do_apply(_settings(request), user, forms.application(values, clock.now(request).date()),
                                    data, address_of(request), name, at=clock.now(request))
    except CareTrackError as exc:
        return await _doctor_page(request, user, form=values, refusal=exc)
    return redirect("/doctor")


def _download(request: Request, profile: DoctorProfile | None) -> Response:
    if profile is None or not profile.document_name:
        raise NotFound("No document.")
    path = document_path(_settings(request), profile.document_name)
    if not path.exists():
        raise NotFound("The document file is missing.")
    return FileResponse(path, media_type="application/pdf", filename=f"licence-{profile.user_id}.pdf",
                        content_disposition_type="attachment",
                        headers={"x-content-type-options": "nosniff"})


@pages.get("/doctor/application/document", roles=DOCTOR)
async def own_document(request: Request, user: User) -> Response:
    return _download(request, await DoctorProfile.get_or_none(user_id=user.id))


@pages.get("/admin/doctors/{doctor_id:id}/document", roles=ADMIN)
async def admin_document(request: Request) -> Response:
    return _download(request, await DoctorProfile.get_or_none(user_id=request.path_params["doctor_id"]))


# --- doctor: hours ---------------------------------------------------------------------------


@pages.post("/doctor/availability", roles=DOCTOR)
async def save_availability(request: Request, user: User, form: FormData) -> Response:
    try:
        command = forms.availability(form, await Availability.get_or_none(doctor_id=user.id))
        await service.do_set_availability(user, command)
    except CareTrackError as exc:
        typed = {name: str(value)[:64] for name, value in form.multi_items() if name != "csrf_token"}
        return await _doctor_page(request, user, refusal=exc, hours=typed)
    return await _doctor_page(request, user, [("success", "Your hours are published.")])


@pages.post("/doctor/exceptions", roles=DOCTOR)
async def add_exception(request: Request, user: User, form: FormData) -> Response:
    try:
        await service.do_add_exception(user, forms.exception(form))
    except CareTrackError as exc:
        return await _doctor_page(request, user, refusal=exc)
    return redirect("/doctor")


@pages.post("/doctor/exceptions/{exception_id:id}/delete", roles=DOCTOR)
async def remove_exception(request: Request, user: User) -> Response:
    await service.do_remove_exception(user, request.path_params["exception_id"])
    return redirect("/doctor")


# --- admin: review ---------------------------------------------------------------------------


@pages.get("/admin/doctors", roles=ADMIN)
async def review_queue(request: Request) -> Response:
    status = request.query_params.get("status", "pending")
    rows = await applications.list_applications(None if status == "all" else status)
    return render(request, "booking/admin_queue.html", {"applications": rows, "status": status})


@pages.get("/admin/doctors/{doctor_id:id}", roles=ADMIN)
async def review_page(request: Request) -> Response:
    profile = await applications.get_profile(request.path_params["doctor_id"])
    if profile is None:
        raise NotFound(f"No doctor application with id {request.path_params['doctor_id']}.")
    return render(request, "booking/admin_application.html", {"profile": profile})


@pages.post("/admin/doctors/{doctor_id:id}", roles=ADMIN)
async def review(request: Request, user: User, form: FormData) -> Response:
    doctor_id = request.path_params["doctor_id"]
    try:
        await applications.do_review(_settings(request), user, doctor_id, forms.review(form), address_of(request),
                                     at=clock.now(request))
        flashes, status = [("success", "Decision saved; the doctor has been told.")], 200
    except CareTrackError as exc:
        flashes, status = [("error", exc.message)], exc.status_code
    profile = await applications.get_profile(doctor_id)
    if profile is None:
        raise NotFound(f"No doctor application with id {doctor_id}.")
    return render(request, "booking/admin_application.html", {"profile": profile}, status_code=status,
                  flashes=flashes)


# --- admin: reminders -------------------------------------------------------------------------


async def _reminders_page(request: Request, flashes: Flashes | None = None, status: int = 200,
                          offsets: str | None = None, grace: str | None = None) -> Response:
    policy = await reminders.current_policy()
    return render(request, "booking/admin_reminders.html", {
        "offsets": offsets if offsets is not None else ", ".join(forms.describe_offset(m) for m in policy.offsets),
        "grace": grace if grace is not None else str(policy.grace_minutes), "policy": policy,
    }, status_code=status, flashes=flashes)


@pages.get("/admin/reminders", roles=ADMIN)
async def reminder_settings(request: Request) -> Response:
    return await _reminders_page(request)


@pages.post("/admin/reminders", roles=ADMIN)
async def save_reminder_settings(request: Request, user: User, form: FormData) -> Response:
    try:
        await reminders.do_set_policy(Actor(user.id, address_of(request)), forms.reminder_policy(form),
                                      at=clock.now(request))
    except CareTrackError as exc:
        return await _reminders_page(request, [("error", exc.message)], exc.status_code,
                                     str(form.get("offsets", ""))[:200], str(form.get("grace_minutes", ""))[:10])
    return await _reminders_page(request, [("success", "Saved; upcoming bookings' reminders follow the new times.")])


# --- patient: find, hold, book ----------------------------------------------------------------


@pages.get("/doctors", roles=PATIENT)
async def find_doctor(request: Request, user: User) -> Response:
    q = {k: request.query_params.get(k, "")[:80] for k in ("specialty", "language", "name")}
    rows, total = await applications.search_doctors(q["specialty"], q["language"], q["name"], limit=30,
                                                    at=clock.now(request))
    next_slots = {}
    for profile in rows:
        try:
            next_slots[profile.user_id] = await service.list_slots(profile.user_id, days=14, limit=3,
                                                                   at=clock.now(request))
        except CareTrackError:
            next_slots[profile.user_id] = []
    return render(request, "booking/find.html", {"doctors": rows, "total": total, "q": q, "next_slots": next_slots,
                                                 "tz": await working_zone(user)})


@pages.get("/doctors/{doctor_id:id}", roles=PATIENT)
async def doctor_page(request: Request, user: User, flashes: Flashes | None = None,
                      status: int = 200) -> Response:
    doctor_id = request.path_params["doctor_id"]
    profile = await applications.get_profile(doctor_id)
    if profile is None or not applications.is_bookable(profile):
        raise NotFound(f"No bookable doctor with id {doctor_id}.")
    try:
        slots = await service.list_slots(doctor_id, days=14, at=clock.now(request))
    except NotFound:
        slots = []
    tz = await working_zone(user)
    return render(request, "booking/doctor.html", {
        "profile": profile, "days": group_by_day(slots, tz), "tz": tz,
        "balance": await payments.balance_of(user),
        "consultation_types": await intake.offered_types(doctor_id)}, status_code=status, flashes=flashes)


@pages.post("/holds", roles=PATIENT)
async def hold(request: Request, user: User, form: FormData) -> Response:
    command = forms.hold(form)
    try:
        held = await service.do_hold(user, command, at=clock.now(request))
    except CareTrackError as exc:
        request.path_params["doctor_id"] = command.doctor_id
        return await doctor_page(request, user, [("error", exc.message)], exc.status_code)
    return redirect(f"/appointments/{held.id}")


@pages.post("/appointments/{appointment_id:id}/book", roles=PATIENT)
async def book(request: Request, user: User, form: FormData) -> Response:
    held = await service.get_appointment(user, request.path_params["appointment_id"])
    if service.hold_expired(held, clock.now(request)):
        return await appointment_page(request, user, [("error", service.expired_hold_notice(
            held, await working_zone(user)))], 409)
    try:
        command = forms.book(held.doctor_id, held.starts_at, forms.consultation_type(form))
        appointment = await service.do_book(_settings(request), user, command,
                                            idempotency_key=str(form.get("idempotency_key", "")) or None,
                                            client_address=address_of(request), at=clock.now(request))
    except CareTrackError as exc:
        return await appointment_page(request, user, [("error", exc.message)], exc.status_code)
    return redirect(f"/appointments/{appointment.id}")


# --- one appointment -----------------------------------------------------------------------------


@pages.get("/appointments/{appointment_id:id}", roles=None)
async def appointment_page(request: Request, user: User, flashes: Flashes | None = None,
                           status: int = 200) -> Response:
    appointment = await service.get_appointment(user, request.path_params["appointment_id"])
    now = clock.now(request)
    tz = await working_zone(user)
    presence = await attendance.presence(appointment.id)
    context = {"a": appointment, "tz": tz, "now": now,
               "is_patient": user.id == appointment.patient_id, "is_doctor": user.id == appointment.doctor_id,
               "idempotency_key": secrets.token_urlsafe(16), "reschedule_days": {}, "presence": presence,
               "status_label": status_label,
               "expired_notice": service.expired_hold_notice(appointment, tz)
               if service.hold_expired(appointment, now) else None}
    if appointment.status == AppointmentStatus.BOOKED and appointment.starts_at > now and not presence.took_place:
        try:
            slots = await service.list_slots(appointment.doctor_id, days=14, limit=60, at=now)
            context["reschedule_days"] = group_by_day(slots, tz)
        except CareTrackError:
            pass
        context["refund_now"] = service.refund_for(appointment, user.id != appointment.patient_id, now)
    if appointment.status == AppointmentStatus.HELD:
        context["balance"] = await payments.balance_of(user)
    # Panels of features above booking (the visit summary) and beside it (follow-ups), given by site.
    for panel in getattr(request.app.state, "appointment_panels", ()):
        context.update(await panel(user, appointment, now))
    context.update(await intake_forms.intake_context(user, appointment))
    return render(request, "booking/appointment.html", context, status_code=status, flashes=flashes)


CALENDAR_STATUSES = frozenset({AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW,
                               AppointmentStatus.CANCELLED})


@pages.get("/appointments/{appointment_id:id}/calendar.ics", roles=None)
async def appointment_calendar(request: Request, user: User) -> Response:
    """The appointment for the reader's calendar: only its patient's and its doctor's (404 for
    anyone else, and for a hold, which is nobody's appointment yet)."""
    appointment_id = request.path_params["appointment_id"]
    appointment = await service.get_appointment(user, appointment_id)
    if not service.is_participant(user, appointment) or appointment.status not in CALENDAR_STATUSES:
        raise NotFound(f"No appointment with id {appointment_id}.")
    body = calendar.appointment_ics(appointment, appointment.doctor, appointment.patient, _settings(request),
                                    viewer=user)
    return Response(body, media_type="text/calendar; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="appointment-{appointment.id}.ics"',
        "cache-control": "private, no-store", "x-content-type-options": "nosniff"})


@pages.post("/appointments/{appointment_id:id}/intake", roles=PATIENT)
async def submit_intake(request: Request, user: User, form: FormData) -> Response:
    try:
        await intake_forms.submit(user, request.path_params["appointment_id"], form, at=clock.now(request))
    except CareTrackError as exc:
        request.state.intake_values = intake_forms.typed(form)  # shown again beside the errors
        return await appointment_page(request, user, [("error", exc.message)], exc.status_code)
    return await appointment_page(request, user, [("success", "Thank you: your answers and consent are saved.")])


@pages.post("/appointments/{appointment_id:id}/cancel", roles=[Role.PATIENT, Role.DOCTOR])
async def cancel(request: Request, user: User, form: FormData) -> Response:
    try:
        await service.do_cancel(_settings(request), user, request.path_params["appointment_id"], forms.cancel(form),
                                client_address=address_of(request), at=clock.now(request))
    except CareTrackError as exc:
        return await appointment_page(request, user, [("error", exc.message)], exc.status_code)
    return await appointment_page(request, user, [("success", "The appointment is cancelled.")])


@pages.post("/appointments/{appointment_id:id}/reschedule", roles=[Role.PATIENT, Role.DOCTOR])
async def reschedule(request: Request, user: User, form: FormData) -> Response:
    command = forms.reschedule(form)
    if command is None:
        return await appointment_page(request, user, [("error", "Choose a new time.")], 422)
    try:
        await service.do_reschedule(_settings(request), user, request.path_params["appointment_id"], command,
                                    client_address=address_of(request), at=clock.now(request))
    except CareTrackError as exc:
        return await appointment_page(request, user, [("error", exc.message)], exc.status_code)
    return await appointment_page(request, user, [("success", "The appointment has moved.")])


@pages.post("/appointments/{appointment_id:id}/outcome", roles=DOCTOR)
async def outcome(request: Request, user: User, form: FormData) -> Response:
    try:
        await service.do_record_outcome(_settings(request), user, request.path_params["appointment_id"],
                                        forms.outcome(form), client_address=address_of(request),
                                        at=clock.now(request))
    except CareTrackError as exc:
        return await appointment_page(request, user, [("error", exc.message)], exc.status_code)
    return await appointment_page(request, user, [("success", "Saved.")])


# --- the wallet (credits or earnings) and the calendar feed --------------------------------------
# The page is booking's because it shows the calendar feed beside the statement; payments,
# a floor below, gives the statement and the purchase.


async def _credits_page(request: Request, user: User, flashes: Flashes | None = None,
                        status: int = 200) -> Response:
    return render(request, "booking/credits.html", {
        "statement": await payments.statement_view(user), "config": payments.config_of(request.app),
        "labels": payments.KIND_LABELS, "feed_url": await calendar.feed_url(_settings(request), user),
        "checkout_done": request.query_params.get("checkout") == "done"}, status_code=status, flashes=flashes)


@pages.get("/credits", roles=[Role.PATIENT, Role.DOCTOR])
async def credits_page(request: Request, user: User) -> Response:
    return await _credits_page(request, user)


@pages.post("/credits/buy", roles=[Role.PATIENT])
async def buy(request: Request, user: User, form: FormData) -> Response:
    try:
        command = parse_command(PurchaseRequest, {"credits": str(form.get("credits", ""))})
        result = await payments.do_purchase(_settings(request), payments.config_of(request.app),
                                            payments.provider_of(request.app), user, command)
    except CareTrackError as exc:
        return await _credits_page(request, user, [("error", exc.message)], exc.status_code)
    if result.checkout_url:
        return redirect(result.checkout_url)
    return await _credits_page(request, user, [("success", f"{command.credits} credits added.")])


# --- calendar feed -------------------------------------------------------------------------------


@pages.get("/calendar/{token:str}", roles=PUBLIC)
async def calendar_feed(request: Request) -> Response:
    token = request.path_params["token"]
    if not token.endswith(".ics"):
        raise NotFound("No such calendar.")
    body = await calendar.feed_ics(_settings(request), token[:-4])
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"cache-control": "private, max-age=300", "referrer-policy": "no-referrer"})


@pages.post("/calendar-feed", roles=[Role.PATIENT, Role.DOCTOR])
async def regenerate_feed(request: Request, user: User, form: FormData) -> Response:
    if form.get("action") == "off":
        await calendar.do_revoke_feed(user)
    else:
        await calendar.do_regenerate_feed(_settings(request), user)
    return redirect("/credits#calendar")


