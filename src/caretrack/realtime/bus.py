"""The bus of one web process: the relay that publishes committed events, the wake-up
channel (Redis pub/sub, or in-process without Redis), the hub of open sockets, and the
safety nets that make delivery complete even when a wake-up is lost.

Redis pub/sub is at-most-once, so nothing here trusts it to deliver: a socket that sees a
sequence gap reads the database; after (re)subscribing every socket checks the database;
and every few seconds the hub compares each socket with its user's cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from caretrack.accounts.sessions import now as wall_now
from caretrack.core.logs import get_logger
from caretrack.core.loops import pause, stop_loops
from caretrack.core.outbox import store as outbox
from caretrack.core.outbox.events import dumps
from caretrack.core.settings import Settings
from caretrack.realtime.access import check_connections
from caretrack.realtime.lapses import Lapses
from caretrack.realtime.sockets import CLOSE_GOING_AWAY, GOING_AWAY, Guarded, Socket

log = get_logger("caretrack.realtime")

EVENTS_CHANNEL = "caretrack:events"
AUTH_CHANNEL = "caretrack:auth"


@dataclass
class BusConfig:
    """Timings; tests shorten them."""

    relay_poll_seconds: float = 1.0  # catches events whose committer died before waking a relay
    cursor_check_seconds: float = 5.0  # compare every socket with its user's cursor
    auth_sweep_seconds: float = 30.0  # re-check every socket's sign-in (a net: each is also checked as it lapses)
    ping_seconds: float = 20.0
    pong_timeout_seconds: float = 45.0
    resume_timeout_seconds: float = 10.0
    send_timeout_seconds: float = 30.0
    close_timeout_seconds: float = 2.5  # for the close frame; within the shutdown drain (site.serving)
    max_replay: int = 2000  # further behind than this: resync instead of replaying
    max_queue: int = 1000  # live events waiting for a slow socket; beyond, it catches up from the database
    max_sockets_per_user: int = 50
    message_rate: float = 5.0  # client messages per second, sustained
    message_burst: int = 20
    flood_strikes: int = 60  # over-budget messages in one episode before closing (signalling.budget)
    flood_seconds: float = 1.0  # an episode of over-budget messages lasting this long is closed too
    clock: Callable[[], float] = time.monotonic  # the sockets' monotonic clock (message budgets)


@dataclass
class Bus:
    settings: Settings
    redis: Any = None  # redis.asyncio.Redis or None
    config: BusConfig = field(default_factory=BusConfig)
    sockets: dict[int, set[Socket]] = field(default_factory=dict)
    # Other sockets that end with their sign-in (a call's /ws/signal): checked, not fed events.
    guarded: dict[int, set[Guarded]] = field(default_factory=dict)
    _lapses: Lapses[Guarded] = field(default_factory=Lapses)  # when each is to be checked next
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _auth_wake: asyncio.Event = field(default_factory=asyncio.Event)
    _auth_pending: set[int] = field(default_factory=set)
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: int | None = None
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False  # draining for shutdown: new sockets are told to go elsewhere
    _emptied: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _subscriber: asyncio.Task | None = None
    # Sockets reading the database at once (replays, catch-ups): a reconnect storm queues here.
    catch_up_gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(16))

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        outbox.listen(self)
        # Background loops must not inherit a caller's transaction (the Tortoise pitfall).
        spawn = _spawner(self._loop)
        self._tasks = [spawn(self._relay_loop(), "relay"), spawn(self._auth_loop(), "auth"),
                       spawn(self._cursor_loop(), "cursor-check"),
                       spawn(self._heartbeat_loop(), "heartbeat")]
        if self.redis is not None:
            self._subscriber = spawn(self._subscriber_loop(), "subscriber")
            self._tasks.append(self._subscriber)
        else:
            self.subscribed.set()
        self.wake()

    async def drain(self) -> None:
        """Shutdown begins: close every socket with 1001 and wait until all are gone."""
        self.closing = True
        for conn in [c for conns in self.sockets.values() for c in conns]:
            conn.close_soon(CLOSE_GOING_AWAY, GOING_AWAY)
        while self.sockets:
            self._emptied.clear()
            await self._emptied.wait()

    async def stop(self) -> None:
        outbox.unlisten(self)
        # The database loops end between passes (see caretrack.core.loops); the subscriber only
        # waits on Redis, which is safe to cancel.
        self._stopping.set()
        self._wake.set()
        self._auth_wake.set()
        if self._subscriber is not None:
            self._subscriber.cancel()
        await stop_loops(self._tasks, self._stopping)
        for conn in [c for conns in self.sockets.values() for c in conns]:
            conn.close_soon(CLOSE_GOING_AWAY, GOING_AWAY)

    # --- wake-ups (sync, callable from anywhere) ----------------------------------------

    def _signal(self, event: asyncio.Event) -> None:
        if self._loop is None or self._loop.is_closed():
            return
        if threading.get_ident() == self._thread:
            event.set()
        else:
            self._loop.call_soon_threadsafe(event.set)

    def wake(self) -> None:
        self._signal(self._wake)

    def auth_changed(self, user_id: int, *, broadcast: bool = True) -> None:
        self._auth_pending.add(int(user_id))
        if broadcast:
            self._auth_pending.add(_BROADCAST_MARK)
        self._signal(self._auth_wake)

    # --- the hub -------------------------------------------------------------------------

    def register(self, conn: Socket, lapses_at: datetime | None = None) -> bool:
        conns = self.sockets.get(conn.user_id, set())
        if len(conns) >= self.config.max_sockets_per_user:
            return False
        conns.add(conn)
        self.sockets[conn.user_id] = conns
        self._lapse_at(conn, lapses_at)
        return True

    def unregister(self, conn: Socket) -> None:
        conns = self.sockets.get(conn.user_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.sockets[conn.user_id]
        self._lapses.drop(conn)
        if not self.sockets:
            self._emptied.set()

    def guard(self, conn: Guarded, lapses_at: datetime | None = None) -> None:
        """Close `conn` (with the reason) when its sign-in ends, as /ws/events sockets are.
        It is checked once now: an auth change may have committed since it was identified."""
        self.guarded.setdefault(conn.user_id, set()).add(conn)
        self._lapse_at(conn, lapses_at)
        self.auth_changed(conn.user_id, broadcast=False)

    def unguard(self, conn: Guarded) -> None:
        conns = self.guarded.get(conn.user_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.guarded[conn.user_id]
        self._lapses.drop(conn)

    def _lapse_at(self, conn: Guarded, moment: datetime | None) -> None:
        if moment is None:
            self._lapses.drop(conn)
        elif self._lapses.set(conn, moment):
            self._signal(self._auth_wake)  # the auth loop waits for a later moment: wake it to wait less

    def _guarded_of(self, users: Iterable[int]) -> dict[Guarded, None]:
        """The users' open sockets of both kinds (an ordered set)."""
        return dict.fromkeys(c for u in users for group in (self.sockets, self.guarded) for c in group.get(u, ()))

    def _holds(self, conn: Guarded) -> bool:
        return conn in self.sockets.get(conn.user_id, ()) or conn in self.guarded.get(conn.user_id, ())

    @property
    def socket_count(self) -> int:
        return sum(len(c) for c in self.sockets.values())

    def deliver(self, event_json: str, recipients: Iterable[tuple[int, int]]) -> None:
        sockets = self.sockets
        for user_id, seq in recipients:
            conns = sockets.get(user_id)
            if conns:
                for conn in conns:
                    conn.offer(seq, event_json)

    def _deliver_message(self, raw: bytes | str) -> None:
        """One Redis message: {"events": [[event_json, [[user, seq], ...]], ...]}."""
        try:
            batch = json.loads(raw)["events"]
            for event_json, recipients in batch:
                self.deliver(event_json, recipients)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed bus message")

    # --- the relay -----------------------------------------------------------------------

    async def _publish(self, items: list[outbox.Unpublished]) -> None:
        batch = [[dumps(item.event.to_wire()), item.recipients] for item in items]
        if self.redis is None:
            for event_json, recipients in batch:
                self.deliver(event_json, recipients)
            return
        try:
            await self.redis.publish(EVENTS_CHANNEL, dumps({"events": batch}))
        except Exception:
            # Redis is away: serve this process's sockets now; the events stay unpublished,
            # so the next pass publishes them for the other processes (duplicates are dropped).
            for event_json, recipients in batch:
                self.deliver(event_json, recipients)
            raise

    async def _pause(self, seconds: float) -> None:
        await pause(self._stopping, seconds)

    async def _relay_loop(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            if backoff:
                await self._pause(backoff)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.relay_poll_seconds)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                while await outbox.publish_pending(self._publish) > 0:
                    pass
                backoff = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                backoff = min(max(backoff * 2, 0.1), 5.0)
                log.warning("relay pass failed; retrying",
                            error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__, retry_in=backoff)

    async def _subscriber_loop(self) -> None:
        attempt = 0
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(EVENTS_CHANNEL, AUTH_CHANNEL)
                # Anything published while we were not subscribed is in the database.
                self.subscribed.set()
                await self.check_cursors(strict=True)
                self._signal(self._auth_wake)
                self._auth_pending.add(_ALL_USERS)
                attempt = 0
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message is None:
                        await pubsub.ping()
                        continue
                    if message["type"] != "message":
                        continue
                    channel = message["channel"]
                    channel = channel.decode() if isinstance(channel, bytes) else channel
                    if channel == EVENTS_CHANNEL:
                        self._deliver_message(message["data"])
                    elif channel == AUTH_CHANNEL:
                        with contextlib.suppress(ValueError):
                            self._auth_pending.add(int(message["data"]))
                            self._signal(self._auth_wake)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                attempt += 1
                delay = min(0.1 * 2 ** min(attempt, 6), 5.0) * (0.5 + random.random() / 2)
                log.warning("event subscriber lost Redis; resubscribing", error=str(exc) or type(exc).__name__,
                            retry_in=round(delay, 2))
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), 1)

    # --- safety nets ---------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while not self._stopping.is_set():
            await self._pause(self.config.ping_seconds)
            moment = time.monotonic()
            for conns in list(self.sockets.values()):
                for conn in list(conns):
                    conn.heartbeat(moment)

    async def _cursor_loop(self) -> None:
        while not self._stopping.is_set():
            await self._pause(self.config.cursor_check_seconds)
            if not self._stopping.is_set():
                await self.check_cursors(strict=False)

    async def check_cursors(self, *, strict: bool) -> None:
        """Catch up the sockets that are behind their user's cursor. Not strict (the
        periodic net): only those still behind what was committed at the previous check,
        so events in flight never send a crowd of sockets to the database."""
        moment = time.monotonic()
        for conns in self.sockets.values():
            for conn in conns:
                if conn.stuck(moment):
                    conn.close_soon(4408, "the client is not reading")
        if not self.sockets:
            return
        try:
            cursors = await outbox.last_seqs(list(self.sockets))
        except Exception as exc:
            log.warning("cursor check failed", error=str(exc) or type(exc).__name__)
            return
        for user_id, conns in list(self.sockets.items()):
            latest = cursors.get(user_id, 0)
            for conn in conns:
                if not conn.ready:
                    continue
                if strict or conn.last_sent < conn.behind_at_last_check:
                    if conn.last_sent < latest:
                        conn.request_catch_up()
                conn.behind_at_last_check = latest if conn.last_sent < latest else 0

    def _seconds_to_lapse(self) -> float:
        earliest = self._lapses.earliest()
        return float("inf") if earliest is None else (earliest - wall_now()).total_seconds()

    async def _auth_loop(self) -> None:
        """Check sockets' sign-ins: a user's when told of a change (here or, through Redis,
        in another process), each socket's when it lapses, and all of them every sweep."""
        next_sweep = time.monotonic() + self.config.auth_sweep_seconds
        while not self._stopping.is_set():
            wait = max(0.0, min(next_sweep - time.monotonic(), self._seconds_to_lapse()))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._auth_wake.wait(), wait)
            self._auth_wake.clear()
            if self._stopping.is_set():
                return
            pending, self._auth_pending = self._auth_pending, set()
            sweep_all = _ALL_USERS in pending or time.monotonic() >= next_sweep
            if sweep_all:
                next_sweep = time.monotonic() + self.config.auth_sweep_seconds
            if _BROADCAST_MARK in pending and self.redis is not None:
                for user_id in pending - {_BROADCAST_MARK, _ALL_USERS}:
                    try:
                        await self.redis.publish(AUTH_CHANNEL, str(user_id))
                    except Exception as exc:  # the periodic sweep still closes it
                        log.warning("could not broadcast an auth change", error=str(exc) or type(exc).__name__)
            users = set(self.sockets) | set(self.guarded) if sweep_all else pending
            conns = self._guarded_of(users)
            moment = wall_now()
            conns.update(dict.fromkeys(self._lapses.due(moment)))
            if not conns:
                continue
            for conn in conns:  # checked now; those that stay open are given their next moment
                self._lapses.drop(conn)
            try:
                lapses = await check_connections(list(conns), self.settings, at=moment)
            except Exception as exc:  # the sweep tries them all again
                log.warning("auth check failed", error=str(exc) or type(exc).__name__)
                continue
            for conn, lapse in lapses.items():
                if self._holds(conn):  # not gone meanwhile
                    self._lapses.set(conn, lapse)


_BROADCAST_MARK = -1
_ALL_USERS = -2


def _spawner(loop: asyncio.AbstractEventLoop):
    def spawn(coro, name: str) -> asyncio.Task:
        return loop.create_task(coro, name=f"realtime-{name}", context=contextvars.Context())

    return spawn

