"""The scaled-out topology as processes: a fresh PostgreSQL database, Redis, two web processes
(`caretrack serve --workers 2`), one media worker (`caretrack media`), two job workers
(`caretrack worker --id w1/w2`) and an SMTP server on loopback. Emails caused over HTTP are
delivered by the job workers (the web processes run no jobs in CARETRACK_JOBS_MODE=workers),
each exactly once, also when a worker is killed mid-delivery or stopped with SIGTERM.

Every wait is bounded and ends on something observed (a row in the jobs table, a message in
the inbox, a process's exit); nothing sleeps to prove that something did not happen: a
sentinel email sent after the others shows that the workers have moved on."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from caretrack.core import db
from tests.conftest import POSTGRES_ADMIN_URL, REDIS_TEST_URL, _postgres_admin_execute, base_settings, free_port
from tests.conftest import unavailable as service_unavailable
from tests.test_cli import worker_pids

LEASE_SECONDS = 3
PASSWORD = "a long enough password 42"
DEADLINE = 20.0  # seconds any one awaited outcome may take on a loaded 2-core machine


# --- the SMTP server -------------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler (it runs in the controller's thread) that keeps what it accepts.
    `hold(address)` makes the first DATA to that address wait until the test ends and then
    refuses it, so the worker sending it stays mid-delivery; `slow(address, s)` accepts the
    first DATA to it after `s` seconds. `started(address)` is set once such a DATA arrives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._held: set[str] = set()
        self._slow: dict[str, float] = {}
        self._started: dict[str, threading.Event] = {}
        self.released = threading.Event()

    def hold(self, address: str) -> threading.Event:
        with self._lock:
            self._held.add(address)
            return self._started.setdefault(address, threading.Event())

    def slow(self, address: str, seconds: float) -> threading.Event:
        with self._lock:
            self._slow[address] = seconds
            return self._started.setdefault(address, threading.Event())

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        recipients = set(envelope.rcpt_tos)
        with self._lock:
            held = recipients & self._held
            self._held -= held
            delay = max((self._slow.pop(to) for to in recipients & set(self._slow)), default=0.0)
            for to in recipients:
                if to in self._started:
                    self._started[to].set()
        if held:
            # Held for good: the worker is killed meanwhile; this delivery never completes.
            while not self.released.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 held by the test and never accepted"
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def count(self, to: str) -> int:
        with self._lock:
            return sum(1 for message in self.messages if message["To"] == to)

    def to(self, to: str) -> list[EmailMessage]:
        with self._lock:
            return [message for message in self.messages if message["To"] == to]

    async def wait_for(self, to: str, timeout: float = DEADLINE) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.to(to):
                return found[0]
            await asyncio.sleep(0.05)
        with self._lock:
            got = [m["To"] for m in self.messages]
        raise AssertionError(f"no email to {to} arrived within {timeout} s; got {got}")


async def wait_event(event: threading.Event, what: str, timeout: float = DEADLINE) -> None:
    if not await asyncio.to_thread(event.wait, timeout):
        raise AssertionError(f"{what} did not happen within {timeout} s")


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = DEADLINE) -> Any:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s (last: {result!r})")
        await asyncio.sleep(0.1)


# --- the processes -----------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    args: list[str]
    log: Path
    process: asyncio.subprocess.Process | None = None

    async def start(self, env: dict[str, str]) -> Process:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "caretrack", *self.args, env=env, stdout=out, stderr=out)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def wait(self, timeout: float) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not stopped within 30 s."""
        if not self.running:
            return
        assert self.process is not None
        self.process.terminate()
        try:
            await self.wait(30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@dataclass
class Topology:
    base_url: str
    database_url: str
    env: dict[str, str]
    inbox: Inbox
    web: Process
    media: Process
    workers: dict[str, Process]
    logs: Path
    _clients: int = field(default=0)

    async def start_worker(self, name: str) -> Process:
        worker = Process(name, ["worker", "--id", name, "--concurrency", "4"], self.logs / f"{name}.log")
        self.workers[name] = await worker.start(self.env)
        return worker

    async def ensure_workers(self) -> None:
        """Both job workers running and ready (one a previous test stopped is started again)."""
        for name, worker in list(self.workers.items()):
            if not worker.running:
                worker = await self.start_worker(name)
            await eventually(lambda w=worker: ready_worker(w), f"job worker {name} did not start")

    async def sign_up(self, email: str) -> None:
        """Sign up as a patient over HTTP, as a browser does; the app emails a confirmation link.
        Each sign-up comes from its own client address (through the trusted proxy that the
        loopback is here), so the per-address sign-up budget does not cap the test."""
        self._clients += 1
        forwarded = f"198.51.100.{self._clients % 250 + 1}"
        async with httpx.AsyncClient(base_url=self.base_url, timeout=DEADLINE) as client:
            form = await client.get("/signup", headers={"x-forwarded-for": forwarded})
            assert form.status_code == 200, form.text[:500]
            token = re.search(r'name="csrf_token" value="([^"]*)"', form.text)
            assert token is not None
            answer = await client.post("/signup", headers={"origin": self.base_url, "x-forwarded-for": forwarded},
                                       data={"email": email, "full_name": f"Patient {email.split('@')[0]}",
                                             "role": "patient", "password": PASSWORD,
                                             "csrf_token": token.group(1)})
        assert answer.status_code == 200, answer.text[:500]
        assert f"We have sent an email to <strong>{email}</strong>" in answer.text, answer.text[:500]

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url.replace("postgres://", "postgresql://", 1), timeout=5)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def mail_job(self, to: str) -> asyncpg.Record | None:
        """The `mail.deliver` job of the (last) email to `to`."""
        rows = await self.query(
            "SELECT j.* FROM jobs j JOIN outbound_emails e ON j.key = 'mail:' || e.id "
            "WHERE j.kind = 'mail.deliver' AND e.to_address = $1 ORDER BY j.id DESC LIMIT 1", to)
        return rows[0] if rows else None

    async def sentinel(self) -> None:
        """Sign up one more address and wait for its email: the workers have taken up work
        queued after everything before it (a duplicate of an earlier email would be queued
        before the sentinel, and jobs are claimed in due order)."""
        address = f"sentinel-{secrets.token_hex(3)}@example.test"
        await self.sign_up(address)
        await self.inbox.wait_for(address)


