"""Consultation pages: the call, a guest's invitation and seat, recording downloads."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.accounts.sessions import cookie_options
from caretrack.booking import intake_forms
from caretrack.consultations import guests, service
from caretrack.consultations.models import GuestRole
from caretrack.consultations.schemas import GUEST_NAME_MAX, GuestJoin
from caretrack.core import clock
from caretrack.core.errors import CareTrackError
from caretrack.core.settings import Settings
from caretrack.core.validation import parse_command
from caretrack.http.apikit import PUBLIC
from caretrack.http.pagekit import PageRouter, download, redirect, render

pages = PageRouter()


def _settings(request: Request) -> Settings:
    return request.app.state.settings


@pages.get("/consultations/{appointment_id:id}", roles=None)
async def call_page(request: Request, user, flashes: list[tuple[str, str]] | None = None,
                    status: int = 200) -> Response:
    settings = _settings(request)
    access = await service.access_for(settings, user, request.path_params["appointment_id"])
    appointment = access.appointment
    await appointment.fetch_related("doctor", "patient")
    return render(request, "consultations/call.html", {
        "access": access, "appointment": appointment, "closed_reason": access.closed_reason(clock.now(request)),
        "user": user, "guest_roles": list(GuestRole),
        **await intake_forms.intake_context(user, appointment),
    }, status_code=status, flashes=flashes)


@pages.post("/consultations/{appointment_id:id}/intake", roles=None)
async def submit_intake(request: Request, user: User, form: FormData) -> Response:
    """The call page's pre-join intake: back to the call page, where Join now shows."""
    try:
        await intake_forms.submit(user, request.path_params["appointment_id"], form, at=clock.now(request))
    except CareTrackError as exc:
        request.state.intake_values = intake_forms.typed(form)
        return await call_page(request, user, [("error", exc.message)], exc.status_code)
    return redirect(f"/consultations/{request.path_params['appointment_id']}")


@pages.get("/consultations/guest", roles=PUBLIC)
async def guest_page(request: Request) -> Response:
    return render(request, "consultations/guest.html", {"name_max": GUEST_NAME_MAX})


@pages.post("/consultations/guest", roles=PUBLIC)
async def guest_redeem(request: Request, user: User | None, form: FormData) -> Response:
    """A guest opens their link (signed out or in alike): this browser now holds the seat."""
    settings = _settings(request)
    cookie = guests.seat_cookie_name(settings)
    try:
        command = parse_command(GuestJoin, form)
        invite, seat = await guests.do_redeem_guest_invite(command, user=user, at=clock.now(request),
                                                           held_seat=request.cookies.get(cookie))
    except CareTrackError as exc:
        return render(request, "consultations/guest.html", {"name_max": GUEST_NAME_MAX, "name": form.get("name", ""),
                                                               "token": form.get("token", "")},
                      status_code=exc.status_code, flashes=[("error", exc.message)])
    response = redirect("/consultations/guest/call")
    if seat is not None:
        access = await guests.guest_access(settings, invite)
        lifetime = int((access.closes_at - clock.now(request)).total_seconds())
        response.set_cookie(cookie, seat, max_age=max(lifetime, 60), **cookie_options(settings))
    return response


@pages.get("/consultations/guest/call", roles=PUBLIC)
async def guest_call_page(request: Request) -> Response:
    """The call, for the guest this browser's seat is: what the call shows and nothing of
    the appointment beyond the doctor's name and the time."""
    settings = _settings(request)
    invite = await guests.seat_invite(request.cookies.get(guests.seat_cookie_name(settings)))
    if invite is None:
        return render(request, "consultations/guest.html", {"name_max": GUEST_NAME_MAX}, status_code=404, flashes=[
            ("error", "This browser holds no guest seat (the link was opened in another browser, revoked, "
                      "or the call is over). Ask the doctor for a new link.")])
    access = await guests.guest_access(settings, invite)
    return render(request, "consultations/call.html", {
        "access": access, "appointment": access.appointment, "closed_reason": access.closed_reason(clock.now(request)),
        "user": {"id": guests.principal_of(invite).id}, "guest": guests.principal_of(invite),
    })


@pages.get("/consultations/{appointment_id:id}/recordings/{recording_id:id}", roles=None)
async def download_recording(request: Request, user) -> Response:
    recording, chunks = await service.open_recording(_settings(request), user, request.path_params["appointment_id"],
                                                     request.path_params["recording_id"])
    return download(chunks, "video/webm", f"consultation-{recording.appointment_id}-{recording.id}.webm")
