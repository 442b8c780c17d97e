"""Shared fixtures: real PostgreSQL, SQLite, Redis, an SMTP server on loopback, the app
served by hypercorn on a free port, and Chromium driven by Playwright.

A developer's laptop without a service skips the tests that need it; CI sets
CARETRACK_TEST_REQUIRE_SERVICES=1 and such a test fails instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from caretrack.core import crypto, db
from caretrack.core.settings import Settings
from caretrack.site.app import create_app

REQUIRE_SERVICES = os.environ.get("CARETRACK_TEST_REQUIRE_SERVICES") == "1"
POSTGRES_ADMIN_URL = os.environ.get("CARETRACK_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("CARETRACK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CHROMIUM = os.environ.get("CARETRACK_TEST_CHROMIUM", "/usr/bin/chromium")
TEST_BASE_URL = "http://testserver"
# Tables whose rows survive between tests: the migration record and the audit chain's head
# (which is reset rather than emptied).
KEEP_TABLES = {"tortoise_migrations"}


def unavailable(what: str) -> None:
    """Skip on a laptop; fail loudly in CI, where every service must be there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required in CI (CARETRACK_TEST_REQUIRE_SERVICES=1) but unavailable", pytrace=False)
    pytest.skip(f"{what} unavailable")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_settings(**changes) -> Settings:
    settings = Settings(environment="test", secret_key="test-secret-key-0123456789", base_url=TEST_BASE_URL)
    return settings.replace(**changes)


# --- tasks left running ----------------------------------------------------------------------


TASK_WIND_DOWN_SECONDS = 1.0


def _describe(task: asyncio.Task) -> str:
    coro = task.get_coro()
    where = getattr(coro, "__qualname__", repr(coro))
    frame = getattr(coro, "cr_frame", None)
    if frame is not None:
        where += f" at {frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno}"
    return f"{task.get_name()} ({where})"


@pytest.fixture(autouse=True)
async def no_tasks_left_running() -> AsyncIterator[None]:
    """Fail the test whose teardown leaves tasks running on the shared (session) loop: a leaked
    task slows or breaks whichever test runs next. Tasks that existed before the test (owned by
    session fixtures) are allowed."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    if not leaked:
        return
    # A task cancelled or closed during teardown may need a moment to unwind (aioice's check loop
    # ticks every 20 ms): wait for it to end, bounded, and fail only for what is still running.
    await asyncio.wait(leaked, timeout=TASK_WIND_DOWN_SECONDS)
    leaked = [t for t in leaked if not t.done()]
    if not leaked:
        return
    for task in leaked:  # stop them here so they do not also fail the next test
        task.cancel()
    await asyncio.wait(leaked, timeout=5)
    pytest.fail("The test left tasks running after its teardown; stop them in the code that started them: "
                + "; ".join(_describe(t) for t in leaked), pytrace=False)


# --- pinned instants ---------------------------------------------------------------------------

# The instants time-sensitive tests act at, never the wall clock. Together they cover a morning
# before 10:00 UTC, a minute to midnight UTC, just after midnight UTC, and the four daylight-saving
# changes of 2026 in Europe/London (29 Mar, 25 Oct) and America/New_York (8 Mar, 1 Nov).
PINNED_INSTANTS = {
    "0500Z-london-spring-forward": datetime(2026, 3, 29, 5, 0, tzinfo=UTC),
    "2359Z-new-york-spring-forward": datetime(2026, 3, 8, 23, 59, tzinfo=UTC),
    "0030Z-london-falls-back-at-0100Z": datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
    "0630Z-new-york-repeated-hour": datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
}


# PostgreSQL stores instants exactly; SQLite compares text, so it runs at every instant and
# PostgreSQL at the one nearest a day boundary (which keeps the suite's time in bounds).
POSTGRES_INSTANT = "2359Z-new-york-spring-forward"


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc) -> None:
    # As a mark, so that pytest takes it instead of the two fixtures' own params.
    if "now" in metafunc.fixturenames and "database_url" in metafunc.fixturenames:
        combos = [("sqlite", name) for name in PINNED_INSTANTS] + [("postgres", POSTGRES_INSTANT)]
        metafunc.definition.add_marker(pytest.mark.parametrize(
            ("database_url", "now"), combos, indirect=True, ids=[f"{db}-{name}" for db, name in combos]))


@pytest.fixture(params=list(PINNED_INSTANTS))
def now(request) -> datetime:
    """The instant the test acts at; a test that takes it runs at each pinned instant, and the
    `app`/`live_server` it uses have their clock pinned there too."""
    return PINNED_INSTANTS[request.param]


def _pin_clock(application, request) -> None:
    if "now" in request.fixturenames:
        pinned = request.getfixturevalue("now")
        application.state.clock = lambda: pinned


# --- databases -----------------------------------------------------------------------------


async def _postgres_admin_execute(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_URL.replace("postgres://", "postgresql://", 1), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for this run, dropped at the end."""
    name = f"caretrack_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        await _postgres_admin_execute(f'CREATE DATABASE "{name}"')
    except (OSError, Exception) as exc:  # asyncpg raises several unrelated types
        unavailable(f"PostgreSQL at {POSTGRES_ADMIN_URL} ({exc})")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    await db.migrate(base_settings(database_url=url))
    await db.stop()
    yield url
    await _postgres_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    await db.migrate(base_settings(database_url=f"sqlite://{path}"))
    await db.stop()
    return path


