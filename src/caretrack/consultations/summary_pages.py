"""The visit summary's form on the appointment page (and its own page, where a refused form
comes back with its text and the reason)."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.booking.service import get_appointment
from caretrack.booking.zones import working_zone
from caretrack.consultations import summary
from caretrack.consultations.summary_schemas import SummaryWrite
from caretrack.core import clock, timetext
from caretrack.core.errors import CareTrackError
from caretrack.core.roles import Role
from caretrack.http.clients import address_of
from caretrack.http.pagekit import PageRouter, parse_form, redirect, render

pages = PageRouter()


async def _edit_page(request: Request, user: User, *, text: str | None = None, error: str | None = None,
                     status: int = 200) -> Response:
    appointment = await get_appointment(user, request.path_params["appointment_id"])
    context = await summary.panel(user, appointment, clock.now(request))
    if not context.get("visit_summary_writer"):
        return redirect(f"/appointments/{appointment.id}#visit-summary")
    if text is not None:
        context["visit_summary"].draft = text
    return render(request, "consultations/summary_edit.html", {
        "a": appointment, "tz": await working_zone(user), "when": timetext.show, **context}, status_code=status,
        flashes=[("error", error)] if error else None)


@pages.get("/appointments/{appointment_id:id}/summary", roles=[Role.DOCTOR, Role.PATIENT])
async def summary_page(request: Request, user: User) -> Response:
    return await _edit_page(request, user)


@pages.post("/appointments/{appointment_id:id}/summary", roles=[Role.DOCTOR])
async def save_summary(request: Request, user: User, form: FormData) -> Response:
    appointment_id = request.path_params["appointment_id"]
    text = str(form.get("text", ""))
    try:
        command = parse_form(SummaryWrite, {"text": text, "publish": form.get("action") == "publish"})
        await summary.do_save_summary(request.app.state.settings, user, appointment_id, command,
                                      at=clock.now(request), client_address=address_of(request))
    except CareTrackError as exc:
        return await _edit_page(request, user, text=text[:30000], error=exc.message, status=exc.status_code)
    return redirect(f"/appointments/{appointment_id}#visit-summary")
