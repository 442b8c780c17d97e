"""Follow-up offers in pages: the doctor's offer form (on the appointment page, and on its
own page where a refused offer comes back with the reason), and the patient's offer page
with its one-step booking."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.booking import followups
from caretrack.booking.followup_schemas import FollowUpBook, FollowUpCreate
from caretrack.booking.service import get_appointment
from caretrack.booking.zones import working_zone
from caretrack.core import clock, timetext
from caretrack.core.errors import CareTrackError
from caretrack.core.roles import Role
from caretrack.http.clients import address_of
from caretrack.http.pagekit import PageRouter, parse_form, redirect, render
from caretrack.payments import service as payments

pages = PageRouter()
FIELDS = ("starts_at", "from_date", "until_date")


async def _offer_form(request: Request, user: User, *, values: dict[str, str] | None = None,
                      error: str | None = None, status: int = 200) -> Response:
    appointment = await get_appointment(user, request.path_params["appointment_id"])
    context = await followups.panel(user, appointment, clock.now(request))
    if "follow_up_slots" not in context:
        return redirect(f"/appointments/{appointment.id}#follow-up")
    return render(request, "booking/follow_up_new.html", {"a": appointment, "tz": await working_zone(user),
                                                          "when": timetext.show, "values": values or {}, **context},
                  status_code=status, flashes=[("error", error)] if error else None)


@pages.get("/appointments/{appointment_id:id}/follow-ups/new", roles=[Role.DOCTOR, Role.PATIENT])
async def offer_page(request: Request, user: User) -> Response:
    return await _offer_form(request, user)


@pages.post("/appointments/{appointment_id:id}/follow-ups", roles=[Role.DOCTOR])
async def offer(request: Request, user: User, form: FormData) -> Response:
    values = {name: str(form.get(name, ""))[:40] for name in FIELDS if form.get(name)}
    try:
        command = parse_form(FollowUpCreate, values)
        await followups.do_offer(request.app.state.settings, user, request.path_params["appointment_id"], command,
                                 at=clock.now(request), client_address=address_of(request))
    except CareTrackError as exc:
        return await _offer_form(request, user, values=values, error=exc.message, status=exc.status_code)
    return redirect(f"/appointments/{request.path_params['appointment_id']}#follow-up")


async def _offer_page(request: Request, user: User, *, error: str | None = None, status: int = 200) -> Response:
    at = clock.now(request)
    offer = await followups.get_offer(user, request.path_params["offer_id"])
    view = await followups.view(offer, user, at)
    return render(request, "booking/follow_up.html", {
        "offer": view, "is_patient": user.id == offer.patient_id, "tz": await working_zone(user), "when": timetext.show,
        "balance": await payments.balance_of(user) if user.id == offer.patient_id else None,
    }, status_code=status, flashes=[("error", error)] if error else None)


@pages.get("/follow-ups/{offer_id:id}", roles=[Role.PATIENT, Role.DOCTOR])
async def follow_up_page(request: Request, user: User) -> Response:
    return await _offer_page(request, user)


@pages.post("/follow-ups/{offer_id:id}/book", roles=[Role.PATIENT])
async def book_follow_up(request: Request, user: User, form: FormData) -> Response:
    try:
        command = parse_form(FollowUpBook, {"starts_at": str(form["starts_at"])[:40]} if form.get("starts_at") else {})
        appointment = await followups.do_accept(request.app.state.settings, user, request.path_params["offer_id"],
                                                command, at=clock.now(request), client_address=address_of(request))
    except CareTrackError as exc:
        return await _offer_page(request, user, error=exc.message, status=exc.status_code)
    return redirect(f"/appointments/{appointment.id}")