async def _reset_postgres(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        tables = [r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        wipe = [t for t in tables if t not in KEEP_TABLES]
        if wipe:
            await conn.execute(f"TRUNCATE {', '.join(chr(34) + t + chr(34) for t in wipe)} RESTART IDENTITY CASCADE")
        await conn.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, $1)", "0" * 64)
    finally:
        await conn.close()


def _run_in_thread(coro) -> None:
    """Run a coroutine on its own loop: fixtures that choose their backend at run time are
    synchronous (pytest-asyncio cannot nest async fixture lookups)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    """Each test that takes this runs once on SQLite and once on PostgreSQL, isolated."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "caretrack.sqlite3"
        shutil.copy(template, path)
        return f"sqlite://{path}"
    url = request.getfixturevalue("postgres_url")
    _run_in_thread(_reset_postgres(url))
    return url


@pytest.fixture
def pg_database_url(postgres_url) -> str:
    """PostgreSQL only (for rules only PostgreSQL enforces)."""
    _run_in_thread(_reset_postgres(postgres_url))
    return postgres_url


@pytest.fixture
def settings(database_url) -> Settings:
    return base_settings(database_url=database_url)


@pytest.fixture
async def database(settings) -> AsyncIterator[Settings]:
    """Tortoise connected to the test database, for tests that call services directly."""
    crypto.configure(settings.phi_keys)
    await db.start(settings)
    yield settings
    await db.stop()


# --- Redis ---------------------------------------------------------------------------------


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_TEST_URL)
    try:
        await asyncio.wait_for(client.flushdb(), 3)
    except Exception as exc:
        await client.aclose()
        unavailable(f"Redis at {REDIS_TEST_URL} ({exc})")
    yield REDIS_TEST_URL
    await client.flushdb()
    await client.aclose()


# --- the app -------------------------------------------------------------------------------


@pytest.fixture
async def app(settings, request):
    application = create_app(settings)
    _pin_clock(application, request)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    # Browsers send Origin on every POST; the CSRF defence checks it.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=TEST_BASE_URL,
                                 headers={"origin": TEST_BASE_URL}) as c:
        yield c


@dataclass
class LiveServer:
    url: str
    settings: Settings
    app: object


async def serve_in_loop(app, port: int, host: str = "127.0.0.1") -> tuple[asyncio.Task, asyncio.Event]:
    """Serve an ASGI app with hypercorn on `host`:`port` in this event loop; returns once
    its /healthz answers. Stop it with `stop_serving`."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    async with httpx.AsyncClient() as probe:
        for _ in range(300):
            if task.done():
                task.result()
            try:
                if (await probe.get(f"http://{host}:{port}/healthz")).status_code == 200:
                    return task, stop
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    stop.set()
    raise RuntimeError(f"the server on port {port} did not start")


async def stop_serving(task: asyncio.Task, stop: asyncio.Event) -> None:
    stop.set()
    await asyncio.wait_for(task, 15)


@pytest.fixture
async def live_server(settings, request) -> AsyncIterator[LiveServer]:
    """The app served by hypercorn on a free loopback port, in this event loop."""
    port = free_port()
    served = settings.replace(base_url=f"http://127.0.0.1:{port}")
    application = create_app(served)
    _pin_clock(application, request)
    task, stop = await serve_in_loop(application, port)
    yield LiveServer(served.base_url, served, application)
    await stop_serving(task, stop)


# --- email ---------------------------------------------------------------------------------


@dataclass
class SmtpServer:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    async def wait_for(self, to: str, timeout: float = 10.0) -> EmailMessage:
        for _ in range(int(timeout / 0.05)):
            for message in self.messages:
                if to in message["To"]:
                    return message
            await asyncio.sleep(0.05)
        raise AssertionError(f"no email to {to} arrived; got {[m['To'] for m in self.messages]}")


@pytest.fixture
def smtp_server() -> SmtpServer:
    from aiosmtpd.controller import Controller

    server = SmtpServer("127.0.0.1", free_port())

    class Handler:
        async def handle_DATA(self, smtp, session, envelope):
            server.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    controller = Controller(Handler(), hostname=server.host, port=server.port)
    controller.start()
    yield server
    controller.stop()


# --- the browser ---------------------------------------------------------------------------

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns", "--auto-accept-this-tab-capture",
    "--auto-select-desktop-capture-source=Entire screen",
]


@pytest.fixture(scope="session")
async def browser():
    if not Path(CHROMIUM).exists():
        unavailable(f"Chromium at {CHROMIUM}")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        await instance.close()


@pytest.fixture
async def page(browser):
    context = await browser.new_context()
    page = await context.new_page()
    yield page
    await context.close()
