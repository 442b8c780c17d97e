"""The front half of a scaled-out deployment: web processes accept ``/ws/signal``, check
Origin, sign-in and the caller's seat, then pass the socket through to the media worker
that hosts the consultation, vouching for the caller with a signed ticket.

The worker runs an ordinary :class:`SignallingService` (see :func:`worker_service`), so the
wire protocol, limits and waiting room are the same in both deployments.  If the worker's
connection breaks without a close frame (the worker died), the browser's socket is closed
with 1012 and the client reconnects; the next join is placed on a live worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import websockets
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from websockets.asyncio.client import ClientConnection, connect

import media

from . import protocol as p
from . import tickets
from .gate import (
    AllowedOrigin,
    Authenticate,
    Authorize,
    Closing,
    Kick,
    Kicks,
    open_socket,
    receive_join,
    refuse,
    seat_for,
    seat_to_join,
)
from .policy import Hooks, Limits, Principal, Refused, Seat
from .service import SignallingService

logger = logging.getLogger(__name__)

_ids = itertools.count(1)
CONNECT_ATTEMPTS = 3
WORKER_GONE = "the media server went away; reconnecting"


@dataclass(frozen=True)
class Worker:
    """A media worker: its id and the ``ws://`` URL of its signalling endpoint."""

    id: str
    url: str


class Directory(Protocol):
    """Where consultations are hosted.  ``place`` returns the worker that hosts (or will
    host) the consultation, avoiding the workers named; ``unreachable`` reports a worker
    the proxy could not connect to."""

    async def place(self, consultation_id: str, avoid: frozenset[str]) -> Worker | None: ...

    async def unreachable(self, consultation_id: str, worker: Worker) -> None: ...


