"""Calls, wired into the web app: `/ws/signal` and, on the embedded default, the media relay
in this process; with CARETRACK_MEDIA_MODE=workers, a proxy to the `caretrack media` workers
(site/worker.py). `signalling` and `media` know nothing of caretrack: who a socket is, which
origin is ours and who may join a consultation come in here as callables."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

import media
from caretrack.accounts.guard import identify
from caretrack.consultations import service
from caretrack.consultations.cluster import RedisDirectory
from caretrack.core import clock
from caretrack.core.settings import Settings
from caretrack.http.clients import origin_allowed
from signalling import Principal, SignallingService
from signalling.proxy import SignallingProxy


async def start(app: Starlette) -> None:
    settings: Settings = app.state.settings

    async def authenticate(websocket: WebSocket) -> Principal | None:
        auth = websocket.state.auth if hasattr(websocket.state, "auth") else await identify(websocket.scope, settings)
        if auth is None:
            return None
        user = auth.user
        if user.needs_mfa and (user.totp_enrolled_at is None or (auth.session and not auth.session.mfa_verified)):
            return None
        return Principal(str(user.id), user.full_name)

    def allowed_origin(websocket: WebSocket) -> bool:
        return origin_allowed(websocket.scope, settings)

    if settings.media_mode == "workers":  # `caretrack media` processes host the calls
        app.state.media_relay = None
        app.state.media_directory = RedisDirectory(app.state.redis)
        app.state.signalling = SignallingProxy(
            app.state.media_directory, ticket_key=settings.media_ticket_key, authenticate=authenticate,
            allowed_origin=allowed_origin, authorize=service.make_authorize(settings))
        return
    relay = media.Relay(service.relay_config(settings))
    app.state.media_relay = relay
    app.state.media_directory = None
    app.state.signalling = SignallingService(
        relay, authenticate=authenticate, allowed_origin=allowed_origin,
        authorize=service.make_authorize(settings),
        hooks=service.CallHooks(settings, clock=lambda: clock.app_now(app)),
    )


async def drain(app: Starlette) -> None:
    """Every call's sockets are closed with 1012 (restarting): clients reconnect at once."""
    await app.state.signalling.close()


async def stop(app: Starlette) -> None:
    await app.state.signalling.close()
    if app.state.media_relay is not None:
        await app.state.media_relay.close()


async def signal(websocket: WebSocket) -> None:
    await websocket.app.state.signalling.endpoint(websocket)


routes = [WebSocketRoute("/ws/signal", signal, name="signal")]
