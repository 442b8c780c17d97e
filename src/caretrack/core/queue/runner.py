"""The read side: a runner claims due jobs with a lease, runs their handlers and records the
outcome; the same code runs in the web process (embedded default) and in `caretrack worker`.

Claiming is one transaction: pick due jobs (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so runners
never wait on each other), then take them with a compare-and-set that stamps a fresh lease
token. On SQLite, where writers are serialised, the compare-and-set alone gives the same
guarantee. Every later write about a job is conditional on its token, so a runner whose lease
ran out (it stalled, another took the job over) can no longer record anything about it.
While a handler runs, a heartbeat extends its lease; a runner that dies stops extending it,
and once it runs out another runner takes the job (its attempts counted)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.functions import Coalesce
from tortoise.transactions import in_transaction

from caretrack.core.clock import Clock, utcnow
from caretrack.core.logs import get_logger
from caretrack.core.loops import stop_loops
from caretrack.core.queue import store
from caretrack.core.queue.models import Job, JobSchedule
from caretrack.core.queue.registry import HANDLERS, Handler, Retry, Skipped, backoff
from caretrack.core.settings import Settings

log = get_logger("caretrack.jobs")
DEFAULT_LEASE = timedelta(seconds=60)


class LeaseLost(Exception):
    """This runner no longer holds the job (its lease ran out and another runner took it)."""


@dataclass
class JobContext:
    """What a handler gets: the job's payload, the instant it runs at, which attempt this is."""

    job_id: int
    kind: str
    payload: dict[str, Any]
    at: datetime
    attempt: int
    settings: Settings
    _token: str
    now: Clock = utcnow  # the job's clock: `at`, plus the time it has run since
    finished: bool = False

    async def finish(self, tx: Any) -> None:
        """Mark the job done inside the handler's own transaction (`tx` from core.transaction
        .atomic), so what it wrote and its completion commit together: it can never be done twice."""
        marked = await Job.filter(id=self.job_id, lease_token=self._token).using_db(tx.conn).update(
            status="done", finished_at=self.at, lease_token=None, lease_until=None, last_error=None)
        if not marked:
            raise LeaseLost(f"job {self.job_id} was taken over by another runner")
        self.finished = True

    async def check_lease(self) -> None:
        """Raise LeaseLost unless this runner still holds the job: call it just before an
        effect outside the database (an SMTP send), so a runner that stalled past its lease
        and woke up does not repeat what the runner that took over is doing."""
        held = await Job.filter(id=self.job_id, lease_token=self._token, lease_until__gt=self.now()).exists()
        if not held:
            raise LeaseLost(f"job {self.job_id}'s lease has run out or was taken over by another runner")


def _clock_from(at: datetime) -> Clock:
    """A job's clock: the instant it was claimed at (the runner's clock, or an instant a test
    gave `run_due`) moved on by the time elapsed since. `check_lease` reads the lease's end
    against it, which the claim set from that same instant."""
    started = time.monotonic()
    return lambda: at + timedelta(seconds=time.monotonic() - started)


def _due(at: datetime) -> Q:
    return (Q(status="queued") & (Q(due_at__isnull=True) | Q(due_at__lte=at))) | Q(status="running", lease_until__lt=at)


