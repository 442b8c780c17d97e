"""Care over the JSON API: the carer's day and task logging, the admin's packages and tasks,
progress against targets."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from caretrack.accounts.models import User
from caretrack.care import service
from caretrack.care.models import TaskCompletion
from caretrack.care.schemas import (
    CarerRef,
    CompletionIn,
    CompletionList,
    CompletionOut,
    PackageIn,
    PackageList,
    PackageOut,
    PackageSummary,
    ProgressOut,
    ProgressQuery,
    ProgressRowOut,
    TaskChange,
    TaskIn,
    TaskOut,
    TaskProgressOut,
    TodayOut,
)
from caretrack.care.service import visits
from caretrack.core import clock, crypto
from caretrack.core.roles import Role
from caretrack.http.apikit import ApiRouter
from caretrack.http.clients import address_of

api = ApiRouter("care")
ADMIN = [Role.ADMIN]
CARER = [Role.CARER]


# --- the carer -------------------------------------------------------------------------------


def _today_out(day: service.CarerDay, day_visits: list[visits.DayVisit]) -> TodayOut:
    return TodayOut(
        day=day.day,
        visits=[v.out() for v in day_visits],
        tasks=[TaskProgressOut(task=TaskOut.of(p.task), client_name=p.client_name, done=p.done,
                               expected=p.expected, period=p.period_label, window_state=p.window_state)
               for p in day.tasks])


@api.get("/care/today", summary="Your visits and tasks today, with progress toward each target", roles=CARER,
         response=TodayOut)
async def api_today(request: Request, user: User) -> TodayOut:
    at = clock.now(request)
    day_visits = await visits.carer_visits(user, address_of(request), at=at,
                                           late_after=visits.late_after(request.app.state.settings))
    return _today_out(await service.carer_today(user, address_of(request), at=at), day_visits)


@api.post("/care/tasks/{task_id:id}/completions", summary="Log a task as done or not done", roles=CARER,
          body=CompletionIn, response=CompletionOut, status=201, errors=(404, 409),
          description="Idempotent: a retry with the same `idempotency_key` returns the first record (200, "
                      "`replayed` true) and records nothing new.")
async def api_log(request: Request, user: User, body: CompletionIn) -> CompletionOut | Response:
    completion, created = await service.do_log_completion(
        user, request.path_params["task_id"], body, client_address=address_of(request), at=clock.now(request))
    return _completion_response(completion, created)


def _completion_response(completion: TaskCompletion, created: bool) -> CompletionOut | Response:
    out = CompletionOut.of(completion, crypto.unseal(completion.note, "task_completions.note"), replayed=not created)
    if created:
        return out
    return JSONResponse(out.model_dump(mode="json"), status_code=200)


@api.post("/care/completions/{completion_id:id}/correction", summary="Correct a completion you logged",
          roles=CARER, body=CompletionIn, response=CompletionOut, status=201, errors=(404, 409),
          description="Records a new completion that replaces the original; the original stays, marked "
                      "superseded, and the audit trail keeps what it said.")
async def api_correct(request: Request, user: User, body: CompletionIn) -> CompletionOut | Response:
    completion, created = await service.do_correct_completion(
        user, request.path_params["completion_id"], body, client_address=address_of(request), at=clock.now(request))
    return _completion_response(completion, created)


@api.get("/care/tasks/{task_id:id}/completions", summary="A task's completions, newest first",
         roles=[Role.CARER, Role.ADMIN], response=CompletionList, errors=(404,))
async def api_completions(request: Request, user: User) -> CompletionList:
    views = await service.list_completions(user, request.path_params["task_id"], address_of(request))
    return CompletionList(completions=[CompletionOut.of(v.completion, v.note) for v in views])


@api.get("/care/progress", summary="Completions against targets over a period", roles=[Role.CARER, Role.ADMIN],
         query=ProgressQuery, response=ProgressOut, errors=(404,),
         description="Carers see their own tasks; admins choose a carer or a package (or see everything).")
async def api_progress(request: Request, user: User, query: ProgressQuery) -> ProgressOut:
    rows = await service.progress(user, start=query.start, end=query.end, carer_id=query.carer_id,
                                  package_id=query.package_id, client_address=address_of(request))
    return ProgressOut(start=query.start, end=query.end, rows=[
        ProgressRowOut(task_id=r.task.id, label=r.label, done=r.done, expected=r.expected, percent=r.percent)
        for r in rows])


# --- the admin ------------------------------------------------------------------------------


@api.get("/care/packages", summary="Care packages (a carer sees their own)", roles=[Role.CARER, Role.ADMIN],
         response=PackageList)
async def api_packages(request: Request, user: User) -> PackageList:
    rows = await service.list_packages(user, address_of(request))
    return PackageList(packages=[PackageSummary(id=p.id, client_name=name, starts_on=p.starts_on, ends_on=p.ends_on)
                                 for p, name in rows])


@api.post("/care/packages", summary="Create a care package", roles=ADMIN, body=PackageIn, response=PackageOut,
          status=201)
async def api_create_package(request: Request, user: User, body: PackageIn) -> PackageOut:
    package = await service.do_create_package(user, body, address_of(request),
                                              request.app.state.settings.care_time_zone)
    return await service.get_package(user, package.id, address_of(request))


@api.get("/care/packages/{package_id:id}", summary="A care package with its client's details",
         roles=[Role.CARER, Role.ADMIN], response=PackageOut, errors=(404,))
async def api_package(request: Request, user: User) -> PackageOut:
    return await service.get_package(user, request.path_params["package_id"], address_of(request))


@api.post("/care/packages/{package_id:id}/carers", summary="Assign a carer to a package", roles=ADMIN,
          body=CarerRef, status=204, errors=(404,))
async def api_assign(request: Request, user: User, body: CarerRef) -> None:
    await service.do_assign_carer(user, request.path_params["package_id"], body.carer_id, address_of(request))


@api.post("/care/packages/{package_id:id}/tasks", summary="Add a task with a target to a package", roles=ADMIN,
          body=TaskIn, response=TaskOut, status=201, errors=(404,))
async def api_create_task(request: Request, user: User, body: TaskIn) -> TaskOut:
    task = await service.do_create_task(user, request.path_params["package_id"], body, address_of(request))
    return TaskOut.of(task)


@api.patch("/care/tasks/{task_id:id}", summary="Change, reassign or end a task", roles=ADMIN, body=TaskChange,
           response=TaskOut, errors=(404,))
async def api_update_task(request: Request, user: User, body: TaskChange) -> TaskOut:
    task = await service.do_update_task(user, request.path_params["task_id"], body, address_of(request))
    return TaskOut.of(task)
