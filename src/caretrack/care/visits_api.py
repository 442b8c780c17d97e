"""The rota and visits over the JSON API: admins schedule visits on a package's rota; carers
check in to and out of their visits; the office reads a package's visits of a day."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from caretrack.accounts.models import User
from caretrack.care.service import rota, visits
from caretrack.care.visit_schemas import (
    RotaEntryChange,
    RotaEntryIn,
    RotaEntryOut,
    RotaList,
    VisitCheck,
    VisitList,
    VisitOut,
    VisitQuery,
)
from caretrack.core import clock
from caretrack.core.roles import Role
from caretrack.http.apikit import ApiRouter
from caretrack.http.clients import address_of

api = ApiRouter("care")
ADMIN = [Role.ADMIN]
CARER = [Role.CARER]
BOTH = [Role.CARER, Role.ADMIN]
CLASH = "A carer's visits never overlap: a visit that would overlap another of its carer's, on any package " \
        "(compared in real time, whatever the packages' zones), is refused with 409 naming that visit."


@api.get("/care/packages/{package_id:id}/rota", summary="A package's rota (a carer sees their own visits)",
         roles=BOTH, response=RotaList, errors=(404,))
async def api_rota(request: Request, user: User) -> RotaList:
    return RotaList(entries=await rota.list_rota(user, request.path_params["package_id"]))


@api.post("/care/packages/{package_id:id}/rota", summary="Put a visit on a package's rota", roles=ADMIN,
          body=RotaEntryIn, response=RotaEntryOut, status=201, errors=(404, 409), description=CLASH)
async def api_add_visit(request: Request, user: User, body: RotaEntryIn) -> RotaEntryOut:
    return await rota.do_add_visit(user, request.path_params["package_id"], body, address_of(request),
                                   at=clock.now(request))


@api.patch("/care/rota/{entry_id:id}", summary="Change a visit on the rota (days, time, length, carer)",
           roles=ADMIN, body=RotaEntryChange, response=RotaEntryOut, errors=(404, 409), description=CLASH)
async def api_change_visit(request: Request, user: User, body: RotaEntryChange) -> RotaEntryOut:
    return await rota.do_change_visit(user, request.path_params["entry_id"], body, address_of(request),
                                      at=clock.now(request))


@api.delete("/care/rota/{entry_id:id}", summary="Take a visit off the rota", roles=ADMIN, status=204,
            errors=(404,), description="The visits already recorded against it stay.")
async def api_remove_visit(request: Request, user: User) -> None:
    await rota.do_remove_visit(user, request.path_params["entry_id"], address_of(request), at=clock.now(request))


@api.get("/care/packages/{package_id:id}/visits", summary="A package's visits on a day, with their state",
         roles=BOTH, query=VisitQuery, response=VisitList, errors=(404,),
         description="The day is the package's (its own time zone); today by default. Admins also get where "
                     "check-ins and check-outs were made (a PHI read, audited).")
async def api_package_visits(request: Request, user: User, query: VisitQuery) -> VisitList:
    settings = request.app.state.settings
    day_visits = await visits.package_visits(user, request.path_params["package_id"], at=clock.now(request),
                                             late_after=visits.late_after(settings), day=query.on_date)
    places = await visits.visit_locations(user, [v.visit.id for v in day_visits if v.visit], address_of(request))
    out = []
    for v in day_visits:
        item = v.out()
        place = places.get(v.visit.id) if v.visit else None
        if place:
            item = item.model_copy(update={"in_location": place["in"], "in_accuracy": place["in_accuracy"],
                                           "out_location": place["out"], "out_accuracy": place["out_accuracy"]})
        out.append(item)
    return VisitList(visits=out)


def _answer(view: visits.DayVisit, created: bool, status: int) -> VisitOut | Response:
    if created:
        return view.out()
    return JSONResponse(view.out(replayed=True).model_dump(mode="json"), status_code=status)


@api.post("/care/rota/{entry_id:id}/check-in", summary="Check in to one of your visits", roles=CARER,
          body=VisitCheck, response=VisitOut, status=201, errors=(404, 409),
          description="`on_date` is the visit's date on the package's clock. Location is optional. A repeat "
                      "returns the first check-in (200, `replayed` true) and records nothing new; from an hour "
                      "before the visit starts until 12 hours after it should have ended.")
async def api_check_in(request: Request, user: User, body: VisitCheck) -> VisitOut | Response:
    view, created = await visits.do_check_in(user, request.path_params["entry_id"], body,
                                             client_address=address_of(request), at=clock.now(request),
                                             late_after=visits.late_after(request.app.state.settings))
    return _answer(view, created, 200)


@api.post("/care/rota/{entry_id:id}/check-out", summary="Check out of a visit you checked in to", roles=CARER,
          body=VisitCheck, response=VisitOut, errors=(404, 409),
          description="Needs a check-in (409 without one). A repeat returns the first check-out "
                      "(`replayed` true).")
async def api_check_out(request: Request, user: User, body: VisitCheck) -> VisitOut | Response:
    view, changed = await visits.do_check_out(user, request.path_params["entry_id"], body,
                                              client_address=address_of(request), at=clock.now(request),
                                              late_after=visits.late_after(request.app.state.settings))
    return _answer(view, changed, 200)
