"""Care pages: the carer's day and task logging, the admin's packages and tasks, progress
charts, handover notes and incidents. The forms parse into the same commands as the API."""

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
from caretrack.care.notes_models import INCIDENT_LABELS, Severity
from caretrack.care.notes_schemas import IncidentClose, IncidentIn, IncidentQuery, NoteIn, TimelineQuery
from caretrack.care.schedule import check_clock, clock
from caretrack.care.schemas import CarerRef, CompletionIn, PackageIn, TaskChange, TaskIn
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
    attempts = [a for a in await assessments.carer_attempts(user.id) if a.status in assessments.OPEN]
    clients = {pid: name for _, name, pid in day.visits} | {p.package_id: p.client_name for p in day.tasks}
    handovers = await service.handovers(user, sorted(clients.items(), key=lambda c: (c[1], c[0])),
                                        address_of(request), at=at)
    return {"day": day, "new_key": lambda: uuid.uuid4().hex, "reasons": service.NOT_DONE_REASONS,
            "competencies": await assessments.carer_competencies(user.id, at), "open_attempts": attempts,
            "handovers": handovers, **incident_choices()}


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
            "reason": reason, "note": str(form.get("note") or ""), "occurred_at": occurred_at,
            "note_for_office": str(form.get("note_for_office") or ""),
            "note_for_next_carer": str(form.get("note_for_next_carer") or "")}


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
        **await _timeline_context(request, user, package_id)},
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


# --- handover notes and incidents -------------------------------------------------------------


def incident_choices() -> dict[str, Any]:
    return {"incident_kinds": [(k.value, label) for k, label in INCIDENT_LABELS.items()],
            "severities": [s.value for s in Severity]}


async def _dashboard_error(request: Request, user: User, exc: CareTrackError) -> Response:
    context = await carer_dashboard_context(request, user)
    return render(request, "dashboards/carer.html", {"user": user, **context}, status_code=exc.status_code,
                  flashes=[("error", exc.message)])


@pages.post("/carer/packages/{package_id:id}/notes", roles=CARER)
async def carer_write_note(request: Request, user: User, form: FormData) -> Response:
    package_id = request.path_params["package_id"]
    data = {k: str(form.get(k) or "") for k in ("text", "for_office", "for_next_carer")}
    try:
        await service.do_write_note(user, package_id, parse_form(NoteIn, data), client_address=address_of(request),
                                    at=app_clock.now(request))
    except CareTrackError as exc:
        return await _dashboard_error(request, user, exc)
    return redirect(f"/carer#handover-{package_id}")


def _incident_form(form: FormData) -> dict[str, Any]:
    data: dict[str, Any] = {k: str(form.get(k) or "") for k in ("kind", "severity", "what_happened",
                                                                "action_taken")}
    data["occurred_at"] = str(form.get("occurred_at") or "") or None
    data["note_id"] = id_from_text(str(form.get("note_id") or ""), "note_id")
    return data


@pages.post("/carer/packages/{package_id:id}/incidents", roles=CARER)
async def carer_raise_incident(request: Request, user: User, form: FormData) -> Response:
    try:
        command = parse_form(IncidentIn, _incident_form(form))
        incident = await service.do_raise_incident(user, request.path_params["package_id"], command,
                                                   client_address=address_of(request), at=app_clock.now(request))
    except CareTrackError as exc:
        return await _dashboard_error(request, user, exc)
    return redirect(f"/carer/incidents#incident-{incident.id}")


@pages.get("/carer/incidents", roles=CARER)
async def carer_incidents(request: Request, user: User) -> Response:
    views = [v for status in ("active", "closed") for v in await service.list_incidents(
        user, IncidentQuery.model_validate({"status": status}), address_of(request))]
    return render(request, "care/carer_incidents.html", {"incidents": views})


async def _timeline_context(request: Request, user: User, package_id: int) -> dict[str, Any]:
    query = parse_form(TimelineQuery, {"page": request.query_params.get("timeline_page") or "1"})
    return {"timeline": await service.package_timeline(user, package_id, address_of(request), page=query.page),
            **incident_choices()}


@pages.post("/admin/care/packages/{package_id:id}/incidents", roles=ADMIN)
async def admin_raise_incident(request: Request, user: User, form: FormData) -> Response:
    package_id = request.path_params["package_id"]
    try:
        command = parse_form(IncidentIn, _incident_form(form))
        await service.do_raise_incident(user, package_id, command, client_address=address_of(request),
                                        at=app_clock.now(request))
    except CareTrackError as exc:
        return await _package_page(request, user, package_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/care/packages/{package_id}#timeline")


async def _incidents_context(request: Request, user: User) -> dict[str, Any]:
    views = await service.list_incidents(user, IncidentQuery.model_validate({}), address_of(request))
    names = await service.client_names(user, sorted({v.incident.package_id for v in views}), address_of(request))
    return {"incidents": views, "client_names": names}


async def _incidents_page(request: Request, user: User, flashes: list[tuple[str, str]] | None = None,
                          status_code: int = 200) -> Response:
    return render(request, "care/admin_incidents.html", await _incidents_context(request, user),
                  status_code=status_code, flashes=flashes)


@pages.get("/admin/care/incidents", roles=ADMIN)
async def admin_incidents(request: Request, user: User) -> Response:
    return await _incidents_page(request, user)


@pages.get("/admin/care/incidents/live", roles=ADMIN)
async def admin_incidents_fragment(request: Request, user: User) -> Response:
    """The open incidents alone, refetched by care.js when an incident event arrives."""
    return render(request, "care/_admin_incidents.html", await _incidents_context(request, user))


def _back(form: FormData, package_id: int) -> str:
    # Only two places send these forms: the package's page and the incidents page.
    return f"/admin/care/packages/{package_id}#timeline" if form.get("back") == "package" else "/admin/care/incidents"


@pages.post("/admin/care/incidents/{incident_id:id}/acknowledge", roles=ADMIN)
async def admin_acknowledge_incident(request: Request, user: User, form: FormData) -> Response:
    try:
        incident = await service.do_acknowledge_incident(user, request.path_params["incident_id"],
                                                         client_address=address_of(request), at=app_clock.now(request))
    except CareTrackError as exc:
        return await _incidents_page(request, user, [("error", exc.message)], exc.status_code)
    return redirect(_back(form, incident.package_id))


@pages.post("/admin/care/incidents/{incident_id:id}/close", roles=ADMIN)
async def admin_close_incident(request: Request, user: User, form: FormData) -> Response:
    try:
        command = parse_form(IncidentClose, {"outcome": str(form.get("outcome") or "")})
        incident = await service.do_close_incident(user, request.path_params["incident_id"], command,
                                                   client_address=address_of(request), at=app_clock.now(request))
    except CareTrackError as exc:
        return await _incidents_page(request, user, [("error", exc.message)], exc.status_code)
    return redirect(_back(form, incident.package_id))
