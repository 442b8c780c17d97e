"""Fixtures for live updates: the app served by hypercorn with short bus timings, users with
sessions, a WebSocket client that speaks the /ws/events protocol, and a private Redis
server that tests may kill and restart."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from caretrack.accounts.models import User
from caretrack.accounts.sessions import cookie_name, create_session
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.transaction import atomic
from caretrack.realtime.bus import BusConfig
from caretrack.site.app import create_app
from tests.conftest import free_port, serve_in_loop, unavailable

FAST = BusConfig(
    relay_poll_seconds=0.5, cursor_check_seconds=1.0, auth_sweep_seconds=30.0, ping_seconds=5.0,
    pong_timeout_seconds=12.0, resume_timeout_seconds=5.0, send_timeout_seconds=5.0,
)


@dataclass
class Server:
    url: str
    settings: Settings
    app: Any
    task: asyncio.Task
    stop_event: asyncio.Event

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws/events"

    @property
    def bus(self):
        return self.app.state.realtime

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 15)


async def serve(settings: Settings, config: BusConfig = FAST, port: int | None = None) -> Server:
    """The app on hypercorn in this loop. Two of these share Tortoise's global context,
    which is fine: they point at the same database."""
    port = port or free_port()
    served = settings.replace(base_url=f"http://127.0.0.1:{port}")
    application = create_app(served)
    application.state.realtime_config = dataclasses.replace(config)  # tests may change their copy
    task, stop = await serve_in_loop(application, port)
    return Server(served.base_url, served, application, task, stop)


@pytest.fixture
async def server(settings) -> AsyncIterator[Server]:
    running = await serve(settings)
    yield running
    await running.stop()


# --- users ---------------------------------------------------------------------------------

_counter = iter(range(1, 10**9))


async def make_user(role: Role = Role.PATIENT, name: str | None = None, **fields: Any) -> User:
    n = next(_counter)
    return await User.create(email=f"{role}{n}@example.test", full_name=name or f"{role.capitalize()} {n}",
                             role=role, **fields)


async def sign_in(user: User, settings: Settings) -> str:
    """A Cookie header for a new session of `user` (second factor done for admins/doctors)."""
    from datetime import datetime

    if user.needs_mfa and user.totp_enrolled_at is None:
        user.totp_enrolled_at = datetime.now(UTC)
        await User.filter(id=user.id).update(totp_enrolled_at=user.totp_enrolled_at)
    secret, _ = await create_session(user, settings, client_address="127.0.0.1", user_agent="tests",
                                     mfa_verified=True)
    return f"{cookie_name(settings)}={secret}"


async def emit(event_type: str, *, users=(), roles=(), actor_id: int | None = None,
               subject=None, data: dict | None = None) -> None:
    async with atomic() as tx:
        await tx.emit(event_type, actor_id=actor_id, subject=subject, data=data, users=users, roles=roles)


async def sentinel(*user_ids: int) -> dict:
    """Send the users a marker event; returns its data, to wait for with `LiveClient.until`. A
    user's events arrive in sequence order, so once the marker has come anything due before it
    has come too: the way to show that something did not arrive, without sleeping."""
    marker = {"sentinel": next(_counter)}
    await emit("test.sentinel", users=list(user_ids), data=marker)
    return marker


# --- the WebSocket client ------------------------------------------------------------------


@dataclass
class LiveClient:
    """Speaks /ws/events: answers pings, records every event it receives, in order."""

    ws: ClientConnection
    hello: dict
    received: list[dict] = field(default_factory=list)
    resyncs: list[dict] = field(default_factory=list)
    _reader: asyncio.Task | None = None
    closed: asyncio.Future | None = None

    @property
    def seqs(self) -> list[int]:
        return [m["seq"] for m in self.received]

    @property
    def last_seq(self) -> int | None:
        if self.received:
            return self.received[-1]["seq"]
        return self.resyncs[-1]["seq"] if self.resyncs else None

    def start(self) -> None:
        self.closed = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if message["type"] == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                elif message["type"] == "event":
                    self.received.append(message)
                elif message["type"] == "resync":
                    self.resyncs.append(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result((self.ws.close_code, self.ws.close_reason))

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        for _ in range(int(timeout / 0.02)):
            if len(self.received) >= count:
                return self.received
            await asyncio.sleep(0.02)
        raise AssertionError(f"expected {count} events, got {len(self.received)}: {self.seqs}")

    async def until(self, marker: dict, timeout: float = 10.0) -> list[dict]:
        """Wait for the `sentinel` event carrying `marker`, drop it (it is the test's, not part of
        what the test checks) and return everything received before it."""
        for _ in range(int(timeout / 0.02)):
            for i, message in enumerate(self.received):
                if message["event"]["data"] == marker:
                    del self.received[i]
                    return self.received[:i]
            await asyncio.sleep(0.02)
        raise AssertionError(f"the sentinel event {marker} did not arrive; got {self.seqs}")

    async def until_sentinel(self, user_id: int, timeout: float = 10.0) -> list[dict]:
        """Send this client's user a sentinel and return what arrived after the events already
        seen and before it."""
        start = len(self.received)
        return (await self.until(await sentinel(user_id), timeout))[start:]

    async def wait_closed(self, timeout: float = 5.0) -> tuple[int, str]:
        return await asyncio.wait_for(asyncio.shield(self.closed), timeout)

    async def close(self) -> None:
        await self.ws.close()
        if self._reader:
            await asyncio.wait_for(self._reader, 5)


async def open_socket(server_or_url, cookie: str | None = None, *, origin: str | None = None,
                      headers: dict | None = None) -> ClientConnection:
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.ws_url
    base = url.replace("ws://", "http://").split("/ws/")[0]
    extra = dict(headers or {})
    if cookie:
        extra["Cookie"] = cookie
    return await websockets.connect(url, origin=origin or base, additional_headers=extra, open_timeout=5,
                                    max_size=2**22)


async def connect(server_or_url, cookie: str, *, after: int | None | str = "fresh", **kw) -> LiveClient:
    """Connect and resume after `after` ("fresh" = null: only what happens from now)."""
    ws = await open_socket(server_or_url, cookie, **kw)
    hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert hello["type"] == "hello", hello
    await ws.send(json.dumps({"type": "resume", "after": None if after == "fresh" else after}))
    client = LiveClient(ws, hello)
    client.start()
    return client


# --- a Redis server of our own, to kill and restart ----------------------------------------


@dataclass
class RedisServer:
    port: int
    directory: str
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def wait_ready(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.url)
        try:
            for _ in range(200):
                try:
                    await client.ping()
                    return
                except Exception:
                    await asyncio.sleep(0.025)
            raise RuntimeError("private redis-server did not start")
        finally:
            await client.aclose()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
async def private_redis() -> AsyncIterator[RedisServer]:
    if not shutil.which("redis-server"):
        unavailable("redis-server (to kill and restart in tests)")
    directory = tempfile.mkdtemp(prefix="caretrack-redis-")
    server = RedisServer(free_port(), directory)
    server.start()
    await server.wait_ready()
    yield server
    server.kill()
    shutil.rmtree(directory, ignore_errors=True)


def subprocess_env(settings: Settings, redis_url: str | None, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARETRACK_")}
    env.update({
        "CARETRACK_ENVIRONMENT": "test",
        "CARETRACK_DATABASE_URL": settings.database_url,
        "CARETRACK_SECRET_KEY": settings.secret_key,
        "CARETRACK_BASE_URL": f"http://127.0.0.1:{port}",
        "CARETRACK_LOG_LEVEL": "WARNING",
    })
    if redis_url:
        env["CARETRACK_REDIS_URL"] = redis_url
    return env


# --- `caretrack serve` as a subprocess -----------------------------------------------------


@dataclass
class WebProcess:
    url: str
    process: subprocess.Popen
    log: Any  # its stdout and stderr, a temporary file

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws/events"

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


async def start_web_process(settings: Settings, redis_url: str | None, *, workers: int = 1,
                            env: dict[str, str] | None = None) -> WebProcess:
    """`python -m caretrack serve`, as an operator runs it; returns once /readyz answers 200."""
    port = free_port()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-m", "caretrack", "serve", "--port", str(port),
                                "--workers", str(workers)],
                               env={**subprocess_env(settings, redis_url, port), **(env or {})}, cwd=os.getcwd(),
                               stdout=log, stderr=subprocess.STDOUT)
    web = WebProcess(f"http://127.0.0.1:{port}", process, log)
    async with httpx.AsyncClient() as probe:
        for _ in range(400):
            if process.poll() is not None:
                output = web.output()[-2000:]
                log.close()
                raise RuntimeError(f"caretrack serve exited: {output}")
            try:
                if (await probe.get(web.url + "/readyz")).status_code == 200:
                    return web
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    process.kill()
    raise RuntimeError("caretrack serve did not become ready")


def stop_web_process(web: WebProcess) -> None:
    if web.process.poll() is None:
        web.process.terminate()
        try:
            web.process.wait(10)
        except subprocess.TimeoutExpired:
            web.process.kill()
            web.process.wait(5)
    web.log.close()
