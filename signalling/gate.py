"""The start of every signalling socket, shared by the endpoint that hosts consultations
and the proxy that forwards them to a media worker: the Origin and sign-in checks, the
join message, the caller's seat, and the host application's requests to close a socket
(its caller signed out or was deactivated)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeAlias, TypeVar, cast

from starlette.websockets import WebSocket, WebSocketDisconnect

from . import protocol as p
from .policy import Limits, Principal, Refused, Seat

logger = logging.getLogger(__name__)

T = TypeVar("T")
MaybeAwaitable: TypeAlias = T | Awaitable[T]  # a callback may be sync or async
Authenticate = Callable[[WebSocket], MaybeAwaitable[Principal | None]]
AllowedOrigin = Callable[[WebSocket], MaybeAwaitable[bool]]
Authorize = Callable[[Principal, str], MaybeAwaitable[Seat]]


class Closing(Exception):
    """Close the socket with ``code``, telling the client ``reason`` first."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def resolve(value: MaybeAwaitable[T]) -> T:
    """A callback's result, awaited if the callback was async."""
    if inspect.isawaitable(value):
        return cast(T, await value)
    return value


async def open_socket(websocket: WebSocket, allowed_origin: AllowedOrigin, authenticate: Authenticate,
                      *, shutting_down: bool = False) -> Principal | None:
    """Check the Origin (a foreign one fails the handshake: HTTP 403), accept, and name the
    caller; None when the socket was refused and closed."""
    if not await resolve(allowed_origin(websocket)):
        origin = websocket.headers.get("origin", "")[:100]
        logger.info("refused a signalling socket from a foreign origin %r", origin)
        await websocket.close(p.CLOSE_REFUSED)  # before accept: the handshake fails
        return None
    principal = await resolve(authenticate(websocket))
    await websocket.accept()
    if shutting_down:
        await refuse(websocket, p.CLOSE_RESTARTING, "the server is restarting; reconnect shortly")
        return None
    if principal is None:
        await refuse(websocket, p.CLOSE_UNAUTHENTICATED, "sign in to join a consultation")
        return None
    return principal


async def refuse(websocket: WebSocket, code: int, reason: str) -> None:
    await websocket.send_text(p.to_wire(p.Error(code=code, message=reason)))
    await websocket.close(code, truncate(reason))


async def receive_join(websocket: WebSocket, limits: Limits) -> tuple[p.Join | p.Probe, str]:
    """The first message, which must be a valid join (or a network check's probe); also its
    text, to pass on as is."""
    try:
        message = await asyncio.wait_for(websocket.receive(), limits.join_timeout_seconds)
    except TimeoutError:
        raise Closing(p.CLOSE_TIMEOUT, "expected a join message") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:
        raise Closing(p.CLOSE_MALFORMED, "binary messages are not accepted")
    try:
        data = p.decode_json(text, limits.max_message_bytes)
        if data.get("type") not in ("join", "probe"):
            raise Closing(p.CLOSE_MALFORMED,
                          f"the first message must be a join or a probe, not {str(data.get('type'))[:40]!r}")
        join = p.validate(data)
    except p.ProtocolError as exc:
        raise Closing(exc.code, exc.message) from None
    assert isinstance(join, p.Join | p.Probe)
    return join, text


async def seat_for(authorize: Authorize, principal: Principal, consultation_id: str) -> Seat:
    """The caller's seat, if they may join now; otherwise :class:`Closing` says why."""
    try:
        seat = await resolve(authorize(principal, consultation_id))
    except Refused as exc:
        raise Closing(exc.code, exc.reason) from None
    if not isinstance(seat, Seat):
        raise TypeError(f"authorize() must return a Seat or raise Refused, got {seat!r}")
    closed = seat.closed_reason(datetime.now(UTC))
    if closed is not None:
        raise Closing(p.CLOSE_CLOSED, closed)
    return seat


async def seat_to_join(authorize: Authorize, principal: Principal, consultation_id: str) -> Seat:
    """The caller's seat for a join: as :func:`seat_for`, and refused while the host
    application says the caller must do something first (``Seat.join_refused``)."""
    seat = await seat_for(authorize, principal, consultation_id)
    if seat.join_refused is not None:
        raise Closing(p.CLOSE_REFUSED, seat.join_refused)
    return seat


def truncate(reason: str) -> str:
    """A close reason is at most 123 bytes of UTF-8."""
    encoded = reason.encode()
    return reason if len(encoded) <= 123 else encoded[:120].decode(errors="ignore") + "..."


@dataclass(eq=False)
class Kick:
    """The host application's request to close one socket (see :class:`Kicks`)."""

    websocket: WebSocket
    requested: asyncio.Event = field(default_factory=asyncio.Event)
    code: int = p.CLOSE_NORMAL
    reason: str = ""
    on_request: Callable[[int, str], None] | None = None  # once the socket's session runs


class Kicks:
    """The sockets an endpoint serves, by the websocket they arrived on, so the host can
    close one (``disconnect``) at any point of its life, even before it has joined."""

    def __init__(self) -> None:
        self._served: dict[int, Kick] = {}

    @contextlib.contextmanager
    def watch(self, websocket: WebSocket) -> Iterator[Kick]:
        kick = self._served[id(websocket)] = Kick(websocket)
        try:
            yield kick
        finally:
            if self._served.get(id(websocket)) is kick:
                del self._served[id(websocket)]

    def request(self, websocket: WebSocket, code: int, reason: str) -> bool:
        """True when the socket is served here (the first request's code and reason win)."""
        kick = self._served.get(id(websocket))
        if kick is None or kick.websocket is not websocket:
            return False
        if not kick.requested.is_set():
            kick.code, kick.reason = code, reason
            kick.requested.set()
            if kick.on_request is not None:
                kick.on_request(code, reason)
        return True
