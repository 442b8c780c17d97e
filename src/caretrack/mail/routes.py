"""The mail sender runs in the web process's lifespan; admins read emails in the app."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from caretrack.errors import NotFound
from caretrack.mail import service
from caretrack.mail.models import OutboundEmail
from caretrack.pagekit import PageRouter, render

pages = PageRouter()


# How long a pass in progress may take to finish at shut-down before it is cut off.
STOP_GRACE_SECONDS = 5.0


async def start(app: Starlette) -> None:
    app.state.mail_stop = asyncio.Event()
    app.state.mail_sender = asyncio.create_task(service.sender_loop(app.state.settings, stop=app.state.mail_stop),
                                                name="mail-sender")


async def stop(app: Starlette) -> None:
    task: asyncio.Task = app.state.mail_sender
    app.state.mail_stop.set()
    service.wake_sender()
    await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
    if not task.done():  # an SMTP server that does not answer
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pages.get("/admin/emails", roles=["admin"])
async def email_list(request: Request) -> Response:
    emails = await OutboundEmail.all().order_by("-id").limit(100)
    return render(request, "admin/emails.html", {"emails": emails})


@pages.get("/admin/emails/{email_id:int}", roles=["admin"])
async def email_detail(request: Request) -> Response:
    email = await OutboundEmail.get_or_none(id=request.path_params["email_id"])
    if email is None:
        raise NotFound("No such email.")
    return render(request, "admin/email.html", {"email": email})
