"""Admins read the emails the app has sent (or queued) in the app itself."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from caretrack.core.errors import NotFound
from caretrack.http.pagekit import PageRouter, render
from caretrack.mail.models import OutboundEmail

pages = PageRouter()


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
