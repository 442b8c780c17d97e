"""The signalling endpoint the host application mounts, and its registry of live
consultations."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

import media

from . import protocol as p
from .consultation import Consultation
from .gate import AllowedOrigin, Authenticate, Authorize, Kicks, open_socket
from .policy import Hooks, Limits, Principal
from .session import Session

logger = logging.getLogger(__name__)

IceServersFor = Callable[[Principal], Sequence[media.IceServer]]

ENDED_REMEMBERED = 10_000


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
        self._sessions: set[Session] = set()
        self._kicks = Kicks()
        self._closed = False

    def route(self, path: str = "/ws/signal", name: str = "signalling") -> WebSocketRoute:
        return WebSocketRoute(path, self.endpoint, name=name)

    async def endpoint(self, websocket: WebSocket) -> None:
        """The ASGI WebSocket endpoint (Starlette ``WebSocketRoute``)."""
        with self._kicks.watch(websocket) as kick:
            principal = await open_socket(websocket, self._allowed_origin, self._authenticate,
                                          shutting_down=self._closed)
            if principal is None:
                return
            session = Session(self, websocket, principal)
            self._sessions.add(session)
            kick.on_request = session.fail
            if kick.requested.is_set():
                session.fail(kick.code, kick.reason)
            try:
                await session.run()
            finally:
                self._sessions.discard(session)

    def disconnect(self, websocket: WebSocket, code: int, reason: str) -> bool:
        """Close the socket served on ``websocket`` with ``code``, telling its client
        ``reason`` first: the host withdrew the caller's sign-in (signed out, expired,
        deactivated).  The caller leaves the consultation and its relay room as if they
        had hung up; whether they may come back is ``authenticate``'s answer.  False when
        that socket is not served here."""
        return self._kicks.request(websocket, code, reason)

    @property
    def authorize(self) -> Authorize:
        return self._authorize

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

    def forget(self, consultation: Consultation) -> None:
        """Drop a consultation that is over in this process (called by the consultation
        itself, see :class:`signalling.consultation.Registry`); a newer one with the same id
        stays."""
        if self._consultations.get(consultation.id) is consultation:
            del self._consultations[consultation.id]

    def mark_ended(self, consultation_id: str) -> None:
        """Remember that the host ended it (the last ``ENDED_REMEMBERED`` ids): see
        :meth:`has_ended`."""
        self._ended[consultation_id] = None
        while len(self._ended) > ENDED_REMEMBERED:
            self._ended.popitem(last=False)

    def has_ended(self, consultation_id: str) -> bool:
        """Ended by its host while this process ran (``authorize`` is the record)."""
        return consultation_id in self._ended

    async def close(self) -> None:
        """Shut down: stop recordings, close the relay rooms, and close every socket with
        1012 so that clients reconnect (to this server once it is back, or to another media
        worker).  Nothing is marked ended."""
        self._closed = True
        for consultation in list(self._consultations.values()):
            try:
                await consultation.evict(p.CLOSE_RESTARTING, "the server is restarting; reconnecting")
            except Exception:
                logger.exception("closing %s failed", consultation)
        for session in list(self._sessions):  # those that have not joined yet
            session.close_soon(p.CLOSE_RESTARTING, "the server is restarting; reconnecting")
