"""Care over HTTP: the carer's day and task logging, the admin's packages and tasks, progress
charts; JSON API and pages. Also the periodic check for missed tasks and due renewals."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, time, timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from caretrack.accounts.models import User
from caretrack.care import service
from caretrack.care.models import Period
from caretrack.care.schemas import (
    CarerOut,
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
    VisitOut,
)
from caretrack.core import clock
from caretrack.core.errors import CareTrackError
from caretrack.core.logs import get_logger
from caretrack.core.loops import pause, stop_loops
from caretrack.core.roles import Role
from caretrack.core.validation import id_from_text
from caretrack.http.apikit import ApiRouter
from caretrack.http.clients import client_address
from caretrack.http.pagekit import PageRouter, redirect, render
from caretrack.reports.charts import Bar, bar_chart, column_chart

api = ApiRouter("care")
pages = PageRouter()
ADMIN = [Role.ADMIN]
CARER = [Role.CARER]
CHECK_SECONDS = 300
FIRST_CHECK_SECONDS = 30.0  # after start-up settles
log = get_logger("caretrack.care")


# --- lifespan: the periodic check ------------------------------------------------------------


async def periodic_check() -> None:
    from caretrack.assessments.service import check_renewals

    missed = await service.check_missed()
    renewals = await check_renewals()
    if missed or renewals:
        log.info("care check", missed=missed, renewals=renewals)


async def _loop(first_delay: float, stopping: asyncio.Event) -> None:
    await pause(stopping, first_delay)
    while not stopping.is_set():
        try:
            await periodic_check()
        except asyncio.CancelledError:
            raise
        except Exception:  # a failed sweep is retried at the next tick
            log.exception("care check failed")
        await pause(stopping, CHECK_SECONDS)


async def start(app) -> None:
    app.state.care_stop = asyncio.Event()
    app.state.care_check = asyncio.create_task(_loop(FIRST_CHECK_SECONDS, app.state.care_stop), name="care-check")


async def stop(app) -> None:
    await stop_loops([app.state.care_check], app.state.care_stop)


def _address(request: Request) -> str | None:
    return client_address(request.scope)


def _period(params, today: date, default_days: int = 7) -> tuple[date, date]:
    start = service.check_date(params.get("start") or None, "start date", required=False)
    end = service.check_date(params.get("end") or None, "end date", required=False)
    end = end or today
    start = start or end - timedelta(days=default_days - 1)
    service.check_period(start, end)
    return start, end


def _int_param(params, name: str) -> int | None:
    return id_from_text(params.get(name), name)


# --- API: the carer --------------------------------------------------------------------------


def _today_out(day) -> TodayOut:
    return TodayOut(
        day=day.day,
        visits=[VisitOut(time=t, client_name=name, package_id=pid) for t, name, pid in day.visits],
        tasks=[TaskProgressOut(task=TaskOut.of(p.task), client_name=p.client_name, done=p.done,
                               expected=p.expected, period=p.period_label, window_state=p.window_state)
               for p in day.tasks])


@api.get("/care/today", summary="Your visits and tasks today, with progress toward each target", roles=CARER,
         response=TodayOut)
async def api_today(request: Request, user: User) -> TodayOut:
    return _today_out(await service.carer_today(user, _address(request), at=clock.now(request)))


@api.post("/care/tasks/{task_id:id}/completions", summary="Log a task as done or not done", roles=CARER,
          body=CompletionIn, response=CompletionOut, status=201, errors=(404, 409),
          description="Idempotent: a retry with the same `idempotency_key` returns the first record (200, "
                      "`replayed` true) and records nothing new.")
async def api_log(request: Request, user: User, body: CompletionIn) -> CompletionOut | Response:
    completion, created = await service.do_log_completion(
        user, request.path_params["task_id"], key=body.idempotency_key, status=body.status, reason=body.reason,
        note=body.note, occurred_at=body.occurred_at, client_address=_address(request),
        at=clock.now(request))
    return _completion_response(completion, created)


def _completion_response(completion, created: bool) -> CompletionOut | Response:
    from caretrack.core import crypto

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
        user, request.path_params["completion_id"], key=body.idempotency_key, status=body.status,
        reason=body.reason, note=body.note, occurred_at=body.occurred_at, client_address=_address(request),
        at=clock.now(request))
    return _completion_response(completion, created)


@api.get("/care/tasks/{task_id:id}/completions", summary="A task's completions, newest first",
         roles=[Role.CARER, Role.ADMIN], response=CompletionList, errors=(404,))
async def api_completions(request: Request, user: User) -> CompletionList:
    views = await service.list_completions(user, request.path_params["task_id"], _address(request))
    return CompletionList(completions=[CompletionOut.of(v.completion, v.note) for v in views])


@api.get("/care/progress", summary="Completions against targets over a period", roles=[Role.CARER, Role.ADMIN],
         query=ProgressQuery, response=ProgressOut, errors=(404,),
         description="Carers see their own tasks; admins choose a carer or a package (or see everything).")
async def api_progress(request: Request, user: User, query: ProgressQuery) -> ProgressOut:
    rows = await service.progress(user, start=query.start, end=query.end, carer_id=query.carer_id,
                                  package_id=query.package_id, client_address=_address(request))
    return ProgressOut(start=query.start, end=query.end, rows=[
        ProgressRowOut(task_id=r.task.id, label=r.label, done=r.done, expected=r.expected, percent=r.percent)
        for r in rows])


# --- API: the admin --------------------------------------------------------------------------


async def _package_out(user: User, package_id: int, address: str | None) -> PackageOut:
    view = await service.get_package(user, package_id, address)
    return PackageOut(id=view.id, client_name=view.client_name, address=view.address, care_notes=view.care_notes,
                      starts_on=view.starts_on, ends_on=view.ends_on, visit_times=view.visit_times,
                      carers=[CarerOut(id=c.id, full_name=c.full_name) for c in view.carers],
                      tasks=[TaskOut.of(t) for t in view.tasks])


@api.get("/care/packages", summary="Care packages (a carer sees their own)", roles=[Role.CARER, Role.ADMIN],
         response=PackageList)
async def api_packages(request: Request, user: User) -> PackageList:
    rows = await service.list_packages(user, _address(request))
    return PackageList(packages=[PackageSummary(id=p.id, client_name=name, starts_on=p.starts_on, ends_on=p.ends_on)
                                 for p, name in rows])


@api.post("/care/packages", summary="Create a care package", roles=ADMIN, body=PackageIn, response=PackageOut,
          status=201)
async def api_create_package(request: Request, user: User, body: PackageIn) -> PackageOut:
    package = await service.do_create_package(user, body.model_dump(), _address(request))
    return await _package_out(user, package.id, _address(request))


@api.get("/care/packages/{package_id:id}", summary="A care package with its client's details",
         roles=[Role.CARER, Role.ADMIN], response=PackageOut, errors=(404,))
async def api_package(request: Request, user: User) -> PackageOut:
    return await _package_out(user, request.path_params["package_id"], _address(request))


@api.post("/care/packages/{package_id:id}/carers", summary="Assign a carer to a package", roles=ADMIN,
          body=CarerRef, status=204, errors=(404,))
async def api_assign(request: Request, user: User, body: CarerRef) -> None:
    await service.do_assign_carer(user, request.path_params["package_id"], body.carer_id, _address(request))


@api.post("/care/packages/{package_id:id}/tasks", summary="Add a task with a target to a package", roles=ADMIN,
          body=TaskIn, response=TaskOut, status=201, errors=(404,))
async def api_create_task(request: Request, user: User, body: TaskIn) -> TaskOut:
    task = await service.do_create_task(user, request.path_params["package_id"], body.model_dump(), _address(request))
    return TaskOut.of(task)


@api.patch("/care/tasks/{task_id:id}", summary="Change, reassign or end a task", roles=ADMIN, body=TaskChange,
           response=TaskOut, errors=(404,))
async def api_update_task(request: Request, user: User, body: TaskChange) -> TaskOut:
    task = await service.do_update_task(user, request.path_params["task_id"], body.model_dump(exclude_none=True),
                                        _address(request))
    return TaskOut.of(task)


# --- pages: the carer ------------------------------------------------------------------------


async def carer_dashboard_context(request: Request, user: User) -> dict:
    from caretrack.assessments import service as assessments

    at = clock.now(request)
    await assessments.check_renewals(at, carer_id=user.id)  # on read, as well as periodically
    day = await service.carer_today(user, _address(request), at=at)
    attempts = [a for a in await assessments.carer_attempts(user.id) if a.status in assessments.OPEN]
    return {"day": day, "new_key": lambda: uuid.uuid4().hex, "reasons": service.NOT_DONE_REASONS,
            "competencies": await assessments.carer_competencies(user.id, at), "open_attempts": attempts}


@pages.get("/carer/today", roles=CARER)
async def carer_today_fragment(request: Request, user: User) -> Response:
    """The dashboard's live part, refetched by care.js when an event says it changed."""
    context = await carer_dashboard_context(request, user)
    return render(request, "care/_today.html", context)


