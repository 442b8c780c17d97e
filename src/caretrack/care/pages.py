"""Care pages: the carer's day and task logging, the admin's packages and tasks, progress
charts, handover notes and incidents. The forms parse into the same commands as the API."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.assessments import service as assessments
from caretrack.care import service, zones
from caretrack.care.models import CareTask, Period
from caretrack.care.notes_models import INCIDENT_LABELS, Severity
from caretrack.care.notes_schemas import IncidentClose, IncidentIn, IncidentQuery, NoteIn, TimelineQuery
from caretrack.care.rota import DAY_NAMES
from caretrack.care.schedule import check_clock, clock
from caretrack.care.schemas import (
    CarerRef,
    CompletionIn,
    PackageChange,
    PackageEnd,
    PackageIn,
    RemoveCarerQuery,
    TaskChange,
    TaskIn,
    tel_uri,
)
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


def _period(request: Request, time_zone: str | None = None, default_days: int = 7) -> tuple[date, date]:
    """The period asked for; by default the week up to today in `time_zone` (a package's zone, or
    the agency's for pages across packages)."""
    params = request.query_params
    today = app_clock.in_zone(app_clock.now(request), time_zone or request.app.state.settings.care_time_zone).date()
    return service.period_of(params.get("start"), params.get("end"), today, default_days)


# --- the carer -------------------------------------------------------------------------------


async def carer_dashboard_context(request: Request, user: User) -> dict[str, Any]:
    at = app_clock.now(request)
    day = await service.carer_today(user, address_of(request), at=at)
    day_visits = await visits.carer_visits(user, address_of(request), at=at,
                                           late_after=visits.late_after(request.app.state.settings))
    attempts = [a for a in await assessments.carer_attempts(user.id) if a.status in assessments.OPEN]
    clients = {v.occurrence.package.id: v.client_name for v in day_visits} | {
        p.package_id: p.client_name for p in day.tasks}
    handovers = await service.handovers(user, sorted(clients.items(), key=lambda c: (c[1], c[0])),
                                        address_of(request), at=at)
    return {"day": day, "visits": day_visits, "server_now": at.isoformat(), "new_key": lambda: uuid.uuid4().hex,
            "reasons": service.NOT_DONE_REASONS,
            "competencies": await assessments.carer_competencies(user.id, at), "open_attempts": attempts,
            "due_text": assessments.due_text, "handovers": handovers, **incident_choices()}


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
        _, package = await service.task_package(user, task_id)
        command = parse_form(CompletionIn, _completion_form(
            form, occurred_at=_form_time(form.get("time"), at, package)))
        await service.do_log_completion(user, task_id, command, client_address=address_of(request), at=at,
                                        early_logs=request.app.state.settings.care_early_logs)
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


def _form_time(value: Any, at: datetime, package: zones.Zoned) -> datetime | None:
    """A time of day from the form, on the package's clock, means its latest occurrence up to now:
    23:50 entered just after midnight is last night's visit, not one tonight that the service
    would refuse as future. (care.js reads the field the same way for the JSON API.)"""
    if not value:
        return None
    minutes = check_clock(value, "time")
    today = zones.today(package, at)
    when = zones.instant(package, today, minutes)
    return zones.instant(package, today - timedelta(days=1), minutes) if when > at + service.FUTURE_GRACE else when


@pages.get("/carer/tasks/{task_id:id}", roles=CARER)
async def carer_task(request: Request, user: User) -> Response:
    task, package = await service.task_package(user, request.path_params["task_id"])
    completions = await service.list_completions(user, task.id, address_of(request))
    return render(request, "care/carer_task.html", {
        "task": task, "completions": completions, "new_key": uuid.uuid4().hex, "reasons": service.NOT_DONE_REASONS,
        "clock": clock, "time_zone": package.time_zone,
        "wall": lambda instant: f"{zones.local(package, instant):%Y-%m-%d %H:%M}"})


async def _client_context(request: Request, user: User) -> dict[str, Any]:
    """The client's record as the carer sees it (an audited PHI read; 404 unless they are on it)."""
    package = await service.get_package(user, request.path_params["package_id"], address_of(request))
    return {"package": package, "tel": tel_uri}


@pages.get("/carer/packages/{package_id:id}", roles=CARER)
async def carer_client(request: Request, user: User) -> Response:
    return render(request, "care/carer_client.html", await _client_context(request, user))


@pages.get("/carer/packages/{package_id:id}/live", roles=CARER)
async def carer_client_fragment(request: Request, user: User) -> Response:
    """The client page's content alone, refetched by care.js when an event says it changed."""
    return render(request, "care/_client.html", await _client_context(request, user))


@pages.post("/carer/completions/{completion_id:id}/correct", roles=CARER)
async def correct_completion(request: Request, user: User, form: FormData) -> Response:
    command = parse_form(CompletionIn, _completion_form(form))
    completion, _ = await service.do_correct_completion(
        user, request.path_params["completion_id"], command, client_address=address_of(request),
        at=app_clock.now(request), early_logs=request.app.state.settings.care_early_logs)
    return redirect(f"/carer/tasks/{completion.task_id}")


@pages.get("/carer/progress", roles=CARER)
async def carer_progress(request: Request, user: User) -> Response:
    start, end = _period(request)
    figures = await service.figures(user, start=start, end=end, client_address=address_of(request))
    return render(request, "care/progress.html", _progress_context(figures, "Your progress", daily=False))


def _progress_context(figures: service.Figures, heading: str, *, daily: bool = True) -> dict[str, Any]:
    """The figures as the progress pages show them: each bar against its own target."""
    start, end = figures.start, figures.end
    return {"rows": figures.rows, "start": start, "end": end, "heading": heading, "total": figures.total,
            "chart": bar_chart([Bar(r.label, r.done, r.expected, r.figures) for r in figures.rows],
                               title=f"Completions against targets, {start} to {end}"),
            "daily": column_chart([(d.strftime("%d %b"), n) for d, n in figures.daily],
                                  title=f"Completions per day, {start} to {end}") if daily else None}


# --- the admin ------------------------------------------------------------------------------


PACKAGE_FORM = ("client_name", "address", "care_notes", "access_notes", "allergies", "next_of_kin_name",
                "next_of_kin_relationship", "next_of_kin_phone", "gp_practice", "gp_phone", "starts_on", "ends_on",
                "visit_times", "time_zone")


async def _packages_page(request: Request, user: User, form: dict[str, str] | None = None,
                         flashes: list[tuple[str, str]] | None = None, status_code: int = 200) -> Response:
    archived = request.query_params.get("archived") == "1"
    return render(request, "care/admin_packages.html", {
        "packages": await service.list_packages(user, address_of(request), archived=archived), "archived": archived,
        "today": app_clock.now(request).date(), "form": form,
        "default_zone": request.app.state.settings.care_time_zone}, status_code=status_code, flashes=flashes)


@pages.get("/admin/care", roles=ADMIN)
async def admin_packages(request: Request, user: User) -> Response:
    return await _packages_page(request, user)


@pages.post("/admin/care/packages", roles=ADMIN)
async def admin_create_package(request: Request, user: User, form: FormData) -> Response:
    data = {k: str(form.get(k, "")) for k in PACKAGE_FORM}
    try:
        command = parse_form(PackageIn, data)
        package = await service.do_create_package(user, command, address_of(request),
                                                  request.app.state.settings.care_time_zone)
    except CareTrackError as exc:
        return await _packages_page(request, user, data, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/care/packages/{package.id}")


async def _package_page(request: Request, user: User, package_id: int,
                        flashes: list[tuple[str, str]] | None = None, status_code: int = 200) -> Response:
    view = await service.get_package(user, package_id, address_of(request))
    start, end = _period(request, view.time_zone)
    figures = await service.figures(user, start=start, end=end, package_id=package_id)
    blocked = await service.blocked_tasks([(t.id, t.carer_id, t.required_skill_id) for t in view.tasks],
                                          app_clock.now(request))
    return render(request, "care/admin_package.html", {
        "package": view, "carers": await assessments.active_carers(), "periods": [p.value for p in Period],
        "clock": clock, "today": zones.today(view, app_clock.now(request)), "tel": tel_uri,
        "skills": await assessments.list_skills(), "blocked": blocked,
        **_progress_context(figures, "Progress"), **await _timeline_context(request, user, package_id),
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


async def _package_action(request: Request, user: User, action: Any) -> Response:
    """Run a package page's form action; a refusal re-renders the page with its message."""
    package_id = request.path_params["package_id"]
    try:
        await action(package_id)
    except CareTrackError as exc:
        return await _package_page(request, user, package_id, [("error", exc.message)], exc.status_code)
    return redirect(f"/admin/care/packages/{package_id}")


@pages.post("/admin/care/packages/{package_id:id}", roles=ADMIN)
async def admin_update_package(request: Request, user: User, form: FormData) -> Response:
    async def update(package_id: int) -> None:
        command = parse_form(PackageChange, {k: str(form.get(k, "")) for k in PACKAGE_FORM if k in form})
        await service.do_update_package(user, package_id, command, address_of(request), at=app_clock.now(request))
    return await _package_action(request, user, update)


@pages.post("/admin/care/packages/{package_id:id}/end", roles=ADMIN)
async def admin_end_package(request: Request, user: User, form: FormData) -> Response:
    async def end(package_id: int) -> None:
        command = parse_form(PackageEnd, {"ends_on": str(form.get("ends_on", ""))})
        await service.do_end_package(user, package_id, command, address_of(request))
    return await _package_action(request, user, end)


@pages.post("/admin/care/packages/{package_id:id}/archive", roles=ADMIN)
async def admin_archive_package(request: Request, user: User, form: FormData) -> Response:
    async def archive(package_id: int) -> None:
        if form.get("action") == "unarchive":
            await service.do_unarchive_package(user, package_id, address_of(request))
        else:
            await service.do_archive_package(user, package_id, address_of(request), at=app_clock.now(request))
    return await _package_action(request, user, archive)


@pages.post("/admin/care/packages/{package_id:id}/carers/{carer_id:id}/remove", roles=ADMIN)
async def admin_remove_carer(request: Request, user: User, form: FormData) -> Response:
    """Take a carer off, their tasks to the carer chosen (or flagged), or replace them."""
    carer_id = request.path_params["carer_id"]

    async def remove(package_id: int) -> None:
        if form.get("action") == "replace":
            command = parse_form(CarerRef, {"carer_id": str(form.get("replacement_id", ""))})
            await service.do_replace_carer(user, package_id, carer_id, command.carer_id, address_of(request),
                                           at=app_clock.now(request))
        else:
            query = parse_form(RemoveCarerQuery, {"tasks_to": str(form.get("tasks_to") or "") or None})
            await service.do_remove_carer(user, package_id, carer_id, query.tasks_to, address_of(request),
                                          at=app_clock.now(request))
    return await _package_action(request, user, remove)


@pages.post("/admin/care/packages/{package_id:id}/tasks", roles=ADMIN)
async def admin_create_task(request: Request, user: User, form: FormData) -> Response:
    package_id = request.path_params["package_id"]
    data = {k: str(form.get(k, "")) for k in ("carer_id", "title", "target", "period", "window_start", "window_end",
                                               "required_skill_id")}
    try:
        command = parse_form(TaskIn, data)
        task = await service.do_create_task(user, package_id, command, address_of(request),
                                            at=app_clock.now(request))
    except CareTrackError as exc:
        return await _package_page(request, user, package_id, [("error", exc.message)], exc.status_code)
    return await _saved(request, user, task)


async def _saved(request: Request, user: User, task: CareTask) -> Response:
    """Back to the package, or, when the save needs the admin's notice, the package with it."""
    warnings = await service.task_warnings(task, app_clock.now(request))
    if warnings:
        return await _package_page(request, user, task.package_id, [("warning", w) for w in warnings])
    return redirect(f"/admin/care/packages/{task.package_id}")


@pages.post("/admin/care/tasks/{task_id:id}", roles=ADMIN)
async def admin_update_task(request: Request, user: User, form: FormData) -> Response:
    task = await service.get_task(user, request.path_params["task_id"])
    data: dict[str, object] = {k: str(form[k]) for k in ("carer_id", "title", "target", "period", "window_start",
                                                          "window_end") if form.get(k)}
    if "required_skill_id" in form:  # the form always says, blank for none
        data["required_skill_id"] = str(form["required_skill_id"])
    if form.get("action") == "end":
        data = {"is_active": False}
    try:
        command = parse_form(TaskChange, data)
        task = await service.do_update_task(user, task.id, command, address_of(request), at=app_clock.now(request))
    except CareTrackError as exc:
        return await _package_page(request, user, task.package_id, [("error", exc.message)], exc.status_code)
    return await _saved(request, user, task)


@pages.get("/admin/care/progress", roles=ADMIN)
async def admin_progress(request: Request, user: User) -> Response:
    params = request.query_params
    start, end = _period(request)
    carer_id = id_from_text(params.get("carer_id"), "carer_id")
    figures = await service.figures(user, start=start, end=end, carer_id=carer_id, client_address=address_of(request))
    carers = await assessments.active_carers()
    chosen = next((c for c in carers if c.id == carer_id), None)
    return render(request, "care/progress.html", {
        **_progress_context(figures, f"Progress: {chosen.full_name}" if chosen else "Progress: all carers"),
        "carers": carers, "carer_id": carer_id})


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
            "in_zone": app_clock.in_zone, **incident_choices()}


@pages.get("/admin/care/packages/{package_id:id}/timeline", roles=ADMIN)
async def admin_package_timeline(request: Request, user: User) -> Response:
    """The package page's notes and incidents, refetched by care-office.js when one changes."""
    package = await service.package_for(user, request.path_params["package_id"])
    return render(request, "care/_timeline.html", {"package": package,
                                                   **await _timeline_context(request, user, package.id)})


@pages.get("/admin/care/packages/{package_id:id}/progress", roles=ADMIN)
async def admin_package_progress(request: Request, user: User) -> Response:
    """The package page's figures for its period, refetched by care-office.js when a completion
    or a task changes."""
    package = await service.package_for(user, request.path_params["package_id"])
    start, end = _period(request, package.time_zone)
    figures = await service.figures(user, start=start, end=end, package_id=package.id)
    return render(request, "care/_package_progress.html", _progress_context(figures, "Progress"))


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
