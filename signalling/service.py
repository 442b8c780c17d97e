"""The signalling endpoint the host application mounts, and its registry of live
consultations."""

from __future__ import annotations

import inspect
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

import media

from . import protocol as p
from .consultation import Consultation
from .policy import Hooks, Limits, Principal, Seat
from .session import Session

logger = logging.getLogger(__name__)

T = TypeVar("T")
MaybeAwaitable = T | Awaitable[T]

Authenticate = Callable[[WebSocket], MaybeAwaitable[Principal | None]]
AllowedOrigin = Callable[[WebSocket], MaybeAwaitable[bool]]
Authorize = Callable[[Principal, str], MaybeAwaitable[Seat]]
IceServersFor = Callable[[Principal], Sequence[media.IceServer]]

ENDED_REMEMBERED = 10_000


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class SignallingService:
    """WebSocket signalling for consultations, driving a :class:`media.Relay`.

    ``authenticate(websocket)`` names the caller (None: closed with 4401);
    ``allowed_origin(websocket)`` guards the handshake (False: refused before it
    completes, HTTP 403); ``authorize(principal, consultation_id)`` returns the
    caller's :class:`Seat` or raises :class:`Refused`.  Each may be sync or async.
    ``ice_servers(principal)`` (optional) gives the browser its STUN/TURN servers;
    by default those of the relay's config.
    """

    def __init__(self, relay: media.Relay, *, authenticate: Authenticate, allowed_origin: AllowedOrigin,
                 authorize: Authorize, hooks: Hooks | None = None, limits: Limits | None = None,
                 ice_servers: IceServersFor | None = None) -> None:
        self.relay = relay
        self._authenticate = authenticate
        self._allowed_origin = allowed_origin
        self._authorize = authorize
        self.hooks = hooks or Hooks()
        self.limits = limits or Limits()
        self._ice_servers = ice_servers
        self._consultations: dict[str, Consultation] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._closed = False

    def route(self, path: str = "/ws/signal", name: str = "signalling") -> WebSocketRoute:
        return WebSocketRoute(path, self.endpoint, name=name)

    async def endpoint(self, websocket: WebSocket) -> None:
        """The ASGI WebSocket endpoint (Starlette ``WebSocketRoute``)."""
        if not await _resolve(self._allowed_origin(websocket)):
            origin = websocket.headers.get("origin", "")[:100]
            logger.info("refused a signalling socket from a foreign origin %r", origin)
            await websocket.close(p.CLOSE_REFUSED)  # before accept: the handshake fails (HTTP 403)
            return
        principal = await _resolve(self._authenticate(websocket))
        await websocket.accept()
        if self._closed:
            await self._refuse(websocket, p.CLOSE_GOING_AWAY, "the server is shutting down")
            return
        if principal is None:
            await self._refuse(websocket, p.CLOSE_UNAUTHENTICATED, "sign in to join a consultation")
            return
        await Session(self, websocket, principal).run()

    @staticmethod
    async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
        await websocket.send_text(p.to_wire(p.Error(code=code, message=reason)))
        await websocket.close(code, reason)

    async def authorize(self, principal: Principal, consultation_id: str) -> Seat:
        seat = await _resolve(self._authorize(principal, consultation_id))
        if not isinstance(seat, Seat):
            raise TypeError(f"authorize() must return a Seat or raise Refused, got {seat!r}")
        return seat

    def ice_servers_for(self, principal: Principal) -> list[p.IceServerInfo]:
        servers = self._ice_servers(principal) if self._ice_servers else self.relay.config.ice_servers
        return [p.IceServerInfo(urls=[s.urls], username=s.username, credential=s.credential) for s in servers]

    # --- registry -------------------------------------------------------------------------

    def consultation(self, consultation_id: str) -> Consultation:
        consultation = self._consultations.get(consultation_id)
        if consultation is None:
            consultation = self._consultations[consultation_id] = Consultation(self, consultation_id)
        return consultation

    @property
    def consultations(self) -> dict[str, Consultation]:
        return dict(self._consultations)

    def _forget(self, consultation: Consultation) -> None:
        if self._consultations.get(consultation.id) is consultation:
            del self._consultations[consultation.id]

    def _mark_ended(self, consultation_id: str) -> None:
        self._ended[consultation_id] = None
        while len(self._ended) > ENDED_REMEMBERED:
            self._ended.popitem(last=False)

    def has_ended(self, consultation_id: str) -> bool:
        """Ended by its host while this process ran (``authorize`` is the record)."""
        return consultation_id in self._ended

    async def close(self) -> None:
        """Shut down: tell every socket (1001), stop recordings, close the relay rooms."""
        self._closed = True
        for consultation in list(self._consultations.values()):
            try:
                await consultation.end(None, "the server is shutting down")
            except Exception:
                logger.exception("closing %s failed", consultation)
