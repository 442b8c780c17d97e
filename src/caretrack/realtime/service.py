"""Reading a user's event history, a page at a time, with each event's readable line: the
API's GET /events and the admin activity page show the same items."""

from __future__ import annotations

from caretrack.core.outbox import store as outbox
from caretrack.realtime import feed
from caretrack.realtime.schemas import EventItem, EventPage


async def read_page(user_id: int, *, before: int | None, after: int | None, kind: str | None,
                    limit: int) -> EventPage:
    rows = await outbox.read_history(user_id, before=before, after=after, kind=kind, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    names = await feed.names_for(rows)
    items = [EventItem.model_validate(feed.item(r, names)) for r in rows]
    newest_first = not (after is not None and before is None)
    next_before = items[-1].seq if newest_first and more and items else None
    return EventPage(items=items, next_before=next_before)