@pages.post("/carer/tasks/{task_id:id}/log", roles=CARER)
async def log_task(request: Request, user: User, form) -> Response:
    task_id = request.path_params["task_id"]
    status = "not_done" if form.get("reason") else "done"
    at = clock.now(request)
    try:
        await service.do_log_completion(user, task_id, key=form.get("key"), status=status,
                                        reason=form.get("reason"), note=form.get("note"),
                                        occurred_at=_form_time(form.get("time"), at), client_address=_address(request),
                                        at=at)
    except CareTrackError as exc:
        context = await carer_dashboard_context(request, user)
        return render(request, "dashboards/carer.html", {"user": user, **context}, status_code=exc.status_code,
                      flashes=[("error", exc.message)])
    return redirect(f"/carer#task-{task_id}")


def _form_time(value, at: datetime) -> datetime | None:
    """A time of day from the form means its latest occurrence (UTC) up to now: 23:50 entered just
    after midnight is last night's visit, not one tonight that the service would refuse as future."""
    if not value:
        return None
    minutes = service.check_clock(value, "time")
    when = datetime.combine(at.date(), time(minutes // 60, minutes % 60), tzinfo=UTC)
    return when - timedelta(days=1) if when > at + service.FUTURE_GRACE else when


@pages.get("/carer/tasks/{task_id:id}", roles=CARER)
async def carer_task(request: Request, user: User) -> Response:
    task = await service.get_task(user, request.path_params["task_id"])
    completions = await service.list_completions(user, task.id, _address(request))
    return render(request, "care/carer_task.html", {"task": task, "completions": completions,
                                                    "new_key": uuid.uuid4().hex, "reasons": service.NOT_DONE_REASONS,
                                                    "clock": service.clock})


@pages.post("/carer/completions/{completion_id:id}/correct", roles=CARER)
async def correct_completion(request: Request, user: User, form) -> Response:
    completion_id = request.path_params["completion_id"]
    status = "not_done" if form.get("reason") else "done"
    completion, _ = await service.do_correct_completion(
        user, completion_id, key=form.get("key"), status=status, reason=form.get("reason"), note=form.get("note"),
        client_address=_address(request), at=clock.now(request))
    return redirect(f"/carer/tasks/{completion.task_id}")


@pages.get("/carer/progress", roles=CARER)
async def carer_progress(request: Request, user: User) -> Response:
    start, end = _period(request.query_params, clock.now(request).date())
    rows = await service.progress(user, start=start, end=end, client_address=_address(request))
    return render(request, "care/progress.html", _progress_context(rows, start, end, "Your progress", None))


def _progress_context(rows, start: date, end: date, heading: str, daily) -> dict:
    return {"rows": rows, "start": start, "end": end, "heading": heading,
            "chart": bar_chart([Bar(r.label, r.done, r.expected) for r in rows],
                               title=f"Completions against targets, {start} to {end}"),
            "daily": column_chart([(d.strftime("%d %b"), n) for d, n in daily], title="Completions per day")
            if daily else None}


# --- pages: the admin ------------------------------------------------------------------------


@pages.get("/admin/care", roles=ADMIN)
async def admin_packages(request: Request, user: User) -> Response:
    return render(request, "care/admin_packages.html", {
        "packages": await service.list_packages(user, _address(request)), "carers": await service.carers(),
        "today": clock.now(request).date()})


@pages.post("/admin/care/packages", roles=ADMIN)
async def admin_create_package(request: Request, user: User, form) -> Response:
    data = {k: str(form.get(k, "")) for k in ("client_name", "address", "care_notes", "starts_on", "ends_on",
                                               "visit_times")}
    try:
        package = await service.do_create_package(user, data, _address(request))
    except CareTrackError as exc:
        return render(request, "care/admin_packages.html", {
            "packages": await service.list_packages(user, _address(request)), "carers": await service.carers(),
            "today": clock.now(request).date(), "form": data}, status_code=exc.status_code,
            flashes=[("error", exc.message)])
    return redirect(f"/admin/care/packages/{package.id}")


async def _package_page(request: Request, user: User, package_id: int, flashes=None, status_code: int = 200):
    view = await service.get_package(user, package_id, _address(request))
    start, end = _period(request.query_params, clock.now(request).date())
    rows = await service.progress(user, start=start, end=end, package_id=package_id)
    daily = await service.daily_done([r.task.id for r in rows], start, end)
    return render(request, "care/admin_package.html", {
        "package": view, "carers": await service.carers(), "periods": [p.value for p in Period],
        "clock": service.clock, **_progress_context(rows, start, end, "Progress", daily)},
        status_code=status_code, flashes=flashes)


@pages.get("/admin/care/packages/{package_id:id}", roles=ADMIN)
async def admin_package(request: Request, user: User) -> Response:
    return await _package_page(request, user, request.path_params["package_id"])


@pages.post("/admin/care/packages/{package_id:id}/carers", roles=ADMIN)
async def admin_assign(request: Request, user: User, form) -> Response:
    package_id = request.path_params["package_id"]
    try:
        await service.do_assign_carer(user, package_id, form.get("carer_id"), _address(request))
    except CareTrackError as exc:
        return await _package_page(request, user, package_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/care/packages/{package_id}")


@pages.post("/admin/care/packages/{package_id:id}/tasks", roles=ADMIN)
async def admin_create_task(request: Request, user: User, form) -> Response:
    package_id = request.path_params["package_id"]
    data = {k: str(form.get(k, "")) for k in ("carer_id", "title", "target", "period", "window_start", "window_end")}
    try:
        await service.do_create_task(user, package_id, data, _address(request))
    except CareTrackError as exc:
        return await _package_page(request, user, package_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/care/packages/{package_id}")


@pages.post("/admin/care/tasks/{task_id:id}", roles=ADMIN)
async def admin_update_task(request: Request, user: User, form) -> Response:
    task = await service.get_task(user, request.path_params["task_id"])
    data = {k: str(form[k]) for k in ("carer_id", "title", "target", "period", "window_start", "window_end")
            if form.get(k)}
    if form.get("action") == "end":
        data = {"is_active": False}
    try:
        await service.do_update_task(user, task.id, data, _address(request))
    except CareTrackError as exc:
        return await _package_page(request, user, task.package_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/care/packages/{task.package_id}")


@pages.get("/admin/care/progress", roles=ADMIN)
async def admin_progress(request: Request, user: User) -> Response:
    params = request.query_params
    start, end = _period(params, clock.now(request).date())
    carer_id = _int_param(params, "carer_id")
    rows = await service.progress(user, start=start, end=end, carer_id=carer_id, client_address=_address(request))
    daily = await service.daily_done([r.task.id for r in rows], start, end)
    carers = await service.carers()
    chosen = next((c for c in carers if c.id == carer_id), None)
    return render(request, "care/progress.html", {
        **_progress_context(rows, start, end, f"Progress: {chosen.full_name}" if chosen else "Progress: all carers",
                            daily), "carers": carers, "carer_id": carer_id})
