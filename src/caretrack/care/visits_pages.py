"""Rota and visit pages: the admin's rota forms and the live list of a package's visits today on
its page; the carer's check-in and check-out buttons (forms that work without script; care.js
sends them as JSON with the phone's location when it gives one)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.care.pages import _package_page, carer_dashboard_context
from caretrack.care.service import rota, visits
from caretrack.care.visit_schemas import RotaEntryChange, RotaEntryIn, VisitCheck
from caretrack.core import clock
from caretrack.core.errors import CareTrackError
from caretrack.core.roles import Role
from caretrack.http.clients import address_of
from caretrack.http.pagekit import PageRouter, parse_form, redirect, render

pages = PageRouter()
ADMIN = [Role.ADMIN]
CARER = [Role.CARER]


def _entry_form(form: FormData) -> dict[str, Any]:
    data: dict[str, Any] = {k: str(form[k]) for k in ("start", "length") if form.get(k)}
    if "carer_id" in form:
        data["carer_id"] = str(form["carer_id"]) or None
    days = [str(d) for d in form.getlist("weekdays")]
    if days:
        data["weekdays"] = days
    return data


@pages.post("/admin/care/packages/{package_id:id}/rota", roles=ADMIN)
async def admin_add_visit(request: Request, user: User, form: FormData) -> Response:
    package_id = request.path_params["package_id"]
    data = {"weekdays": [], **_entry_form(form)}
    try:
        command = parse_form(RotaEntryIn, data)
        await rota.do_add_visit(user, package_id, command, address_of(request), at=clock.now(request))
    except CareTrackError as exc:
        return await _package_page(request, user, package_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/care/packages/{package_id}#rota")


@pages.post("/admin/care/rota/{entry_id:id}", roles=ADMIN)
async def admin_change_visit(request: Request, user: User, form: FormData) -> Response:
    entry_id = request.path_params["entry_id"]
    package_id = await rota.package_of(user, entry_id)
    try:
        if form.get("action") == "remove":
            await rota.do_remove_visit(user, entry_id, address_of(request), at=clock.now(request))
        else:
            command = parse_form(RotaEntryChange, _entry_form(form))
            await rota.do_change_visit(user, entry_id, command, address_of(request), at=clock.now(request))
    except CareTrackError as exc:
        return await _package_page(request, user, package_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/care/packages/{package_id}#rota")


@pages.get("/admin/care/packages/{package_id:id}/visits", roles=ADMIN)
async def admin_package_visits(request: Request, user: User) -> Response:
    """The package page's live list of today's visits, refetched by care-office.js on visit events."""
    day_visits = await visits.package_visits(user, request.path_params["package_id"], at=clock.now(request),
                                             late_after=visits.late_after(request.app.state.settings))
    return render(request, "care/_package_visits.html", {"day_visits": day_visits})


async def _check(request: Request, user: User, form: FormData, action: str) -> Response:
    entry_id = request.path_params["entry_id"]
    settings = request.app.state.settings
    try:
        command = parse_form(VisitCheck, {"on_date": str(form.get("on_date", ""))})
        do = visits.do_check_in if action == "in" else visits.do_check_out
        await do(user, entry_id, command, client_address=address_of(request), at=clock.now(request),
                 late_after=visits.late_after(settings))
    except CareTrackError as exc:
        context = await carer_dashboard_context(request, user)
        return render(request, "dashboards/carer.html", {"user": user, **context}, status_code=exc.status_code,
                      flashes=[("error", exc.message)])
    return redirect(f"/carer#visit-{entry_id}-{command.on_date.isoformat()}")


@pages.post("/carer/rota/{entry_id:id}/check-in", roles=CARER)
async def carer_check_in(request: Request, user: User, form: FormData) -> Response:
    return await _check(request, user, form, "in")


@pages.post("/carer/rota/{entry_id:id}/check-out", roles=CARER)
async def carer_check_out(request: Request, user: User, form: FormData) -> Response:
    return await _check(request, user, form, "out")
