"""PostgreSQL away: every request answers 503 with a reason and Retry-After (JSON under
/api/, a page elsewhere), /readyz says the database is unreachable, and when it is back
requests succeed again without a restart. The outage is a TCP proxy in front of the
machine's PostgreSQL that the test stops and starts (the server itself stays up)."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager

from caretrack.accounts import service
from caretrack.accounts.schemas import TokenCreate
from caretrack.core import db
from caretrack.site.app import create_app
from tests.conftest import TEST_BASE_URL, base_settings, free_port
from tests.helpers import make_user

pytestmark = pytest.mark.postgres
METRICS_TOKEN = "metrics-token-0123456789abcdef"


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`; `stop` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int], port: int) -> None:
        self.target, self.port = target, port
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        for task in self.pipes:
            task.cancel()
        await asyncio.gather(*self.pipes, return_exceptions=True)
        await self.server.wait_closed()
        self.server = None
        self.pipes.clear()
        self.writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.transport.abort()


@pytest.fixture
async def proxy(pg_database_url):
    parts = urlsplit(pg_database_url)
    proxy = TcpProxy((parts.hostname, parts.port or 5432), free_port())
    await proxy.start()
    yield proxy, urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    if proxy.server is not None:
        await proxy.stop()


async def test_postgres_down_is_503_with_retry_after_and_recovers_without_restart(proxy):
    tcp, url = proxy
    app = create_app(base_settings(database_url=url, metrics_token=METRICS_TOKEN))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=TEST_BASE_URL) as client:
        user = await make_user(email="outage@example.org")
        _, secret = await service.do_create_access_token(user, TokenCreate(name="outage"), None)
        bearer = {"authorization": f"Bearer {secret}"}
        assert (await client.get("/api/v1/me", headers=bearer)).status_code == 200

        await tcp.stop()
        api = await client.get("/api/v1/me", headers=bearer)
        assert api.status_code == 503, api.text
        assert api.json()["error"]["code"] == "database_unavailable"
        assert "database" in api.json()["error"]["message"]
        assert int(api.headers["retry-after"]) > 0
        again = await client.get("/api/v1/doctors", headers=bearer)  # a fresh connection is refused
        assert again.status_code == 503 and "retry-after" in again.headers
        page = await client.get("/", headers=bearer)
        assert page.status_code == 503 and "database" in page.text and "retry-after" in page.headers
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] == "unreachable"
        # Liveness stays green (restarting would not bring the database back) and the scraper still sees the 503s.
        assert (await client.get("/healthz")).status_code == 200
        scraped = await client.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
        assert scraped.status_code == 200
        assert any(line.startswith("caretrack_http_requests_total") and 'status="503"' in line
                   for line in scraped.text.splitlines())

        await tcp.start()
        back = await client.get("/api/v1/me", headers=bearer)
        assert back.status_code == 200 and back.json()["email"] == "outage@example.org"
        assert (await client.get("/readyz")).json()["checks"]["database"] == "ok"


def test_only_connection_failures_count_as_an_outage():
    import asyncpg
    from tortoise.exceptions import DBConnectionError, IntegrityError, OperationalError

    closed = asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    assert db.unreachable_reason(closed)
    assert db.unreachable_reason(asyncpg.AdminShutdownError("terminating connection due to administrator command"))
    assert db.unreachable_reason(DBConnectionError("Can't establish connection"))
    try:
        try:
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        except asyncpg.PostgresError as exc:
            raise OperationalError(exc) from exc
    except OperationalError as wrapped:
        assert db.unreachable_reason(wrapped) == "the database system is starting up"
    assert db.unreachable_reason(IntegrityError("duplicate key")) is None
    assert db.unreachable_reason(asyncpg.QueryCanceledError("canceling statement due to statement timeout")) is None
    assert db.unreachable_reason(FileNotFoundError(2, "No such file")) is None
    assert db.unreachable_reason(ValueError("a bug")) is None


async def test_a_refused_connection_is_an_outage_only_when_the_database_driver_met_it():
    import asyncpg

    port = free_port()  # nothing listens there
    with pytest.raises(ConnectionRefusedError) as from_driver:
        await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="postgres", timeout=5)
    assert db.unreachable_reason(from_driver.value) == f"[Errno 111] Connect call failed ('127.0.0.1', {port})"
    # The same refusal met by an SMTP client, a payment provider's or the media relay's is theirs.
    with pytest.raises(ConnectionRefusedError) as elsewhere:
        await asyncio.open_connection("127.0.0.1", port)
    assert db.unreachable_reason(elsewhere.value) is None
    try:
        try:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        except asyncpg.PostgresError:
            raise ValueError("a bug in the handler") from None
    except ValueError as raised_while_handling:
        assert db.unreachable_reason(raised_while_handling) is None


async def test_an_unrelated_connection_error_in_a_route_is_a_500_not_a_database_outage(settings):
    from starlette.routing import Route

    app = create_app(settings)
    port = free_port()

    async def mail_provider_down(request):
        await asyncio.open_connection("127.0.0.1", port)  # what an SMTP or payment client meets

    app.router.routes.insert(0, Route("/api/v1/provider", mail_provider_down))
    app.router.routes.insert(0, Route("/provider", mail_provider_down))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with LifespanManager(app), httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as client:
        api = await client.get("/api/v1/provider")
        page = await client.get("/provider")
        ready = await client.get("/readyz")
    assert api.status_code == 500, api.text
    assert api.json()["error"]["code"] == "internal_error" and "retry-after" not in api.headers
    assert page.status_code == 500 and "database" not in page.text
    assert ready.status_code == 200
