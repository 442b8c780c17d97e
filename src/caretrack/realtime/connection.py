"""/ws/events: one socket per open page. The handshake is refused unless the Origin is
ours and the caller is signed in; then the socket replays what the client missed and
streams live events, in sequence order, each exactly once.

Close codes: caretrack.realtime.sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from caretrack.accounts.guard import identify, require_user
from caretrack.core.errors import CareTrackError
from caretrack.core.logs import get_logger
from caretrack.core.outbox import store as outbox
from caretrack.core.outbox.events import dumps, event_message
from caretrack.core.settings import Settings
from caretrack.http.clients import origin_allowed
from caretrack.realtime.access import lapses_at
from caretrack.realtime.bus import Bus
from caretrack.realtime.sockets import (
    CLOSE_BINARY,
    CLOSE_FLOOD,
    CLOSE_GOING_AWAY,
    CLOSE_MALFORMED,
    CLOSE_POLICY,
    CLOSE_TIMEOUT,
    CLOSE_TOO_BIG,
    GOING_AWAY,
)
from signalling.budget import MessageBudget, Verdict

log = get_logger("caretrack.realtime.socket")

MAX_MESSAGE_CHARS = 1024
REPLAY_BATCH = 500

_ids = itertools.count(1)
PING = dumps({"type": "ping"})


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Connection:
    keeps_alive = False  # an open page is not activity: the idle timeout ends its socket

    def __init__(self, websocket: WebSocket, bus: Bus, user_id: int, session_id: str | None,
                 token_id: int | None) -> None:
        self.ws = websocket
        self.bus = bus
        self.config = bus.config
        self.user_id = user_id
        self.session_id = session_id
        self.token_id = token_id
        self.prefix = f"ws#{next(_ids)} user {user_id}"
        self.last_sent = 0
        self.behind_at_last_check = 0  # the cursor check's memory (see Bus.check_cursors)
        self.sending_since: float | None = None
        self.ready = False
        self._queue: deque[tuple[int, str]] = deque()
        self._need_catch_up = False
        self._ping_due = False
        self._wake = asyncio.Event()
        self._close_requested = asyncio.Event()
        self._close: tuple[int, str] | None = None
        self._last_heard = time.monotonic()
        self.budget = MessageBudget(self.config.message_rate, self.config.message_burst, self.config.flood_strikes,
                                    self.config.flood_seconds, self.config.clock)

    # --- called by the hub (sync) --------------------------------------------------------

    def offer(self, seq: int, event_json: str) -> None:
        if len(self._queue) >= self.config.max_queue:
            self._queue.clear()  # too far behind: the database has it all
            self._need_catch_up = True
        else:
            self._queue.append((seq, event_json))
        self._wake.set()

    def request_catch_up(self) -> None:
        self._need_catch_up = True
        self._wake.set()

    def close_soon(self, code: int, reason: str) -> None:
        if self._close is None:
            self._close = (code, reason)
        self._close_requested.set()

    # --- the socket's life ---------------------------------------------------------------

    async def run(self) -> None:
        code, reason = CLOSE_GOING_AWAY, GOING_AWAY
        closing = asyncio.create_task(self._close_requested.wait())
        handshake = asyncio.create_task(self._handshake())
        tasks = [closing, handshake]
        try:
            # A close requested during the handshake (shutdown, the auth sweep) is not kept
            # waiting for a client that never sends its resume message.
            await asyncio.wait([handshake, closing], return_when=asyncio.FIRST_COMPLETED)
            if not handshake.done():
                raise _Close(*self._close) if self._close else _Close(CLOSE_GOING_AWAY, GOING_AWAY)
            handshake.result()
            self.ready = True
            live = [asyncio.create_task(self._reader()), asyncio.create_task(self._writer()), closing]
            tasks += live
            done, _ = await asyncio.wait(live, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if isinstance(exc, _Close):
                    self.close_soon(exc.code, exc.reason)
                elif isinstance(exc, WebSocketDisconnect):
                    self._close = self._close or (0, "client went away")
                elif exc is not None:
                    log.error(f"{self.prefix}: failed", error=repr(exc))
                    self.close_soon(1011, "internal error")
            if self._close is not None:
                code, reason = self._close
        except _Close as exc:
            code, reason = exc.code, exc.reason
        except WebSocketDisconnect:
            code = 0
        except Exception as exc:  # e.g. the database is away during the handshake: the client retries
            log.error(f"{self.prefix}: failed", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            code, reason = 1011, "internal error"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if code and self.ws.application_state == WebSocketState.CONNECTED \
                and self.ws.client_state == WebSocketState.CONNECTED:
            log.info(f"{self.prefix}: closing", code=code, reason=reason)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._close_and_drain(code, reason), self.config.close_timeout_seconds)

    async def _close_and_drain(self, code: int, reason: str) -> None:
        """Close, then read until the client's close frame: the server only sees it after
        whatever the client sent before it (a flooder's backlog)."""
        await self.ws.close(code, reason)
        while self.ws.client_state == WebSocketState.CONNECTED:
            if (await self.ws.receive())["type"] == "websocket.disconnect":
                return

    async def _handshake(self) -> None:
        current = await outbox.last_seq(self.user_id)
        await self._send(dumps({"type": "hello", "user_id": self.user_id, "seq": current}))
        try:
            message = await asyncio.wait_for(self._receive(), self.config.resume_timeout_seconds)
        except TimeoutError:
            raise _Close(CLOSE_TIMEOUT, "expected a resume message") from None
        if message.get("type") != "resume":
            raise _Close(CLOSE_MALFORMED, f"expected a resume message, got type {message.get('type')!r}")
        after = message.get("after")
        if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 0):
            raise _Close(CLOSE_MALFORMED, "resume 'after' must be a non-negative integer or null")
        if after is None:
            self.last_sent = current
        elif after > current or current - after > self.config.max_replay or not await self._retained_after(after):
            await self._resync()
            return
        else:
            self.last_sent = after
        await self._catch_up()

    async def _retained_after(self, after: int) -> bool:
        """Is every event after `after` still in the outbox?"""
        first = await outbox.first_retained_seq(self.user_id)
        if first is None:
            return await outbox.last_seq(self.user_id) <= after
        return first <= after + 1

    async def _resync(self) -> None:
        self.last_sent = await outbox.last_seq(self.user_id)
        await self._send(dumps({"type": "resync", "seq": self.last_sent}))

    async def _catch_up(self) -> None:
        while True:
            async with self.bus.catch_up_gate:
                rows = await outbox.read_after(self.user_id, self.last_sent, REPLAY_BATCH)
            for row in rows:
                await self._send(event_message(row.seq, dumps(row.event.to_wire())))
                self.last_sent = row.seq
            if len(rows) < REPLAY_BATCH:
                return

    async def _writer(self) -> None:
        # One wait per wake-up, no per-socket timer: the bus's heartbeat loop asks for pings.
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._ping_due:
                self._ping_due = False
                await self._send(PING)
            while self._queue:
                seq, event_json = self._queue.popleft()
                if seq <= self.last_sent:
                    continue  # a duplicate wake-up
                if seq == self.last_sent + 1:
                    await self._send(event_message(seq, event_json))
                    self.last_sent = seq
                else:  # a gap: the missing events are committed, so the database has them
                    await self._catch_up()
            if self._need_catch_up:
                self._need_catch_up = False
                await self._catch_up()

    def heartbeat(self, moment: float) -> None:
        """Called by the bus every ping interval: close a silent client, else ping it."""
        if moment - self._last_heard > self.config.pong_timeout_seconds:
            self.close_soon(CLOSE_TIMEOUT, "no reply to heartbeats")
        elif self.ready:
            self._ping_due = True
            self._wake.set()

    async def _reader(self) -> None:
        while True:
            message = await self._receive()
            if self.budget.take() is Verdict.FLOODING:
                raise _Close(CLOSE_FLOOD, "too many messages")
            if message.get("type") != "pong":
                raise _Close(CLOSE_MALFORMED, f"unexpected message type {message.get('type')!r}")

    async def _receive(self) -> dict[str, Any]:
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        self._last_heard = time.monotonic()
        text = message.get("text")
        if text is None:
            raise _Close(CLOSE_BINARY, "binary messages are not accepted")
        if len(text) > MAX_MESSAGE_CHARS:
            raise _Close(CLOSE_TOO_BIG, f"messages are limited to {MAX_MESSAGE_CHARS} characters")
        try:
            data = json.loads(text)
        except ValueError:
            raise _Close(CLOSE_MALFORMED, "message is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise _Close(CLOSE_MALFORMED, "message must be a JSON object with a string 'type'")
        return data

    async def _send(self, text: str) -> None:
        # No wait_for per message (it costs a task each); the bus's watchdog closes a
        # socket whose send has been stuck longer than send_timeout_seconds.
        self.sending_since = time.monotonic()
        await self.ws.send_text(text)
        self.sending_since = None

    def stuck(self, moment: float) -> bool:
        return self.sending_since is not None and moment - self.sending_since > self.config.send_timeout_seconds


async def events_socket(websocket: WebSocket) -> None:
    app = websocket.app
    settings: Settings = app.state.settings
    bus: Bus = app.state.realtime
    scope = websocket.scope
    if not origin_allowed(scope, settings):
        log.info("refused a socket from a foreign origin",
                 origin=dict(scope.get("headers") or []).get(b"origin", b"").decode("latin-1")[:100])
        await websocket.close(CLOSE_POLICY)
        return
    state = scope.setdefault("state", {})
    if "auth" not in state:  # the auth middleware normally did this
        auth = await identify(scope, settings)
        state.update(auth=auth, user=auth.user if auth else None, session=auth.session if auth else None)
    try:
        user = await require_user(websocket, None)
    except CareTrackError:
        await websocket.close(CLOSE_POLICY)
        return
    auth = state["auth"]
    conn = Connection(websocket, bus, user.id, auth.session.id if auth.session else None,
                      auth.token.id if auth.token else None)
    await websocket.accept()
    if bus.closing:  # the client reconnects, to another process or to this one once it is back
        await websocket.close(CLOSE_GOING_AWAY, GOING_AWAY)
        return
    if not bus.register(conn, lapses_at(auth, settings, keeps_alive=conn.keeps_alive)):
        await websocket.close(CLOSE_POLICY, f"at most {bus.config.max_sockets_per_user} live connections per user")
        return
    try:
        await conn.run()
    finally:
        bus.unregister(conn)

