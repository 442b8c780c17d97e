"""Admins read the emails the app has sent (or queued) in the app itself; the list of them
is the outbound page (notifications/pages.py), beside the text messages."""

from __future__ import annotations

import base64
import json

from starlette.requests import Request
from starlette.responses import Response

from caretrack.core.errors import NotFound
from caretrack.http.pagekit import PageRouter, download, redirect, render
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
    attachments = [{"filename": a["filename"], "content_type": a["content_type"],
                    "size": len(base64.b64decode(a["content_b64"]))} for a in json.loads(email.attachments)]
    return render(request, "admin/email.html", {"email": email, "attachments": attachments})


@pages.get("/admin/emails/{email_id:id}/attachments/{index:int}", roles=["admin"])
async def email_attachment(request: Request) -> Response:
    """An attachment (a booking's .ics) as the recipient would get it: a download, never shown inline."""
    email = await OutboundEmail.get_or_none(id=request.path_params["email_id"])
    attachments = json.loads(email.attachments) if email is not None else []
    index = request.path_params["index"]
    if not 0 <= index < len(attachments):
        raise NotFound("No such attachment.")
    item = attachments[index]
    return download([base64.b64decode(item["content_b64"])], item["content_type"], item["filename"])