@dataclass
class Runner:
    """Runs due jobs of the kinds registered in this process. `run_due(at=...)` is one pass
    (tests call it with pinned instants); `start()` loops until `stop()`."""

    name: str
    settings: Settings = field(default_factory=Settings)
    clock: Clock = utcnow
    lease: timedelta = DEFAULT_LEASE
    batch: int = 8
    poll_seconds: float = 1.0
    handlers: dict[str, Handler] = field(default_factory=lambda: HANDLERS)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _wake: asyncio.Event | None = None

    # --- one pass ---------------------------------------------------------------------------

    async def run_due(self, at: datetime | None = None) -> int:
        """Tick the recurring schedules, then claim and run what is due at `at`; returns how
        many jobs ran (whatever their outcome)."""
        at = (at or self.clock()).astimezone(UTC)  # SQLite compares the stored UTC text
        await self.tick_schedules(at)
        claimed = await self.claim(at)
        if claimed:
            await asyncio.gather(*(self._run(job, token, at) for job, token in claimed))
        return len(claimed)

    async def tick_schedules(self, at: datetime) -> int:
        """For each recurring kind whose tick has come, advance its schedule and queue one job,
        in one transaction; a runner that loses the compare-and-set queues nothing."""
        queued = 0
        recurring = [handler for handler in self.handlers.values() if handler.every is not None]
        if not recurring:
            return 0
        schedules = {s.name: s for s in await JobSchedule.filter(name__in=[h.kind for h in recurring])}
        for handler in recurring:
            schedule = schedules.get(handler.kind)
            if schedule is None:
                with contextlib.suppress(IntegrityError):
                    await JobSchedule.create(name=handler.kind, next_due=handler.first_tick(at))
                schedule = await JobSchedule.get_or_none(name=handler.kind)
            if schedule is None or schedule.next_due > at:
                continue
            async with in_transaction() as conn:
                advanced = await JobSchedule.filter(name=handler.kind, next_due=schedule.next_due).using_db(
                    conn).update(next_due=handler.next_tick(at))
                if advanced:  # the tick it is for: a handler may decide it is too late for it
                    await store.defer(conn, handler.kind, {"tick": schedule.next_due.isoformat()}, due=at,
                                      key=f"every:{handler.kind}", created=at)
                    queued += 1
        return queued

    async def claim(self, at: datetime, limit: int | None = None) -> list[tuple[Job, str]]:
        """Take up to `limit` (default `batch`) due jobs under a fresh lease."""
        kinds = list(self.handlers)
        if not kinds or (limit is not None and limit < 1):
            return []
        token = secrets.token_hex(16)
        async with in_transaction() as conn:
            await self._bury_exhausted(conn, at)
            # Jobs due "at once" (no due time) sort by when they were queued, among the dated ones
            # (PostgreSQL would put NULLs last). `only` keeps the lock clause, which Tortoise's
            # values_list drops.
            pick = Job.filter(_due(at), kind__in=kinds).using_db(conn) \
                .annotate(due=Coalesce("due_at", F("created_at"))).order_by("due", "id").limit(limit or self.batch)
            if conn.capabilities.dialect == "postgres":
                pick = pick.select_for_update(skip_locked=True)
            ids = [job.id for job in await pick.only("id")]
            if not ids:
                return []
            await Job.filter(_due(at), id__in=ids).using_db(conn).update(
                status="running", lease_token=token, lease_until=at + self.lease, locked_by=self.name[:100],
                attempts=F("attempts") + 1)
            jobs = await Job.filter(lease_token=token).using_db(conn).order_by("id")
        return [(job, token) for job in jobs]

    async def _bury_exhausted(self, conn: BaseDBAsyncClient, at: datetime) -> None:
        """A job whose runner died on each of its attempts is dead, not claimed again."""
        for job in await Job.filter(status="running", lease_until__lt=at).using_db(conn):
            handler = self.handlers.get(job.kind)
            if job.attempts >= (handler.max_attempts if handler else job.max_attempts):
                await Job.filter(id=job.id, lease_token=job.lease_token).using_db(conn).update(
                    status="dead", finished_at=at, lease_token=None, lease_until=None,
                    last_error=f"its runner stopped during each of {job.attempts} attempts")

    async def _run(self, job: Job, token: str, at: datetime) -> None:
        handler = self.handlers[job.kind]
        now = _clock_from(at)
        ctx = JobContext(job.id, job.kind, json.loads(job.payload), at, job.attempts, self.settings, token, now)
        heartbeat = asyncio.create_task(self._heartbeat(job.id, token), name=f"job-{job.id}-lease")
        work: asyncio.Task[None] = asyncio.create_task(handler.run(ctx), name=f"job-{job.id}")
        try:
            await asyncio.wait({work, heartbeat}, timeout=handler.timeout.total_seconds(),
                               return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                if heartbeat.done():  # the heartbeat ended: another runner holds the job now
                    raise LeaseLost(f"job {job.id} was taken over by another runner; stopped it here")
                raise TimeoutError(f"the job ran longer than its {handler.timeout} limit; stopped")
            work.result()
        except asyncio.CancelledError:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            await self._release(job, token)
            raise
        except LeaseLost:
            log.warning("job lease lost", job_id=job.id, kind=job.kind)
        except Skipped as exc:
            await self._finish(job, token, "skipped", at, str(exc))
        except Retry as exc:
            await self._retry(job, token, at, str(exc), exc.after)
        except Exception as exc:
            log.warning("job failed", job_id=job.id, kind=job.kind, attempt=job.attempts, error=type(exc).__name__)
            detail = "".join(traceback.format_exception_only(exc)).strip()
            await self._retry(job, token, at, detail, None)
        else:
            if not ctx.finished:
                await self._finish(job, token, "done", at, None)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _heartbeat(self, job_id: int, token: str) -> None:
        """Extend the lease every third of it while the handler runs. A failed extension (the
        database blipped) is tried again at the next beat: were the heartbeat to end, the
        lease would run out under a job still running, and another runner would start it too."""
        interval = max(self.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self._extend(job_id, token, self.clock() + self.lease)
            except Exception as exc:
                log.warning("job lease not extended", job_id=job_id, error=type(exc).__name__)
                continue
            if not held:
                return

    async def _extend(self, job_id: int, token: str, until: datetime) -> bool:
        return bool(await Job.filter(id=job_id, lease_token=token).update(lease_until=until))

    async def _finish(self, job: Job, token: str, status: str, at: datetime, error: str | None) -> None:
        await Job.filter(id=job.id, lease_token=token).update(
            status=status, finished_at=at, lease_token=None, lease_until=None, last_error=error and error[:2000])

    async def _retry(self, job: Job, token: str, at: datetime, error: str, after: timedelta | None) -> None:
        if job.attempts >= self.handlers[job.kind].max_attempts:  # this runner's handler decides
            await self._finish(job, token, "dead", at, error)
            log.error("job dead", job_id=job.id, kind=job.kind, attempts=job.attempts)
            return
        await Job.filter(id=job.id, lease_token=token).update(
            status="queued", due_at=at + (after if after is not None else backoff(job.attempts)),
            lease_token=None, lease_until=None, last_error=error[:2000])

    async def _release(self, job: Job, token: str) -> None:
        """Stopped mid-job (shut-down): give it back at once rather than when the lease runs
        out; the attempt is not counted against it."""
        with contextlib.suppress(Exception):
            await Job.filter(id=job.id, lease_token=token).update(
                status="queued", lease_token=None, lease_until=None, attempts=max(job.attempts - 1, 0))

    # --- the loop -----------------------------------------------------------------------------

    @property
    def task(self) -> asyncio.Task[None]:
        """The loop's task, once started."""
        assert self._task is not None, "the runner has not been started"
        return self._task

    def start(self) -> Runner:
        self._wake = store.waker()
        self._task = asyncio.create_task(self._loop(), name=f"jobs-{self.name}")
        return self

    async def stop(self, grace: float = 5.0) -> None:
        if self._wake is not None:
            store.drop_waker(self._wake)
            self._wake.set()
        await stop_loops([self._task] if self._task else [], self._stopping, grace)

    async def _loop(self) -> None:
        """Keep up to `batch` jobs running: claim for the free slots whenever one frees up,
        the runner is woken or the poll comes round, never waiting for the slowest job of a
        pass (one job stuck in an SMTP exchange must not stop the others). On stop, the
        running jobs may finish; cancelled (the grace ran out), they are handed back."""
        assert self._wake is not None
        running: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                claimed = 0
                if len(running) < self.batch:
                    claimed = await self._claim_into(running)
                if self._stopping.is_set():
                    break
                if claimed and len(running) < self.batch:
                    continue  # there may be more due
                woken = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({woken, *running}, timeout=self.poll_seconds,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    woken.cancel()
                self._reap(running)
            if running:
                await asyncio.wait(running)
            self._reap(running)
        except asyncio.CancelledError:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise

    async def _claim_into(self, running: set[asyncio.Task[None]]) -> int:
        """One pass for the free slots: tick the schedules, claim, start each job's task."""
        try:
            at = self.clock().astimezone(UTC)
            await self.tick_schedules(at)
            claimed = await self.claim(at, limit=self.batch - len(running))
        except asyncio.CancelledError:
            raise
        except Exception:  # the database went away: try again at the next tick
            log.exception("job pass failed")
            return 0
        for job, token in claimed:
            running.add(asyncio.create_task(self._run(job, token, at), name=f"job-{job.id}"))
        return len(claimed)

    @staticmethod
    def _reap(running: set[asyncio.Task[None]]) -> None:
        for task in [task for task in running if task.done()]:
            running.discard(task)
            if not task.cancelled() and task.exception() is not None:  # recording its outcome failed
                log.error("job outcome not recorded", task=task.get_name(), error=repr(task.exception()))
