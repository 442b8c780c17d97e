"""The realtime domain: /ws/events, the event history API, the admin activity feed, and
the bus's lifespan."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import WebSocketRoute

from caretrack.core.errors import ValidationError
from caretrack.core.outbox import store as outbox
from caretrack.core.validation import INT64_MAX
from caretrack.http.apikit import ApiRouter
from caretrack.http.pagekit import PageRouter, render
from caretrack.realtime import feed
from caretrack.realtime.bus import Bus, BusConfig
from caretrack.realtime.connection import events_socket
from caretrack.realtime.schemas import EventItem, EventPage, EventQuery

api = ApiRouter("events")
pages = PageRouter()
routes = [WebSocketRoute("/ws/events", events_socket, name="events_socket")]

PAGE_SIZE = 50


async def start(app) -> None:
    config = getattr(app.state, "realtime_config", None) or BusConfig()
    app.state.realtime = Bus(app.state.settings, app.state.redis, config)
    await app.state.realtime.start()


async def drain(app) -> None:
    await app.state.realtime.drain()


async def stop(app) -> None:
    await app.state.realtime.stop()


async def _page(user_id: int, *, before: int | None, after: int | None, kind: str | None,
                limit: int) -> EventPage:
    rows = await outbox.read_history(user_id, before=before, after=after, kind=kind, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    names = await feed.names_for(rows)
    items = [EventItem.model_validate(feed.item(r, names)) for r in rows]
    newest_first = not (after is not None and before is None)
    next_before = items[-1].seq if newest_first and more and items else None
    return EventPage(items=items, next_before=next_before)


@api.get("/events", summary="Your events, newest first (or newer than `after`)", roles=None,
         query=EventQuery, response=EventPage,
         description="The history behind /ws/events: the events addressed to you, each with your sequence "
                     "number and a readable line. Page back with `before`; fetch newer ones with `after`.")
async def list_events(request: Request, user, query: EventQuery) -> EventPage:
    return await _page(user.id, before=query.before, after=query.after, kind=query.kind, limit=query.limit)


@pages.get("/admin/activity", roles=["admin"])
async def activity(request: Request, user) -> Response:
    params = request.query_params
    kind = params.get("kind") or None
    if kind is not None and not feed.KIND_PATTERN.match(kind):
        raise ValidationError(f"Unknown activity kind '{kind[:40]}'.")
    before = params.get("before") or None
    if before is not None:
        # ASCII digits only ("²".isdigit() is true), and within the sequence column's range.
        if not (before.isascii() and before.isdigit() and len(before) <= 19 and 1 <= int(before) <= INT64_MAX):
            raise ValidationError(f"'before' must be a whole number from 1 to {INT64_MAX}, not '{before[:20]}'.")
        before = int(before)
    live_after = await outbox.last_seq(user.id) if before is None else None
    page = await _page(user.id, before=before, after=None, kind=kind, limit=PAGE_SIZE)
    if live_after is not None and page.items:
        live_after = max(live_after, page.items[0].seq)
    return render(request, "realtime/activity.html", {
        "page": page,
        "kind": kind,
        "kinds": feed.KINDS,
        "kind_label": feed.kind_label,
        "live_after": live_after,
    })
