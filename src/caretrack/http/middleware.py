"""Pure ASGI middleware: request ids, access logs, metrics, security headers, and the last
line of defence that turns an unhandled error into a clean 500 page (or a 503 with
Retry-After when the database cannot be reached)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caretrack.core import db, metrics
from caretrack.core.logs import get_logger
from caretrack.http import web_errors
from caretrack.http.templating import NAV_BADGES_STATE

log = get_logger("caretrack.http")

REQUEST_ID_HEADER = "x-request-id"


def _route_name(scope: Scope) -> str:
    """The route template (`/api/v1/users/{id}`) the router matched, never the raw path:
    ids and tokens stay out of metric labels. Starlette's router records the match in
    the scope, so ask after the app has run."""
    route = scope.get("route")
    return getattr(route, "path", "unmatched") if route is not None else "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if scope["type"] == "websocket":
            opened: str | None = None

            async def send_ws(message: Message) -> None:
                nonlocal opened
                await send(message)
                if message["type"] == "websocket.accept":
                    opened = _route_name(scope)
                    metrics.OPEN_WEBSOCKETS.labels(opened).inc()

            try:
                await self.app(scope, receive, send_ws)
            finally:
                if opened is not None:
                    metrics.OPEN_WEBSOCKETS.labels(opened).dec()
            return

        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            reason = db.unreachable_reason(exc)
            refused = db.refused_input_reason(exc) if reason is None else None
            if reason is not None:
                # An outage, not a bug: one line per request, no traceback; the pool reconnects by itself.
                log.warning("database unreachable", method=scope["method"], route=_route_name(scope), reason=reason)
                response = web_errors.database_unavailable_response(scope)
            elif refused is not None:
                # Bad input that the route did not bound; the transaction rolled back, so nothing is half-written.
                log.warning("input refused by the database", method=scope["method"], route=_route_name(scope),
                            error=str(exc).splitlines()[0][:200])
                response = web_errors.error_response(scope, 422, "invalid", refused)
            else:
                log.exception("unhandled error", method=scope["method"], route=_route_name(scope))
                response = web_errors.internal_error_response(scope, request_id)
            if not response_started:
                await response(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_name(scope)
            metrics.REQUESTS.labels(scope["method"], route, str(status)).inc()
            metrics.LATENCY.labels(scope["method"], route).observe(elapsed)
            if route not in ("/healthz", "/metrics"):
                log.info(
                    "request",
                    method=scope["method"],
                    route=route,
                    status=status,
                    ms=round(elapsed * 1000, 1),
                )


def _incoming_request_id(scope: Scope) -> str | None:
    """Keep a proxy's request id only when it looks like one (no log injection)."""
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1")
            if 8 <= len(text) <= 64 and all(c.isalnum() or c in "-_" for c in text):
                return text
    return None


def _private(scope: Scope) -> bool:
    """Whether the answer may carry someone's data: every API answer (errors echo ids and
    input), and anything answered to a signed-in user. The auth middleware runs inside this
    one and records the user in the scope's state before the response starts."""
    return web_errors.is_api(scope) or (scope.get("state") or {}).get("user") is not None


class SecurityHeadersMiddleware:
    """Outermost, so the last-resort 500 and 503 answers carry the headers too."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if _private(scope):
                    # No browser or proxy keeps it; a handler's own policy (a calendar feed) stands.
                    headers.setdefault("cache-control", "no-store")
                headers.setdefault(
                    "content-security-policy",
                    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; "
                    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
                )
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("referrer-policy", "same-origin")
                headers.setdefault("x-frame-options", "DENY")
                # Geolocation for our own pages only: a carer's check-in records where it was made.
                headers.setdefault(
                    "permissions-policy", "camera=(self), microphone=(self), display-capture=(self), geolocation=(self)"
                )
                if self.https:
                    headers.setdefault("strict-transport-security", "max-age=31536000; includeSubDomains")
            await send(message)

        await self.app(scope, receive, send_wrapper)


NavBadges = Callable[[Any], Awaitable[dict[str, int]]]  # the signed-in user -> {nav href: count}


class NavBadgesMiddleware:
    """Counts beside navigation links on every page a signed-in user opens (the unread
    messages): computed here, before the page renders, because templates render synchronously.
    Runs inside the auth middleware, which has put the user in the scope's state; API calls,
    static files and WebSockets are left alone."""

    def __init__(self, app: ASGIApp, badges: NavBadges) -> None:
        self.app = app
        self.badges = badges

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state") or {}
        if (scope["type"] == "http" and state.get("user") is not None and not web_errors.is_api(scope)
                and not scope["path"].startswith("/static/")):
            state[NAV_BADGES_STATE] = await self.badges(state["user"])
        await self.app(scope, receive, send)
