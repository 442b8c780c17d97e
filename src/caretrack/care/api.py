"""Care over the JSON API: the carer's day and task logging, the admin's packages and tasks,
progress against targets, handover notes and incidents."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from caretrack.accounts.models import User
from caretrack.care import service
from caretrack.care.models import CareTask, TaskCompletion
from caretrack.care.notes_schemas import (
    IncidentClose,
    IncidentIn,
    IncidentList,
    IncidentOut,
    IncidentQuery,
    NoteIn,
    NoteList,
    NoteOut,
)
from caretrack.care.schemas import (
    CarerRef,
    CompletionIn,
    CompletionList,
    CompletionOut,
    PackageChange,
    PackageEnd,
    PackageIn,
    PackageList,
    PackageListQuery,
    PackageOut,
    PackageSummary,
    ProgressOut,
    ProgressQuery,
    ProgressRowOut,
    RemoveCarerQuery,
    TaskChange,
    TaskIn,
    TaskOut,
    TaskProgressOut,
    TaskSaved,
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
                               expected=p.expected, period=p.period_label, window_state=p.window_state,
                               blocked=p.blocked, time_zone=day.time_zones[p.package_id])
               for p in day.tasks])


@api.get("/care/today", summary="Your visits and tasks today, with progress toward each target", roles=CARER,
         response=TodayOut, description="Each package's day, visit times and task windows are on its own clock "
                                        "(`time_zone`).")
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
        user, request.path_params["task_id"], body, client_address=address_of(request), at=clock.now(request),
        early_logs=request.app.state.settings.care_early_logs)
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
        user, request.path_params["completion_id"], body, client_address=address_of(request), at=clock.now(request),
        early_logs=request.app.state.settings.care_early_logs)
    return _completion_response(completion, created)


@api.get("/care/tasks/{task_id:id}/completions", summary="A task's completions, newest first",
         roles=[Role.CARER, Role.ADMIN], response=CompletionList, errors=(404,))
async def api_completions(request: Request, user: User) -> CompletionList:
    views = await service.list_completions(user, request.path_params["task_id"], address_of(request))
    return CompletionList(completions=[CompletionOut.of(v.completion, v.note) for v in views])


@api.get("/care/progress", summary="Completions against targets over a period", roles=[Role.CARER, Role.ADMIN],
         query=ProgressQuery, response=ProgressOut, errors=(404,),
         description="Carers see their own tasks; admins choose a carer or a package (or see everything). "
                     "Each package's own days count: a task expects nothing before it was created or after "
                     "it ended, and a change of target counts from the whole day it was made on.")
async def api_progress(request: Request, user: User, query: ProgressQuery) -> ProgressOut:
    figures = await service.figures(user, start=query.start, end=query.end, carer_id=query.carer_id,
                                    package_id=query.package_id, client_address=address_of(request))
    return ProgressOut(start=figures.start, end=figures.end, done=figures.done, expected=figures.expected,
                       percent=figures.percent, rows=[
        ProgressRowOut(task_id=r.task.id, label=r.label, done=r.done, expected=r.expected, percent=r.percent)
        for r in figures.rows])


# --- the admin ------------------------------------------------------------------------------


@api.get("/care/packages", summary="Care packages (a carer sees their own)", roles=[Role.CARER, Role.ADMIN],
         query=PackageListQuery, response=PackageList,
         description="Archived packages are left out; an admin lists them alone with `archived=true`.")
async def api_packages(request: Request, user: User, query: PackageListQuery) -> PackageList:
    rows = await service.list_packages(user, address_of(request), archived=query.archived)
    return PackageList(packages=[PackageSummary(id=p.id, client_name=name, starts_on=p.starts_on, ends_on=p.ends_on,
                                                archived_at=p.archived_at) for p, name in rows])


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


@api.patch("/care/packages/{package_id:id}", summary="Change a care package's details", roles=ADMIN,
           body=PackageChange, response=PackageOut, errors=(404, 409),
           description="Only the fields given change; a null or blank optional detail is cleared. The dates "
                       "must stay in order with the stored ones. An archived package is read-only (409).")
async def api_update_package(request: Request, user: User, body: PackageChange) -> PackageOut:
    package = await service.do_update_package(user, request.path_params["package_id"], body, address_of(request),
                                              at=clock.now(request))
    return await service.get_package(user, package.id, address_of(request))


@api.post("/care/packages/{package_id:id}/end", summary="End a care package on its last day", roles=ADMIN,
          body=PackageEnd, response=PackageOut, errors=(404, 409),
          description="From the day after `ends_on` the package is off its carers' day and its targets stop.")
async def api_end_package(request: Request, user: User, body: PackageEnd) -> PackageOut:
    package = await service.do_end_package(user, request.path_params["package_id"], body, address_of(request))
    return await service.get_package(user, package.id, address_of(request))


@api.post("/care/packages/{package_id:id}/archive", summary="Archive an ended care package", roles=ADMIN,
          response=PackageOut, errors=(404, 409),
          description="Hidden from the lists and from its carers, read-only for admins. A package still "
                      "running is refused (409): end it first.")
async def api_archive_package(request: Request, user: User) -> PackageOut:
    package = await service.do_archive_package(user, request.path_params["package_id"], address_of(request),
                                               at=clock.now(request))
    return await service.get_package(user, package.id, address_of(request))


@api.post("/care/packages/{package_id:id}/unarchive", summary="Bring an archived care package back",
          roles=ADMIN, response=PackageOut, errors=(404,))
async def api_unarchive_package(request: Request, user: User) -> PackageOut:
    package = await service.do_unarchive_package(user, request.path_params["package_id"], address_of(request))
    return await service.get_package(user, package.id, address_of(request))


@api.post("/care/packages/{package_id:id}/carers", summary="Assign a carer to a package", roles=ADMIN,
          body=CarerRef, status=204, errors=(404, 409))
async def api_assign(request: Request, user: User, body: CarerRef) -> None:
    await service.do_assign_carer(user, request.path_params["package_id"], body.carer_id, address_of(request))


@api.delete("/care/packages/{package_id:id}/carers/{carer_id:id}", summary="Take a carer off a package",
            roles=ADMIN, query=RemoveCarerQuery, status=204, errors=(404, 409),
            description="Their active tasks on the package go to `tasks_to`, a carer on the package; without "
                        "it they are flagged `needs_carer` until reassigned. Their visits on the rota go to "
                        "`tasks_to` (409 if they would clash with that carer's own) or to nobody; their visit "
                        "reminders are cancelled.")
async def api_remove_carer(request: Request, user: User, query: RemoveCarerQuery) -> None:
    await service.do_remove_carer(user, request.path_params["package_id"], request.path_params["carer_id"],
                                  query.tasks_to, address_of(request), at=clock.now(request))


@api.post("/care/packages/{package_id:id}/carers/{carer_id:id}/replacement",
          summary="Replace a carer on a package with another", roles=ADMIN, body=CarerRef, status=204,
          errors=(404, 409),
          description="The replacement (`carer_id` in the body) joins the package if not on it and takes over "
                      "the leaving carer's active tasks and visits (409 if a visit would clash with the replacement's "
                      "own); the leaving carer's visit reminders are cancelled.")
async def api_replace_carer(request: Request, user: User, body: CarerRef) -> None:
    await service.do_replace_carer(user, request.path_params["package_id"], request.path_params["carer_id"],
                                   body.carer_id, address_of(request), at=clock.now(request))


async def _saved(request: Request, task: CareTask) -> TaskSaved:
    warnings = await service.task_warnings(task, clock.now(request))
    return TaskSaved(**TaskOut.of(task).model_dump(), warnings=warnings)


@api.post("/care/packages/{package_id:id}/tasks", summary="Add a task with a target to a package", roles=ADMIN,
          body=TaskIn, response=TaskSaved, status=201, errors=(404, 409),
          description="The carer must be on the package (422 otherwise: assign them first). `warnings` says "
                      "when its carer does not hold the competency it needs current.")
async def api_create_task(request: Request, user: User, body: TaskIn) -> TaskSaved:
    task = await service.do_create_task(user, request.path_params["package_id"], body, address_of(request),
                                        at=clock.now(request))
    return await _saved(request, task)


@api.patch("/care/tasks/{task_id:id}", summary="Change, reassign or end a task", roles=ADMIN, body=TaskChange,
           response=TaskSaved, errors=(404, 409),
           description="A new carer must be on the task's package; reassigning a task flagged `needs_carer` "
                       "clears the flag. `warnings` says when its carer does not hold the competency it needs current.")
async def api_update_task(request: Request, user: User, body: TaskChange) -> TaskSaved:
    task = await service.do_update_task(user, request.path_params["task_id"], body, address_of(request),
                                        at=clock.now(request))
    return await _saved(request, task)


# --- handover notes and incidents -------------------------------------------------------------


def _note_out(view: service.NoteView) -> NoteOut:
    n = view.note
    return NoteOut(id=n.id, package_id=n.package_id, author_id=n.author_id, author_name=view.author_name,
                   text=view.text, for_office=n.for_office, for_next_carer=n.for_next_carer, written_at=n.written_at,
                   completion_id=n.completion_id, task_title=view.task_title)


def _incident_out(view: service.IncidentView) -> IncidentOut:
    i = view.incident
    return IncidentOut(id=i.id, package_id=i.package_id, kind=str(i.kind), kind_label=view.kind_label,
                       severity=str(i.severity), status=str(i.status), what_happened=view.what_happened,
                       action_taken=view.action_taken, occurred_at=i.occurred_at, raised_at=i.raised_at,
                       raised_by_id=i.raised_by_id, raised_by_name=i.raised_by.full_name, note_id=i.note_id,
                       acknowledged_by_id=i.acknowledged_by_id, acknowledged_at=i.acknowledged_at,
                       closed_by_id=i.closed_by_id, closed_at=i.closed_at, outcome=view.outcome)


@api.post("/care/packages/{package_id:id}/notes", summary="Leave a handover note on a package", roles=CARER,
          body=NoteIn, response=NoteOut, status=201, errors=(404,),
          description="For the office (the package's timeline, the admins' feed, the compliance report) and/or "
                      "for the next carer (beside the client on their dashboard). A note logged with a completion "
                      "is marked with `note_for_office` / `note_for_next_carer` on the completion instead.")
async def api_write_note(request: Request, user: User, body: NoteIn) -> NoteOut:
    at = clock.now(request)
    note = await service.do_write_note(user, request.path_params["package_id"], body,
                                       client_address=address_of(request), at=at)
    return NoteOut(id=note.id, package_id=note.package_id, author_id=user.id, author_name=user.full_name,
                   text=body.text, for_office=note.for_office, for_next_carer=note.for_next_carer,
                   written_at=note.written_at, completion_id=None)


@api.get("/care/packages/{package_id:id}/handover", summary="Notes left for you since your last visit",
         roles=CARER, response=NoteList, errors=(404,),
         description="The newest notes other carers marked for the next carer since your last completion on the "
                     "package before this visit (within a week), newest first.")
async def api_handover(request: Request, user: User) -> NoteList:
    views = await service.handover_for(user, request.path_params["package_id"], address_of(request),
                                       at=clock.now(request))
    return NoteList(notes=[_note_out(v) for v in views])


@api.post("/care/packages/{package_id:id}/incidents", summary="Raise an incident on a package",
          roles=[Role.CARER, Role.ADMIN], body=IncidentIn, response=IncidentOut, status=201, errors=(404,),
          description="The office is told at once (event `incident.raised`). `note_id` links the handover note "
                      "it is raised from.")
async def api_raise_incident(request: Request, user: User, body: IncidentIn) -> IncidentOut:
    incident = await service.do_raise_incident(user, request.path_params["package_id"], body,
                                               client_address=address_of(request), at=clock.now(request))
    return _incident_out(await service.get_incident(user, incident.id, address_of(request)))


@api.get("/care/incidents", summary="Incidents (a carer sees those they raised)", roles=[Role.CARER, Role.ADMIN],
         query=IncidentQuery, response=IncidentList,
         description="By default the open and acknowledged ones, most severe first, then newest.")
async def api_incidents(request: Request, user: User, query: IncidentQuery) -> IncidentList:
    views = await service.list_incidents(user, query, address_of(request))
    return IncidentList(incidents=[_incident_out(v) for v in views])


@api.get("/care/incidents/{incident_id:id}", summary="An incident", roles=[Role.CARER, Role.ADMIN],
         response=IncidentOut, errors=(404,))
async def api_incident(request: Request, user: User) -> IncidentOut:
    return _incident_out(await service.get_incident(user, request.path_params["incident_id"], address_of(request)))


@api.post("/care/incidents/{incident_id:id}/acknowledgement", summary="Acknowledge an open incident", roles=ADMIN,
          response=IncidentOut, errors=(404, 409), description="Records who took it on, and when.")
async def api_acknowledge_incident(request: Request, user: User) -> IncidentOut:
    incident = await service.do_acknowledge_incident(user, request.path_params["incident_id"],
                                                     client_address=address_of(request), at=clock.now(request))
    return _incident_out(await service.get_incident(user, incident.id, address_of(request)))


@api.post("/care/incidents/{incident_id:id}/closure", summary="Close an acknowledged incident with its outcome",
          roles=ADMIN, body=IncidentClose, response=IncidentOut, errors=(404, 409),
          description="An open incident is acknowledged first (409 otherwise), so the record shows when the office "
                      "took it on.")
async def api_close_incident(request: Request, user: User, body: IncidentClose) -> IncidentOut:
    incident = await service.do_close_incident(user, request.path_params["incident_id"], body,
                                               client_address=address_of(request), at=clock.now(request))
    return _incident_out(await service.get_incident(user, incident.id, address_of(request)))
