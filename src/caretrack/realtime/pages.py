"""The admin activity feed: every event addressed to the admin, with a readable line, paged
back by sequence, live below the newest."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.core.errors import ValidationError
from caretrack.core.outbox import store as outbox
from caretrack.core.validation import INT64_MAX
from caretrack.http.pagekit import PageRouter, render
from caretrack.realtime import feed
from caretrack.realtime.service import read_page

pages = PageRouter()

PAGE_SIZE = 50


@pages.get("/admin/activity", roles=["admin"])
async def activity(request: Request, user: User) -> Response:
    params = request.query_params
    kind = params.get("kind") or None
    if kind is not None and not feed.KIND_PATTERN.match(kind):
        raise ValidationError(f"Unknown activity kind '{kind[:40]}'.")
    given = params.get("before") or None
    before: int | None = None
    if given is not None:
        # ASCII digits only ("²".isdigit() is true), and within the sequence column's range.
        if not (given.isascii() and given.isdigit() and len(given) <= 19 and 1 <= int(given) <= INT64_MAX):
            raise ValidationError(f"'before' must be a whole number from 1 to {INT64_MAX}, not '{given[:20]}'.")
        before = int(given)
    live_after = await outbox.last_seq(user.id) if before is None else None
    page = await read_page(user.id, before=before, after=None, kind=kind, limit=PAGE_SIZE)
    if live_after is not None and page.items:
        live_after = max(live_after, page.items[0].seq)
    return render(request, "realtime/activity.html", {
        "page": page,
        "kind": kind,
        "kinds": feed.KINDS,
        "kind_label": feed.kind_label,
        "live_after": live_after,
    })