async def ready_worker(worker: Process) -> bool:
    if not worker.running:
        raise AssertionError(f"job worker {worker.name} exited: {worker.text()[-2000:]}")
    return f"CareTrack job worker {worker.name} running" in worker.text()


async def _fresh_database() -> str:
    name = f"caretrack_topo_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        await _postgres_admin_execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # asyncpg raises several unrelated types
        service_unavailable(f"PostgreSQL at {POSTGRES_ADMIN_URL} ({exc})")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    await db.migrate(base_settings(database_url=url))
    await db.stop()
    return url


async def _flush_redis() -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_TEST_URL)
    try:
        await asyncio.wait_for(client.flushdb(), 3)
    except Exception as exc:
        service_unavailable(f"Redis at {REDIS_TEST_URL} ({exc})")
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
async def topology(tmp_path_factory) -> AsyncIterator[Topology]:
    from aiosmtpd.controller import Controller

    logs = tmp_path_factory.mktemp("topology")
    await _flush_redis()
    database_url = await _fresh_database()
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CARETRACK_ENVIRONMENT": "test", "CARETRACK_DATABASE_URL": database_url,
           "CARETRACK_REDIS_URL": REDIS_TEST_URL, "CARETRACK_MEDIA_MODE": "workers", "CARETRACK_JOBS_MODE": "workers",
           "CARETRACK_JOB_LEASE_SECONDS": str(LEASE_SECONDS), "CARETRACK_SMTP_HOST": smtp.hostname,
           "CARETRACK_SMTP_PORT": str(smtp.port), "CARETRACK_BASE_URL": base_url,
           "CARETRACK_TRUSTED_PROXIES": "127.0.0.1/32", "CARETRACK_LOG_FORMAT": "json"}
    topology = Topology(
        base_url, database_url, env, inbox,
        web=Process("web", ["serve", "--workers", "2", "--port", str(port)], logs / "web.log"),
        media=Process("media", ["media", "--port", str(free_port()), "--id", "media-1"], logs / "media.log"),
        workers={}, logs=logs)
    try:
        smtp.start()
        await asyncio.gather(topology.web.start(env), topology.media.start(env),
                             topology.start_worker("w1"), topology.start_worker("w2"))

        async def ready() -> bool:
            if not topology.web.running or not topology.media.running:
                raise AssertionError(f"a process exited: {topology.web.text()[-2000:]} {topology.media.text()[-2000:]}")
            try:
                async with httpx.AsyncClient() as client:
                    answer = await client.get(f"{base_url}/readyz")
            except httpx.TransportError:
                return False
            return answer.status_code == 200 and answer.json()["checks"]["media"] == "1 worker(s)"

        await eventually(ready, "the web processes and the media worker were not ready", timeout=60)
        assert len(worker_pids(topology.web.pid)) == 2
        await topology.ensure_workers()
        yield topology
    finally:
        inbox.released.set()
        await asyncio.gather(topology.web.stop(), topology.media.stop(),
                             *(worker.stop() for worker in topology.workers.values()))
        smtp.stop(no_assert=True)  # also when it did not start
        await _postgres_admin_execute(f'DROP DATABASE IF EXISTS "{database_url.rsplit("/", 1)[1]}" WITH (FORCE)')
        await _flush_redis()
        for process in [topology.web, topology.media, *topology.workers.values()]:
            assert "Traceback" not in process.text(), f"{process.name}: {process.text()[-3000:]}"


