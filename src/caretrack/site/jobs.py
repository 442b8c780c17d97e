"""The job queue in the web app: the in-process runner (CARETRACK_JOBS_MODE=inprocess, the
default) and the admin's view of the queue, /admin/jobs."""

from __future__ import annotations

import os
import re
from datetime import timedelta

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.core import clock
from caretrack.core.audit.service import Actor
from caretrack.core.errors import CareTrackError, ValidationError
from caretrack.core.queue import JobContext, Runner, job
from caretrack.core.queue import admin as queue_admin
from caretrack.http.clients import address_of
from caretrack.http.pagekit import PageRouter, redirect, render

pages = PageRouter()
FINISHED_RETENTION = timedelta(days=30)
PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,5}")  # ASCII digits only: "²".isdigit() is true


@job("queue.prune", every=timedelta(hours=1))
async def prune_finished(ctx: JobContext) -> None:
    """Jobs that ended well (done, skipped, cancelled) are kept 30 days; dead ones until an admin acts."""
    await queue_admin.prune_finished(ctx.at - FINISHED_RETENTION)


def runner_for(app: Starlette, name: str) -> Runner:
    settings = app.state.settings
    return Runner(name, settings, clock=lambda: clock.app_now(app), lease=timedelta(seconds=settings.job_lease_seconds))


async def start(app: Starlette) -> None:
    app.state.jobs = None
    if app.state.settings.jobs_mode == "inprocess":
        app.state.jobs = runner_for(app, f"web-{os.getpid()}").start()


async def stop(app: Starlette) -> None:
    if app.state.jobs is not None:
        await app.state.jobs.stop()


@pages.get("/admin/jobs", roles=["admin"])
async def job_list(request: Request) -> Response:
    status = request.query_params.get("status") or None
    page = request.query_params.get("page", "1")
    try:
        view = await queue_admin.queue_view(status, int(page) if PAGE_NUMBER.fullmatch(page) else 0)
    except CareTrackError as exc:
        view = await queue_admin.queue_view(None)
        return render(request, "admin/jobs.html", {"view": view}, status_code=exc.status_code,
                      flashes=[("error", exc.message)])
    return render(request, "admin/jobs.html", {"view": view})


@pages.post("/admin/jobs/{job_id:id}/retry", roles=["admin"])
async def job_retry(request: Request, user: User, form: FormData) -> Response:
    try:
        await queue_admin.do_retry(Actor(user.id, address_of(request)), request.path_params["job_id"],
                                   at=clock.now(request))
    except ValidationError as exc:
        view = await queue_admin.queue_view(None)
        return render(request, "admin/jobs.html", {"view": view}, status_code=exc.status_code,
                      flashes=[("error", exc.message)])
    return redirect("/admin/jobs?retried=1")
