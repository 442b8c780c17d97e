"""Public pages: the landing page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.home import DASHBOARDS
from caretrack.http.apikit import PUBLIC
from caretrack.http.pagekit import PageRouter, redirect, render

pages = PageRouter()


@pages.get("/", roles=PUBLIC)
async def landing(request: Request, user) -> Response:
    if user is not None:
        return redirect(DASHBOARDS[str(user.role)])
    return render(request, "landing.html")