# --- the tests ---------------------------------------------------------------------------------


async def test_emails_caused_through_the_web_processes_arrive_once_each_sent_by_the_job_workers(topology):
    await topology.ensure_workers()
    addresses = [f"patient{i}@example.test" for i in range(8)]
    await asyncio.gather(*(topology.sign_up(address) for address in addresses))
    for address in addresses:
        message = await topology.inbox.wait_for(address)
        assert message["Subject"] and "/verify-email" in message.get_body(("plain",)).get_content()
    await topology.sentinel()
    assert {address: topology.inbox.count(address) for address in addresses} == dict.fromkeys(addresses, 1)

    jobs = await topology.query("SELECT key, status, attempts, locked_by FROM jobs WHERE kind = 'mail.deliver'")
    assert len(jobs) == len(addresses) + 1
    assert {(job["status"], job["attempts"]) for job in jobs} == {("done", 1)}
    # Every job that ran, recurring checks too, was claimed by a job worker, never a web process.
    claimed_by = {row["locked_by"] for row in await topology.query("SELECT locked_by FROM jobs")}
    assert claimed_by - {None} <= {"w1", "w2"} and claimed_by & {"w1", "w2"}, claimed_by
    sent = await topology.query("SELECT status, attempts FROM outbound_emails")
    assert {(row["status"], row["attempts"]) for row in sent} == {("sent", 1)}


async def test_a_worker_killed_mid_delivery_loses_nothing_and_sends_nothing_twice(topology):
    await topology.ensure_workers()
    address = "held@example.test"
    arrived = topology.inbox.hold(address)
    await topology.sign_up(address)
    await wait_event(arrived, "the held delivery")
    job = await eventually(lambda: topology.mail_job(address), "the held email's job was not found")
    assert job["status"] == "running" and job["attempts"] == 1
    victim = topology.workers[job["locked_by"]]
    (survivor,) = set(topology.workers) - {victim.name}
    os.kill(victim.pid, signal.SIGKILL)
    assert await victim.wait(DEADLINE) == -signal.SIGKILL

    # The lease (3 s) runs out without a heartbeat; the other worker takes the job over.
    await topology.inbox.wait_for(address, timeout=LEASE_SECONDS + DEADLINE)
    job = await eventually(lambda: _done_job(topology, address), "the taken-over job was not done")
    assert (job["status"], job["attempts"], job["locked_by"], job["lease_token"]) == ("done", 2, survivor, None)
    await topology.sentinel()
    assert topology.inbox.count(address) == 1
    [email] = await topology.query("SELECT status, attempts FROM outbound_emails WHERE to_address = $1", address)
    assert (email["status"], email["attempts"]) == ("sent", 2)


async def _done_job(topology: Topology, address: str) -> asyncpg.Record | None:
    job = await topology.mail_job(address)
    return job if job is not None and job["status"] == "done" else None


async def test_sigterm_lets_the_running_delivery_finish_then_exits_with_0(topology):
    await topology.ensure_workers()
    address = "slow@example.test"
    arrived = topology.inbox.slow(address, 2.0)
    await topology.sign_up(address)
    await wait_event(arrived, "the slow delivery")
    job = await eventually(lambda: topology.mail_job(address), "the slow email's job was not found")
    assert job["status"] == "running"
    worker = topology.workers[job["locked_by"]]
    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    assert await worker.wait(30) == 0, worker.text()[-3000:]
    # Within its grace period (20 s): it waited for the delivery (2 s), not the whole grace.
    assert time.monotonic() - started < 15
    # The running job finished in that worker rather than being handed back.
    job = await topology.mail_job(address)
    assert (job["status"], job["attempts"], job["locked_by"]) == ("done", 1, worker.name)
    assert topology.inbox.count(address) == 1
    log = worker.text()
    assert '"job worker stopping"' in log and f"CareTrack job worker {worker.name} stopped" in log
    await topology.ensure_workers()
    await topology.sentinel()
    assert topology.inbox.count(address) == 1
