"""Public pages: the landing page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from caretrack.templating import templates


async def landing(request: Request) -> Response:
    return templates.TemplateResponse(request, "landing.html", {})


routes = [Route("/", landing, name="landing")]
