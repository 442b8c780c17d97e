"""Care pages: the carer's day and task logging, the admin's packages and tasks, progress
charts. The forms parse into the same commands as the API."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.assessments import service as assessments
from caretrack.care import service
from caretrack.care.models import Period
from caretrack.care.rota import DAY_NAMES
from caretrack.care.schedule import check_clock, clock
from caretrack.care.schemas import CarerRef, CompletionIn, PackageIn, TaskChange, TaskIn
from caretrack.care.service import rota, visits
from caretrack.core import clock as app_clock
from caretrack.core.errors import CareTrackError
from caretrack.core.roles import Role
from caretrack.core.validation import id_from_text
from caretrack.http.charts import Bar, bar_chart, column_chart
from caretrack.http.clients import address_of
from caretrack.http.pagekit import PageRouter, parse_form, redirect, render

pages = PageRouter()
ADMIN = [Role.ADMIN]
CARER = [Role.CARER]


def _period(request: Request, default_days: int = 7) -> tuple[date, date]:
    params = request.query_params
    return service.period_of(params.get("start"), params.get("end"), app_clock.now(request).date(), default_days)


# --- the carer -------------------------------------------------------------------------------


async def carer_dashboard_context(request: Request, user: User) -> dict[str, Any]:
    at = app_clock.now(request)
    day = await service.carer_today(user, address_of(request), at=at)
    day_visits = await visits.carer_visits(user, address_of(request), at=at,
                                           late_after=visits.late_after(request.app.state.settings))
    attempts = [a for a in await assessments.carer_attempts(user.id) if a.status in assessments.OPEN]
    return {"day": day, "visits": day_visits, "new_key": lambda: uuid.uuid4().hex, "reasons": service.NOT_DONE_REASONS,
            "competencies": await assessments.carer_competencies(user.id, at), "open_attempts": attempts}


@pages.get("/carer/today", roles=CARER)
async def carer_today_fragment(request: Request, user: User) -> Response:
    """The dashboard's live part, refetched by care.js when an event says it changed."""
    context = await carer_dashboard_context(request, user)
    return render(request, "care/_today.html", context)


@pages.post("/carer/tasks/{task_id:id}/log", roles=CARER)
async def log_task(request: Request, user: User, form: FormData) -> Response:
    task_id = request.path_params["task_id"]
    at = app_clock.now(request)
    try:
        command = parse_form(CompletionIn, _completion_form(form, occurred_at=_form_time(form.get("time"), at)))
        await service.do_log_completion(user, task_id, command, client_address=address_of(request), at=at)
    except CareTrackError as exc:
        context = await carer_dashboard_context(request, user)
        return render(request, "dashboards/carer.html", {"user": user, **context}, status_code=exc.status_code,
                      flashes=[("error", exc.message)])
    return redirect(f"/carer#task-{task_id}")


def _completion_form(form: FormData, occurred_at: datetime | None = None) -> dict[str, Any]:
    """The log and correct forms: a reason given means the task was not done."""
    reason = str(form.get("reason") or "")
    return {"idempotency_key": str(form.get("key", "")), "status": "not_done" if reason else "done",
            "reason": reason, "note": str(form.get("note") or ""), "occurred_at": occurred_at}


