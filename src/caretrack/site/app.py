"""The application factory and its lifespan (database, Redis, background work)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator
from types import ModuleType

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from caretrack import __version__
from caretrack.accounts import sessions
from caretrack.accounts.guard import AuthMiddleware, require_user
from caretrack.accounts.models import User
from caretrack.booking import followups
from caretrack.booking.service import doctor_has_patient
from caretrack.consultations import summary
from caretrack.core.logs import get_logger
from caretrack.core.settings import Settings
from caretrack.http import guard as http_guard
from caretrack.http import health
from caretrack.http.apikit import PREFIX, openapi_document
from caretrack.http.middleware import NavBadgesMiddleware, RequestContextMiddleware, SecurityHeadersMiddleware
from caretrack.http.templating import STATIC_DIR
from caretrack.http.web_errors import EXCEPTION_HANDLERS
from caretrack.messaging import service as messaging
from caretrack.site import startup
from caretrack.site.serving import StartupError

log = get_logger("caretrack.site.app")
__all__ = ["DOMAINS", "StartupError", "create_app", "drain"]  # StartupError: what the lifespan raises


# Each domain module may expose `api` (an ApiRouter), `pages` (a PageRouter), `routes`
# (other routes, such as WebSockets), `start(app)` / `stop(app)` coroutines for the
# lifespan, and `drain(app)`: close its open sockets when the server begins to shut down
# (before the lifespan ends; see caretrack.site.serving). Adding a domain is one line here.
DOMAINS = [
    "caretrack.site.landing",
    "caretrack.accounts.api",
    "caretrack.accounts.pages",
    "caretrack.mail.pages",
    "caretrack.mail.jobs",
    "caretrack.notifications.api",
    "caretrack.notifications.pages",
    "caretrack.notifications.jobs",
    "caretrack.site.dashboards",
    "caretrack.realtime.api",
    "caretrack.realtime.pages",
    "caretrack.realtime.jobs",
    "caretrack.booking.api",
    "caretrack.booking.pages",
    "caretrack.booking.followups_api",
    "caretrack.booking.followup_pages",
    "caretrack.booking.jobs",
    "caretrack.booking.intake_api",
    "caretrack.intake.api",
    "caretrack.intake.pages",
    "caretrack.payments.api",
    "caretrack.payments.pages",
    "caretrack.care.api",
    "caretrack.care.pages",
    "caretrack.care.visits_api",
    "caretrack.care.visits_pages",
    "caretrack.care.jobs",
    "caretrack.assessments.api",
    "caretrack.assessments.pages",
    "caretrack.assessments.jobs",
    "caretrack.reports.pages",
    "caretrack.consultations.api",
    "caretrack.site.calls",
    "caretrack.consultations.pages",
    "caretrack.consultations.summary_api",
    "caretrack.consultations.summary_pages",
    "caretrack.messaging.api",
    "caretrack.messaging.pages",
    "caretrack.messaging.jobs",
    "caretrack.site.jobs",  # last: the runner starts once everything is up and stops first
]


async def nav_badges(user: User) -> dict[str, int]:
    """The counts beside navigation links: unread messages beside "Messages"."""
    return {"/messages": await messaging.unread_total(user)}


def _domains() -> list[ModuleType]:
    return [importlib.import_module(name) for name in DOMAINS]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    domains = _domains()
    routers = [m.api for m in domains if hasattr(m, "api")]
    document = openapi_document(routers, "CareTrack API", __version__, session_cookie=sessions.cookie_name(settings))

    async def openapi(request):
        return JSONResponse(document)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with startup.started(settings) as redis:
            app.state.redis = redis
            started: list[ModuleType] = []
            try:
                for module in domains:
                    if hasattr(module, "start"):
                        await module.start(app)
                        started.append(module)
                log.info("started", database=settings.database_url.split("://")[0],
                         bus="redis" if settings.redis_url else "in-process")
                yield
            finally:
                for module in reversed(started):
                    if hasattr(module, "stop"):
                        await module.stop(app)

    app = Starlette(
        routes=[
            *health.routes,
            Route(f"{PREFIX}/openapi.json", openapi),
            *(route for router in routers for route in router.routes),
            *(route for m in domains if hasattr(m, "pages") for route in m.pages.routes),
            *(route for m in domains for route in getattr(m, "routes", ())),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[
            Middleware(SecurityHeadersMiddleware, https=settings.https),
            Middleware(RequestContextMiddleware),
            Middleware(AuthMiddleware, settings=settings),
            Middleware(NavBadgesMiddleware, badges=nav_badges),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    http_guard.install(app, require_user)
    app.state.doctor_has_patient = doctor_has_patient  # who may read a patient's profile (accounts.api)
    app.state.appointment_panels = (summary.panel, followups.panel)  # more of the appointment page (booking.pages)
    app.state.redis = None
    return app


async def drain(app: Starlette) -> None:
    """Tell every open socket the server is going away, and wait for them to close."""
    await asyncio.gather(*(module.drain(app) for module in _domains() if hasattr(module, "drain")))
