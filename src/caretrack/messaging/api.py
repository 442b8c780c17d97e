"""Messaging over the JSON API (/api/v1/messages/...): threads, messages, read receipts,
closing and blocking. Attachments are sent with the thread page's form (multipart) and
downloaded from /messages/{thread}/attachments/{id}; the API lists them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request

from caretrack.accounts.models import User
from caretrack.core import clock
from caretrack.http.apikit import ApiRouter
from caretrack.http.clients import address_of
from caretrack.messaging import service
from caretrack.messaging.models import Thread
from caretrack.messaging.schemas import (
    MessageIn,
    MessageView,
    ThreadList,
    ThreadPage,
    ThreadQuery,
    ThreadStart,
    ThreadSummary,
    UnreadCount,
)

api = ApiRouter("messages")
THREAD = "/messages/threads/{thread_id:id}"


def _thread_id(request: Request) -> int:
    return int(request.path_params["thread_id"])


async def _summary(user: User, thread_id: int) -> ThreadSummary:
    return await service.thread_summary(user, await service.thread_for(user, thread_id))


@api.get("/messages/threads", summary="Your message threads, newest activity first", roles=None,
         response=ThreadList)
async def api_threads(request: Request, user: User) -> ThreadList:
    threads, total = await service.list_threads(user)
    return ThreadList(threads=threads, unread_total=total)


@api.get("/messages/unread", summary="How many messages to you are unread", roles=None, response=UnreadCount)
async def api_unread(request: Request, user: User) -> UnreadCount:
    return UnreadCount(unread=await service.unread_total(user))


@api.post("/messages/threads", summary="Open (or find) the thread with someone you have a care relationship with",
          roles=None, body=ThreadStart, response=ThreadSummary, status=201, errors=(404,),
          description="A patient names a doctor they have booked, a doctor a patient who booked them, an admin a "
                      "carer; a carer sends {} for their thread with the office. Anyone else is a 404.")
async def api_start(request: Request, user: User, body: ThreadStart) -> ThreadSummary:
    thread = await service.do_start_thread(user, body, at=clock.now(request), client_address=address_of(request))
    return await _summary(user, thread.id)


@api.get(THREAD, summary="A page of a thread's messages, oldest first (marks it read for you)", roles=None,
         query=ThreadQuery, response=ThreadPage, errors=(404,))
async def api_thread(request: Request, user: User, query: ThreadQuery) -> ThreadPage:
    return await service.read_thread(user, _thread_id(request), before=query.before, after=query.after,
                                     limit=query.limit, at=clock.now(request), client_address=address_of(request))


@api.post(THREAD + "/messages", summary="Send a message", roles=None, body=MessageIn, response=MessageView,
          status=201, errors=(403, 404, 409),
          description="403 when the other side has blocked you (or you blocked them), 409 when the thread is closed.")
async def api_send(request: Request, user: User, body: MessageIn) -> MessageView:
    thread_id = _thread_id(request)
    message = await service.do_send(request.app.state.settings, user, thread_id, body, at=clock.now(request),
                                    client_address=address_of(request))
    return await service.message_view(user, message)


def _change_operation(path: str, action: Callable[..., Awaitable[Thread]], summary: str,
                      errors: tuple[int, ...]) -> None:
    """One state change of a thread (close, reopen, block, unblock): the same call, the thread after."""
    async def change(request: Request, user: User) -> ThreadSummary:
        thread = await action(user, _thread_id(request), at=clock.now(request), client_address=address_of(request))
        return await _summary(user, thread.id)

    change.__name__ = f"api_{path}"
    api.post(f"{THREAD}/{path}", summary=summary, roles=None, response=ThreadSummary, errors=errors)(change)


# 403: the side that was blocked can neither close nor reopen.
_change_operation("close", service.do_close, "Close the thread: no more messages", (403, 404, 409))
_change_operation("reopen", service.do_reopen, "Reopen a thread your side closed", (403, 404, 409))
_change_operation("block", service.do_block, "Block the other side's messages (a patient's or a doctor's thread)",
                  (404, 409, 422))
_change_operation("unblock", service.do_unblock, "Unblock a thread you blocked", (403, 404, 409))