def _form_time(value: Any, at: datetime) -> datetime | None:
    """A time of day from the form means its latest occurrence (UTC) up to now: 23:50 entered just
    after midnight is last night's visit, not one tonight that the service would refuse as future."""
    if not value:
        return None
    minutes = check_clock(value, "time")
    when = datetime.combine(at.date(), time(minutes // 60, minutes % 60), tzinfo=UTC)
    return when - timedelta(days=1) if when > at + service.FUTURE_GRACE else when


@pages.get("/carer/tasks/{task_id:id}", roles=CARER)
async def carer_task(request: Request, user: User) -> Response:
    task = await service.get_task(user, request.path_params["task_id"])
    completions = await service.list_completions(user, task.id, address_of(request))
    return render(request, "care/carer_task.html", {"task": task, "completions": completions,
                                                    "new_key": uuid.uuid4().hex, "reasons": service.NOT_DONE_REASONS,
                                                    "clock": clock})


@pages.post("/carer/completions/{completion_id:id}/correct", roles=CARER)
async def correct_completion(request: Request, user: User, form: FormData) -> Response:
    command = parse_form(CompletionIn, _completion_form(form))
    completion, _ = await service.do_correct_completion(
        user, request.path_params["completion_id"], command, client_address=address_of(request),
        at=app_clock.now(request))
    return redirect(f"/carer/tasks/{completion.task_id}")


@pages.get("/carer/progress", roles=CARER)
async def carer_progress(request: Request, user: User) -> Response:
    start, end = _period(request)
    rows = await service.progress(user, start=start, end=end, client_address=address_of(request))
    return render(request, "care/progress.html", _progress_context(rows, start, end, "Your progress", None))


def _progress_context(rows: Sequence[service.ProgressRow], start: date, end: date, heading: str,
                      daily: Sequence[tuple[date, int]] | None) -> dict[str, Any]:
    return {"rows": rows, "start": start, "end": end, "heading": heading,
            "chart": bar_chart([Bar(r.label, r.done, r.expected) for r in rows],
                               title=f"Completions against targets, {start} to {end}"),
            "daily": column_chart([(d.strftime("%d %b"), n) for d, n in daily], title="Completions per day")
            if daily else None}


# --- the admin ------------------------------------------------------------------------------


@pages.get("/admin/care", roles=ADMIN)
async def admin_packages(request: Request, user: User) -> Response:
    return render(request, "care/admin_packages.html", {
        "packages": await service.list_packages(user, address_of(request)), "carers": await assessments.active_carers(),
        "today": app_clock.now(request).date(), "default_zone": request.app.state.settings.care_time_zone})


@pages.post("/admin/care/packages", roles=ADMIN)
async def admin_create_package(request: Request, user: User, form: FormData) -> Response:
    data = {k: str(form.get(k, "")) for k in ("client_name", "address", "care_notes", "starts_on", "ends_on",
                                               "visit_times", "time_zone")}
    try:
        command = parse_form(PackageIn, data)
        package = await service.do_create_package(user, command, address_of(request),
                                                  request.app.state.settings.care_time_zone)
    except CareTrackError as exc:
        return render(request, "care/admin_packages.html", {
            "packages": await service.list_packages(user, address_of(request)),
            "carers": await assessments.active_carers(), "today": app_clock.now(request).date(), "form": data,
            "default_zone": request.app.state.settings.care_time_zone},
            status_code=exc.status_code, flashes=[("error", exc.message)])
    return redirect(f"/admin/care/packages/{package.id}")


async def _package_page(request: Request, user: User, package_id: int,
                        flashes: list[tuple[str, str]] | None = None, status_code: int = 200) -> Response:
    view = await service.get_package(user, package_id, address_of(request))
    start, end = _period(request)
    rows = await service.progress(user, start=start, end=end, package_id=package_id)
    daily = await service.daily_done([r.task.id for r in rows], start, end)
    return render(request, "care/admin_package.html", {
        "package": view, "carers": await assessments.active_carers(), "periods": [p.value for p in Period],
        "clock": clock, **_progress_context(rows, start, end, "Progress", daily),
        "rota": await rota.list_rota(user, package_id), "day_names": DAY_NAMES,
        "day_visits": await visits.package_visits(user, package_id, at=app_clock.now(request),
                                                  late_after=visits.late_after(request.app.state.settings))},
        status_code=status_code, flashes=flashes)


@pages.get("/admin/care/packages/{package_id:id}", roles=ADMIN)
async def admin_package(request: Request, user: User) -> Response:
    return await _package_page(request, user, request.path_params["package_id"])


@pages.post("/admin/care/packages/{package_id:id}/carers", roles=ADMIN)
async def admin_assign(request: Request, user: User, form: FormData) -> Response:
    package_id = request.path_params["package_id"]
    try:
        command = parse_form(CarerRef, {"carer_id": str(form.get("carer_id", ""))})
        await service.do_assign_carer(user, package_id, command.carer_id, address_of(request))
    except CareTrackError as exc:
        return await _package_page(request, user, package_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/care/packages/{package_id}")


@pages.post("/admin/care/packages/{package_id:id}/tasks", roles=ADMIN)
async def admin_create_task(request: Request, user: User, form: FormData) -> Response:
    package_id = request.path_params["package_id"]
    data = {k: str(form.get(k, "")) for k in ("carer_id", "title", "target", "period", "window_start", "window_end")}
    try:
        command = parse_form(TaskIn, data)
        await service.do_create_task(user, package_id, command, address_of(request))
    except CareTrackError as exc:
        return await _package_page(request, user, package_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/care/packages/{package_id}")


@pages.post("/admin/care/tasks/{task_id:id}", roles=ADMIN)
async def admin_update_task(request: Request, user: User, form: FormData) -> Response:
    task = await service.get_task(user, request.path_params["task_id"])
    data: dict[str, object] = {k: str(form[k]) for k in ("carer_id", "title", "target", "period", "window_start",
                                                          "window_end") if form.get(k)}
    if form.get("action") == "end":
        data = {"is_active": False}
    try:
        command = parse_form(TaskChange, data)
        await service.do_update_task(user, task.id, command, address_of(request))
    except CareTrackError as exc:
        return await _package_page(request, user, task.package_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/care/packages/{task.package_id}")


@pages.get("/admin/care/progress", roles=ADMIN)
async def admin_progress(request: Request, user: User) -> Response:
    params = request.query_params
    start, end = _period(request)
    carer_id = id_from_text(params.get("carer_id"), "carer_id")
    rows = await service.progress(user, start=start, end=end, carer_id=carer_id, client_address=address_of(request))
    daily = await service.daily_done([r.task.id for r in rows], start, end)
    carers = await assessments.active_carers()
    chosen = next((c for c in carers if c.id == carer_id), None)
    return render(request, "care/progress.html", {
        **_progress_context(rows, start, end, f"Progress: {chosen.full_name}" if chosen else "Progress: all carers",
                            daily), "carers": carers, "carer_id": carer_id})
