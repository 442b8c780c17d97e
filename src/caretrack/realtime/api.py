"""The realtime domain's API: /ws/events (caretrack.realtime.connection) and the event
history behind it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import WebSocketRoute

from caretrack.accounts.models import User
from caretrack.http.apikit import ApiRouter
from caretrack.realtime.connection import events_socket
from caretrack.realtime.schemas import EventPage, EventQuery
from caretrack.realtime.service import read_page

api = ApiRouter("events")
routes = [WebSocketRoute("/ws/events", events_socket, name="events_socket")]


@api.get("/events", summary="Your events, newest first (or newer than `after`)", roles=None,
         query=EventQuery, response=EventPage,
         description="The history behind /ws/events: the events addressed to you, each with your sequence "
                     "number and a readable line. Page back with `before`; fetch newer ones with `after`.")
async def list_events(request: Request, user: User, query: EventQuery) -> EventPage:
    return await read_page(user.id, before=query.before, after=query.after, kind=query.kind, limit=query.limit)
