"""Admins read the emails the app has sent (or queued) in the app itself; the list of them
is the outbound page (notifications/pages.py), beside the text messages."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from caretrack.core.errors import NotFound
from caretrack.http.pagekit import PageRouter, redirect, render
from caretrack.mail.models import OutboundEmail

pages = PageRouter()


@pages.get("/admin/emails", roles=["admin"])
async def email_list(request: Request) -> Response:
    """The list lives on /admin/outbound (notifications), with the text messages."""
    return redirect("/admin/outbound?channel=email")


@pages.get("/admin/emails/{email_id:id}", roles=["admin"])
async def email_detail(request: Request) -> Response:
    email = await OutboundEmail.get_or_none(id=request.path_params["email_id"])
    if email is None:
        raise NotFound("No such email.")
    return render(request, "admin/email.html", {"email": email})
