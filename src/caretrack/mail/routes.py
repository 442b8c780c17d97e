"""The mail sender runs in the web process's lifespan; admins read emails in the app."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from caretrack.core.errors import NotFound
from caretrack.core.loops import stop_loops
from caretrack.http.pagekit import PageRouter, render
from caretrack.mail import service
from caretrack.mail.models import OutboundEmail

pages = PageRouter()


async def start(app: Starlette) -> None:
    app.state.mail_stop = asyncio.Event()
    app.state.mail_sender = asyncio.create_task(service.sender_loop(app.state.settings, stop=app.state.mail_stop),
                                                name="mail-sender")


async def stop(app: Starlette) -> None:
    app.state.mail_stop.set()
    service.wake_sender()
    await stop_loops([app.state.mail_sender], app.state.mail_stop)  # an unanswering SMTP server is cut off


@pages.get("/admin/emails", roles=["admin"])
async def email_list(request: Request) -> Response:
    emails = await OutboundEmail.all().order_by("-id").limit(100)
    return render(request, "admin/emails.html", {"emails": emails})


@pages.get("/admin/emails/{email_id:id}", roles=["admin"])
async def email_detail(request: Request) -> Response:
    email = await OutboundEmail.get_or_none(id=request.path_params["email_id"])
    if email is None:
        raise NotFound("No such email.")
    return render(request, "admin/email.html", {"email": email})
