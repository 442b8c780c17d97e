"""Messaging pages: the list of threads (/messages), one thread (/messages/{id}) with its send
form (text and attachments), closing and blocking, attachment downloads. Starting a thread
is a form too, from the list or from an appointment's page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.core import clock
from caretrack.core.errors import CareTrackError
from caretrack.core.roles import Role
from caretrack.core.validation import id_from_text
from caretrack.http.clients import address_of
from caretrack.http.pagekit import PageRouter, download, parse_form, redirect, render
from caretrack.http.templating import NAV_BADGES_STATE
from caretrack.messaging import service, uploads
from caretrack.messaging.schemas import MessageIn, ThreadStart

pages = PageRouter()
Flashes = list[tuple[str, str]]
SEND_LIMIT = uploads.MAX_ATTACHMENTS * uploads.MAX_ATTACHMENT_BYTES + uploads.FORM_OVERHEAD_BYTES


def local_time(user: User) -> Callable[[datetime | None], str]:
    """A formatter for instants in the reader's zone, for the templates."""
    try:
        zone = ZoneInfo(user.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")

    def show(instant: datetime | None) -> str:
        return "" if instant is None else instant.astimezone(zone).strftime("%d %b %Y, %H:%M")

    return show


async def _list_page(request: Request, user: User, flashes: Flashes | None = None, status: int = 200) -> Response:
    threads, total = await service.list_threads(user)
    return render(request, "messaging/list.html", {
        "threads": threads, "unread_total": total, "contacts": await service.contacts(user),
        "is_carer": user.role == Role.CARER, "show": local_time(user),
    }, status_code=status, flashes=flashes)


@pages.get("/messages", roles=None)
async def list_page(request: Request, user: User) -> Response:
    return await _list_page(request, user)


@pages.post("/messages/start", roles=None)
async def start_thread(request: Request, user: User, form: FormData) -> Response:
    """From the list (`with_user_id`, or nothing for a carer) or an appointment (`appointment_id`)."""
    try:
        appointment_id = id_from_text(str(form.get("appointment_id") or ""), "appointment_id")
        if appointment_id is not None:
            thread = await service.do_start_from_appointment(user, appointment_id, at=clock.now(request),
                                                             client_address=address_of(request))
        else:
            command = parse_form(ThreadStart, {k: v for k, v in form.items() if k == "with_user_id" and v})
            thread = await service.do_start_thread(user, command, at=clock.now(request),
                                                   client_address=address_of(request))
    except CareTrackError as exc:
        if exc.status_code == 404:
            raise
        return await _list_page(request, user, [("error", exc.message)], exc.status_code)
    return redirect(f"/messages/{thread.id}")


async def _thread_page(request: Request, user: User, flashes: Flashes | None = None, status: int = 200,
                       text: str = "") -> Response:
    thread_id = int(request.path_params["thread_id"])
    before = id_from_text(request.query_params.get("before"), "before")
    page = await service.read_thread(user, thread_id, before=before, at=clock.now(request),
                                     client_address=address_of(request))
    # The badge was counted before this read marked the thread read: count again.
    request.state._state[NAV_BADGES_STATE] = {"/messages": await service.unread_total(user)}
    return render(request, "messaging/thread.html", {
        "page": page, "thread": page.thread, "show": local_time(user), "text": text, "user": user,
        "can_block": page.thread.kind == "care", "max_files": uploads.MAX_ATTACHMENTS,
    }, status_code=status, flashes=flashes)


@pages.get("/messages/{thread_id:id}", roles=None)
async def thread_page(request: Request, user: User) -> Response:
    return await _thread_page(request, user)


async def _files(form: FormData) -> list[uploads.Upload]:
    files = []
    for item in form.getlist("attachments"):
        if isinstance(item, UploadFile) and item.filename:
            files.append(uploads.Upload(item.filename, await item.read()))
    return files


@pages.post("/messages/{thread_id:id}", roles=None, max_body=SEND_LIMIT)
async def send_message(request: Request, user: User, form: FormData) -> Response:
    thread_id = int(request.path_params["thread_id"])
    await service.thread_for(user, thread_id)  # an outsider gets the 404 before anything else
    text = str(form.get("text") or "")
    try:
        command = parse_form(MessageIn, {"text": text})
        await service.do_send(request.app.state.settings, user, thread_id, command, await _files(form),
                              at=clock.now(request), client_address=address_of(request))
    except CareTrackError as exc:
        return await _thread_page(request, user, [("error", exc.message)], exc.status_code, text)
    finally:
        await form.close()
    return redirect(f"/messages/{thread_id}")


def _change_route(path: str, action: Callable[..., Awaitable[object]]) -> None:
    async def change(request: Request, user: User) -> Response:
        thread_id = int(request.path_params["thread_id"])
        try:
            await action(user, thread_id, at=clock.now(request), client_address=address_of(request))
        except CareTrackError as exc:
            if exc.status_code == 404:
                raise
            return await _thread_page(request, user, [("error", exc.message)], exc.status_code)
        return redirect(f"/messages/{thread_id}")

    change.__name__ = f"thread_{path}"
    pages.post(f"/messages/{{thread_id:id}}/{path}", roles=None)(change)


_change_route("close", service.do_close)
_change_route("reopen", service.do_reopen)
_change_route("block", service.do_block)
_change_route("unblock", service.do_unblock)


@pages.get("/messages/{thread_id:id}/attachments/{attachment_id:id}", roles=None)
async def download_attachment(request: Request, user: User) -> Response:
    attachment, chunks, name = await service.open_attachment(
        request.app.state.settings, user, int(request.path_params["thread_id"]),
        int(request.path_params["attachment_id"]), client_address=address_of(request))
    return download(chunks, attachment.content_type, name)
