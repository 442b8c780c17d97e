"""Consultation pages: the call, a guest's invitation, recording downloads."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.booking import intake_forms
from caretrack.consultations import service
from caretrack.core import clock
from caretrack.core.errors import CareTrackError
from caretrack.core.settings import Settings
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
        "user": user, **await intake_forms.intake_context(user, appointment),
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


@pages.get("/consultations/guest", roles=None)
async def guest_page(request: Request) -> Response:
    return render(request, "consultations/guest.html")


@pages.post("/consultations/guest", roles=None)
async def guest_redeem(request: Request, user, form) -> Response:
    try:
        appointment_id = await service.do_redeem_guest_invite(user, str(form.get("token", "")), at=clock.now(request))
    except CareTrackError as exc:
        return render(request, "consultations/guest.html", status_code=exc.status_code,
                      flashes=[("error", exc.message)])
    return redirect(f"/consultations/{appointment_id}")


@pages.get("/consultations/{appointment_id:id}/recordings/{recording_id:id}", roles=None)
async def download_recording(request: Request, user) -> Response:
    recording, chunks = await service.open_recording(_settings(request), user, request.path_params["appointment_id"],
                                                     request.path_params["recording_id"])
    return download(chunks, "video/webm", f"consultation-{recording.appointment_id}-{recording.id}.webm")
