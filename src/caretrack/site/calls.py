"""Calls, wired into the web app: `/ws/signal` and, on the embedded default, the media relay
in this process; with CARETRACK_MEDIA_MODE=workers, a proxy to the `caretrack media` workers
(site/worker.py). `signalling` and `media` know nothing of caretrack: who a socket is, which
origin is ours and who may join a consultation come in here as callables. Each socket also
lives only as long as the sign-in that opened it: the realtime bus checks it with the
/ws/events sockets (on logout, deactivation, expiry, in whichever process the change
happened) and `disconnect`s it, which takes the caller out of the call and its media."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

import media
from caretrack.accounts.guard import identify
from caretrack.accounts.sessions import Authenticated
from caretrack.consultations import guests, service
from caretrack.consultations.cluster import RedisDirectory
from caretrack.core import clock
from caretrack.core.logs import get_logger
from caretrack.core.settings import Settings
from caretrack.http.clients import origin_allowed
from caretrack.realtime.access import lapses_at
from caretrack.realtime.bus import Bus
from signalling import Principal, SignallingService
from signalling.proxy import SignallingProxy

log = get_logger("caretrack.calls")


async def _auth_of(websocket: WebSocket, settings: Settings) -> Authenticated | None:
    """Who opened the socket (the auth middleware found out; without it, ask now)."""
    state = websocket.scope.setdefault("state", {})
    if "auth" not in state:
        state["auth"] = await identify(websocket.scope, settings)
    auth: Authenticated | None = state["auth"]
    return auth


@dataclass(eq=False)
class CallSocket:
    """A /ws/signal socket as the bus's sign-in check sees it (a realtime.sockets.Guarded).
    A call in progress counts as activity: it keeps its session from idling out."""

    user_id: int
    session_id: str | None
    token_id: int | None
    websocket: WebSocket
    signalling: SignallingService | SignallingProxy
    keeps_alive: bool = True

    def close_soon(self, code: int, reason: str) -> None:
        self.signalling.disconnect(self.websocket, code, reason)


async def start(app: Starlette) -> None:
    settings: Settings = app.state.settings

    async def authenticate(websocket: WebSocket) -> Principal | None:
        if websocket.query_params.get("seat") == "guest":  # the guest seat this browser holds
            invite = await guests.seat_invite(websocket.cookies.get(guests.seat_cookie_name(settings)))
            return guests.principal_of(invite) if invite is not None else None
        auth = await _auth_of(websocket, settings)
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
            allowed_origin=allowed_origin, authorize=guests.make_authorize(settings))
        return
    relay = media.Relay(service.relay_config(settings))
    app.state.media_relay = relay
    app.state.media_directory = None
    app.state.signalling = SignallingService(
        relay, authenticate=authenticate, allowed_origin=allowed_origin,
        authorize=guests.make_authorize(settings),
        hooks=guests.CallHooks(settings, clock=lambda: clock.app_now(app)),
    )


async def drain(app: Starlette) -> None:
    """Every call's sockets are closed with 1012 (restarting): clients reconnect at once."""
    await app.state.signalling.close()


async def stop(app: Starlette) -> None:
    await app.state.signalling.close()
    if app.state.media_relay is not None:
        await app.state.media_relay.close()


# How often a guest's open socket looks again at its invitation: a revoked guest is out
# within this long, in whichever process holds their socket.
GUEST_RECHECK_SECONDS = 2.0
WITHDRAWN = "The doctor withdrew your invitation to this consultation."


async def _while_seat_held(signalling: SignallingService | SignallingProxy, websocket: WebSocket,
                           invite_id: int) -> None:
    while True:
        await asyncio.sleep(GUEST_RECHECK_SECONDS)
        try:
            held = await guests.seat_still_held(invite_id)
        except Exception as exc:  # the database is away: look again next time
            log.warning("could not check a guest's seat", invite=invite_id, error=str(exc) or type(exc).__name__)
            continue
        if not held:
            signalling.disconnect(websocket, 4403, WITHDRAWN)
            return


async def _guest_socket(signalling: SignallingService | SignallingProxy, websocket: WebSocket,
                        invite_id: int) -> None:
    """A guest's socket: it lives as long as their invitation is not revoked."""
    watch = asyncio.create_task(_while_seat_held(signalling, websocket, invite_id), name=f"guest-seat-{invite_id}")
    try:
        await signalling.endpoint(websocket)
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)


async def signal(websocket: WebSocket) -> None:
    app = websocket.app
    signalling: SignallingService | SignallingProxy = app.state.signalling
    if websocket.query_params.get("seat") == "guest":  # a guest's seat is their invitation, not a sign-in
        invite = await guests.seat_invite(websocket.cookies.get(guests.seat_cookie_name(app.state.settings)))
        if invite is not None:
            await _guest_socket(signalling, websocket, invite.id)
            return
    auth = await _auth_of(websocket, app.state.settings)
    if auth is None:  # refused by the endpoint
        await signalling.endpoint(websocket)
        return
    bus: Bus = app.state.realtime
    socket = CallSocket(auth.user.id, auth.session.id if auth.session else None,
                        auth.token.id if auth.token else None, websocket, signalling)
    bus.guard(socket, lapses_at(auth, app.state.settings, keeps_alive=socket.keeps_alive))
    try:
        await signalling.endpoint(websocket)
    finally:
        bus.unguard(socket)


routes = [WebSocketRoute("/ws/signal", signal, name="signal")]