class SignallingProxy:
    """``/ws/signal`` in a web process when the relay runs in media workers."""

    def __init__(self, directory: Directory, *, ticket_key: bytes, authenticate: Authenticate,
                 allowed_origin: AllowedOrigin, authorize: Authorize, limits: Limits | None = None,
                 connect_timeout: float = 5.0) -> None:
        self.directory = directory
        self._key = ticket_key
        self._authenticate = authenticate
        self._allowed_origin = allowed_origin
        self._authorize = authorize
        self.limits = limits or Limits()
        self._connect_timeout = connect_timeout
        self._pipes: set[asyncio.Task[object]] = set()  # the endpoints' tasks, while they pipe
        self._shutdown = asyncio.Event()
        self._kicks = Kicks()
        self._closed = False

    def route(self, path: str = "/ws/signal", name: str = "signalling") -> WebSocketRoute:
        return WebSocketRoute(path, self.endpoint, name=name)

    async def endpoint(self, websocket: WebSocket) -> None:
        with self._kicks.watch(websocket) as kick:
            principal = await open_socket(websocket, self._allowed_origin, self._authenticate,
                                          shutting_down=self._closed)
            if principal is not None:
                await self._serve(websocket, principal, kick)

    def disconnect(self, websocket: WebSocket, code: int, reason: str) -> bool:
        """As :meth:`SignallingService.disconnect`: the worker sees the caller leave."""
        return self._kicks.request(websocket, code, reason)

    async def _serve(self, websocket: WebSocket, principal: Principal, kick: Kick) -> None:
        prefix = f"signal-proxy#{next(_ids)} {principal.id}"
        # A shutdown does not wait for a client that has not sent its join yet (or for a
        # worker to answer): it is told to reconnect now; nor does a kick.
        opening = asyncio.create_task(self._open_upstream(websocket, principal, prefix))
        shutdown = asyncio.create_task(self._shutdown.wait())
        kicked = asyncio.create_task(kick.requested.wait())
        try:
            await asyncio.wait({opening, shutdown, kicked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            shutdown.cancel()
            kicked.cancel()
            if not opening.done():
                opening.cancel()
            await asyncio.gather(opening, shutdown, kicked, return_exceptions=True)
        if kick.requested.is_set():
            with contextlib.suppress(Exception):
                if opening.done() and not opening.cancelled() and opening.exception() is None:
                    await opening.result().close()
                await refuse(websocket, kick.code, kick.reason)
            return
        try:
            upstream = opening.result()
        except asyncio.CancelledError:
            await refuse(websocket, p.CLOSE_RESTARTING, "the server is restarting; reconnecting")
            return
        except Closing as exc:
            await refuse(websocket, exc.code, exc.reason)
            return
        except WebSocketDisconnect:
            return
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - an ASGI endpoint runs in a task
            raise RuntimeError("the signalling proxy endpoint must run in an asyncio task")
        self._pipes.add(task)
        try:
            await self._pipe(websocket, upstream, prefix, kick)
        finally:
            self._pipes.discard(task)

    async def _open_upstream(self, websocket: WebSocket, principal: Principal, prefix: str) -> ClientConnection:
        """Read the join, check the seat, connect to the hosting worker and pass the join on."""
        join, join_text = await receive_join(websocket, self.limits)
        # a network check may come before a form the caller must complete to join
        seat = await (seat_to_join if isinstance(join, p.Join) else seat_for)(self._authorize, principal,
                                                                              join.consultation)
        upstream = await self._connect(join.consultation, tickets.issue(self._key, principal, join.consultation, seat),
                                       prefix)
        try:
            await upstream.send(join_text)
        except BaseException:
            await upstream.close()
            raise
        return upstream

    async def _connect(self, consultation_id: str, ticket: str, prefix: str) -> ClientConnection:
        avoid: set[str] = set()
        for _ in range(CONNECT_ATTEMPTS):
            worker = await self.directory.place(consultation_id, frozenset(avoid))
            if worker is None:
                break
            try:
                return await connect(worker.url, additional_headers={tickets.HEADER: ticket},
                                     open_timeout=self._connect_timeout, max_size=4 * 2**20,
                                     ping_interval=10, ping_timeout=10)
            except (TimeoutError, OSError, websockets.InvalidHandshake) as exc:
                logger.warning("%s: media worker %s (%s) is unreachable: %s", prefix, worker.id, worker.url, exc)
                avoid.add(worker.id)
                await self.directory.unreachable(consultation_id, worker)
        raise Closing(p.CLOSE_TRY_AGAIN, "no media server can take this consultation right now; retrying")

    async def _pipe(self, websocket: WebSocket, upstream: ClientConnection, prefix: str, kick: Kick) -> None:
        """Pass messages both ways until one side ends, then end the other the same way."""

        async def client_to_worker() -> None:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                if len(data) > self.limits.max_message_bytes:  # characters <= bytes: surely too big
                    raise Closing(p.CLOSE_TOO_LARGE,
                                  f"message of {len(data)}+ bytes is over the limit of {self.limits.max_message_bytes}")
                await upstream.send(data)

        async def worker_to_client() -> None:
            async for data in upstream:
                if isinstance(data, str):
                    await websocket.send_text(data)
                else:
                    await websocket.send_bytes(data)

        reader = asyncio.create_task(client_to_worker())
        writer = asyncio.create_task(worker_to_client())
        shutdown = asyncio.create_task(self._shutdown.wait())
        kicked = asyncio.create_task(kick.requested.wait())
        try:
            done, _ = await asyncio.wait({reader, writer, shutdown, kicked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer, shutdown, kicked):
                task.cancel()
            await asyncio.gather(reader, writer, shutdown, kicked, return_exceptions=True)
        code, reason = p.CLOSE_NORMAL, ""
        if kicked in done:
            code, reason = kick.code, kick.reason
            with contextlib.suppress(Exception):
                await websocket.send_text(p.to_wire(p.Error(code=code, message=reason)))
        elif shutdown in done:
            code, reason = p.CLOSE_RESTARTING, "the server is restarting; reconnecting"
            with contextlib.suppress(Exception):
                await websocket.send_text(p.to_wire(p.Error(code=code, message=reason)))
        elif reader in done and isinstance(closing := reader.exception(), Closing):
            code, reason = closing.code, closing.reason
            with contextlib.suppress(Exception):
                await websocket.send_text(p.to_wire(p.Error(code=code, message=reason)))
        elif writer in done:
            received = upstream.protocol.close_rcvd
            if received is not None:
                code, reason = received.code, received.reason
            else:
                code, reason = p.CLOSE_RESTARTING, WORKER_GONE
                logger.warning("%s: the media worker connection broke; the client will reconnect", prefix)
            if code == p.CLOSE_RESTARTING:
                with contextlib.suppress(Exception):  # a worker that died could not say so itself
                    await websocket.send_text(p.to_wire(p.Error(code=code, message=reason or WORKER_GONE)))
        with contextlib.suppress(Exception):  # the worker sees this member leave
            await upstream.close()
        if websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close(code, reason)

    async def close(self, timeout: float = 5.0) -> None:
        """Shut down: every socket is closed with 1012 so its client reconnects elsewhere."""
        self._closed = True
        self._shutdown.set()
        if self._pipes:
            await asyncio.wait(set(self._pipes), timeout=timeout)


def worker_service(relay: media.Relay, *, ticket_key: bytes, hooks: Hooks | None = None,
                   limits: Limits | None = None,
                   hosts: Callable[[str], Awaitable[bool]] | None = None) -> SignallingService:
    """The :class:`SignallingService` a media worker runs behind :class:`SignallingProxy`:
    callers are whoever a valid ticket names, with the seat it grants.  ``hosts(id)``
    (optional) confirms the consultation is still placed on this worker."""

    def authenticate(websocket: WebSocket) -> tickets.TicketHolder | None:
        try:
            return tickets.redeem(ticket_key, websocket.headers.get(tickets.HEADER))
        except Refused as exc:
            logger.warning("refused a worker connection: %s", exc.reason)
            return None

    async def authorize(principal: Principal, consultation_id: str) -> Seat:
        seat = tickets.authorize_holder(principal, consultation_id)
        if hosts is not None and not await hosts(consultation_id):
            raise Refused(p.CLOSE_TRY_AGAIN, "this consultation has moved to another media server; "
                                  "reconnecting")
        return seat

    return SignallingService(relay, authenticate=authenticate, allowed_origin=lambda websocket: True,
                             authorize=authorize, hooks=hooks, limits=limits)
