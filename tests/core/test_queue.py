"""The job queue (caretrack.core.queue) on SQLite and PostgreSQL, with a pinned clock: jobs
commit with their transaction, run when due, retry with backoff until dead, are claimed by one
runner at a time under a lease, and recurring kinds make one job per tick."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from caretrack.core.queue import JobContext, LeaseLost, Retry, Runner, Skipped
from caretrack.core.queue.models import Job, JobSchedule
from caretrack.core.queue.registry import BACKOFF_BASE, HANDLERS, Handler, JobError, backoff
from caretrack.core.transaction import atomic

T0 = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)  # a minute before London's clocks go forward


class Calls:
    """A handler that records each run; `fail` makes the first n runs raise."""

    def __init__(self, fail: int = 0, error: Exception | None = None) -> None:
        self.runs: list[JobContext] = []
        self.fail, self.error = fail, error

    async def __call__(self, ctx: JobContext) -> None:
        self.runs.append(ctx)
        await asyncio.sleep(0)  # let a racing runner interleave
        if len(self.runs) <= self.fail:
            raise self.error or ConnectionError(f"run {len(self.runs)} failed")


def runner(database, name: str = "test", lease: timedelta = timedelta(seconds=60), **kinds: Calls) -> Runner:
    handlers = {f"test.{kind}": Handler(f"test.{kind}", calls, 4, None) for kind, calls in kinds.items()}
    return Runner(name, database, lease=lease, handlers=handlers)


async def defer(kind: str = "test.work", payload: dict | None = None, **options) -> int:
    async with atomic() as tx:
        return await tx.defer(kind, payload or {}, **options)


async def test_a_job_commits_with_its_transaction_and_not_without_it(database):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with atomic() as tx:
            await tx.defer("test.work", {"n": 1})
            raise Boom
    assert await Job.all().count() == 0
    job_id = await defer(payload={"n": 2})
    calls = Calls()
    assert await runner(database, work=calls).run_due(at=T0) == 1
    assert [c.payload for c in calls.runs] == [{"n": 2}]
    job = await Job.get(id=job_id)
    assert (job.status, job.attempts, job.finished_at) == ("done", 1, T0)


async def test_a_job_runs_when_due_and_not_a_second_before(database):
    await defer(due=T0 + timedelta(hours=1))
    calls = Calls()
    jobs = runner(database, work=calls)
    assert await jobs.run_due(at=T0 + timedelta(minutes=59, seconds=59)) == 0
    assert await jobs.run_due(at=T0 + timedelta(hours=1)) == 1
    assert len(calls.runs) == 1 and calls.runs[0].at == T0 + timedelta(hours=1)
    assert await jobs.run_due(at=T0 + timedelta(days=1)) == 0  # done: never again


async def test_a_failing_job_backs_off_then_dies_with_its_last_error(database):
    job_id = await defer()
    calls = Calls(fail=99)
    jobs = runner(database, work=calls)
    at = T0
    for attempt in range(1, 5):  # max_attempts=4
        assert await jobs.run_due(at=at) == 1
        job = await Job.get(id=job_id)
        assert job.attempts == attempt
        if attempt < 4:
            ceiling = BACKOFF_BASE * 2 ** (attempt - 1)
            assert job.status == "queued"
            assert at + ceiling / 2 <= job.due_at <= at + ceiling  # equal jitter
            assert await jobs.run_due(at=job.due_at - timedelta(seconds=1)) == 0
            at = job.due_at
    assert (job.status, job.last_error) == ("dead", "ConnectionError: run 4 failed")
    assert await jobs.run_due(at=at + timedelta(days=30)) == 0


def test_backoff_grows_to_hours_and_stops_at_six():
    assert backoff(1) <= timedelta(seconds=30)
    assert timedelta(hours=1, minutes=4) <= backoff(9) <= timedelta(hours=2, minutes=8)
    assert timedelta(hours=3) <= backoff(40) <= timedelta(hours=6)


async def test_retry_after_and_skipped_are_kept(database):
    later, skip = await defer("test.later"), await defer("test.skip")
    jobs = runner(database, later=Calls(fail=1, error=Retry("provider busy", after=timedelta(minutes=10))),
                  skip=Calls(fail=1, error=Skipped("the appointment was cancelled")))
    assert await jobs.run_due(at=T0) == 2
    job = await Job.get(id=later)
    assert (job.status, job.due_at, job.last_error) == ("queued", T0 + timedelta(minutes=10), "provider busy")
    job = await Job.get(id=skip)
    assert (job.status, job.last_error) == ("skipped", "the appointment was cancelled")


async def test_two_runners_racing_run_a_job_once(database):
    job_ids = [await defer() for _ in range(6)]
    calls = Calls()
    one, other = runner(database, "one", work=calls), runner(database, "other", work=calls)
    ran = await asyncio.gather(one.run_due(at=T0), other.run_due(at=T0), one.run_due(at=T0))
    assert sum(ran) == 6
    assert sorted(c.job_id for c in calls.runs) == job_ids


async def test_a_dead_runners_job_is_taken_over_when_its_lease_runs_out(database):
    job_id = await defer()
    lease = timedelta(seconds=30)
    dead = runner(database, "dead", lease=lease, work=Calls())
    [(claimed, token)] = await dead.claim(T0)  # claimed, then the process "died"
    calls = Calls()
    alive = runner(database, "alive", lease=lease, work=calls)
    assert await alive.run_due(at=T0 + lease - timedelta(seconds=1)) == 0
    assert await alive.run_due(at=T0 + lease + timedelta(seconds=1)) == 1
    job = await Job.get(id=job_id)
    assert (job.status, job.attempts, len(calls.runs)) == ("done", 2, 1)
    # The first runner comes back to life: it can no longer record anything about the job.
    stale = JobContext(claimed.id, claimed.kind, {}, T0, 1, database, token)
    with pytest.raises(LeaseLost):
        async with atomic() as tx:
            await stale.finish(tx)


async def test_a_job_whose_runner_dies_on_every_attempt_is_dead(database):
    job_id = await defer()
    lease = timedelta(seconds=30)
    at = T0
    for _ in range(4):
        assert await runner(database, lease=lease, work=Calls()).claim(at)
        at += lease + timedelta(seconds=1)
    assert await runner(database, lease=lease, work=Calls()).run_due(at=at) == 0
    job = await Job.get(id=job_id)
    assert (job.status, job.last_error) == ("dead", "its runner stopped during each of 4 attempts")


async def test_finishing_inside_the_handlers_transaction_commits_both_or_neither(database):
    from caretrack.core.queue.models import JobSchedule as Marker  # any small table will do

    async def writes_then_finishes(ctx: JobContext) -> None:
        async with atomic() as tx:
            await Marker.create(using_db=tx.conn, name=f"written-by-{ctx.job_id}", next_due=ctx.at)
            await ctx.finish(tx)

    job_id = await defer()
    jobs = Runner("test", database, handlers={"test.work": Handler("test.work", writes_then_finishes, 4, None)})
    assert await jobs.run_due(at=T0) == 1
    assert (await Job.get(id=job_id)).status == "done"
    assert await Marker.filter(name=f"written-by-{job_id}").count() == 1


async def test_a_recurring_kind_makes_one_job_per_tick_whatever_the_runners(database):
    calls = Calls()
    handlers = {"test.tick": Handler("test.tick", calls, 4, timedelta(minutes=5))}
    one, other = Runner("one", database, handlers=handlers), Runner("other", database, handlers=handlers)
    await asyncio.gather(one.run_due(at=T0), other.run_due(at=T0))
    assert len(calls.runs) == 1
    await asyncio.gather(one.run_due(at=T0 + timedelta(minutes=4)), other.run_due(at=T0 + timedelta(minutes=4)))
    assert len(calls.runs) == 1
    await asyncio.gather(one.run_due(at=T0 + timedelta(minutes=5)), other.run_due(at=T0 + timedelta(minutes=5)))
    assert [c.at for c in calls.runs] == [T0, T0 + timedelta(minutes=5)]
    assert (await JobSchedule.get(name="test.tick")).next_due == T0 + timedelta(minutes=10)


async def test_cancel_by_key_prefix_leaves_other_keys_and_finished_jobs(database):
    await defer(key="reminder:7:24h", due=T0 + timedelta(hours=1))
    await defer(key="reminder:7:1h", due=T0 + timedelta(hours=1))
    await defer(key="reminder:70:1h", due=T0 + timedelta(hours=1))
    async with atomic() as tx:
        assert await tx.cancel_jobs("reminder:7:", at=T0) == 2
    assert sorted(await Job.filter(status="queued").values_list("key", flat=True)) == ["reminder:70:1h"]
    with pytest.raises(JobError):
        async with atomic() as tx:
            await tx.cancel_jobs("")


async def test_a_kind_with_no_handler_here_waits_for_a_runner_that_has_one(database):
    job_id = await defer("test.elsewhere")
    assert await runner(database, work=Calls()).run_due(at=T0) == 0
    assert (await Job.get(id=job_id)).status == "queued"


def test_bad_kinds_and_naive_due_times_are_refused():
    from caretrack.core.queue import job

    with pytest.raises(JobError, match="domain.action"):
        job("NoDot")
    with pytest.raises(JobError, match="time zone"):
        asyncio.run(_naive_defer())


async def _naive_defer() -> None:
    from caretrack.core.queue import store

    await store.defer(None, "test.work", due=datetime(2026, 1, 1))  # type: ignore[arg-type]


async def test_finished_jobs_are_pruned_after_thirty_days_and_dead_ones_kept(database):
    from caretrack.site import jobs as site_jobs

    for status in ("done", "skipped", "cancelled", "dead"):
        await Job.create(kind="test.work", status=status, created_at=T0, finished_at=T0)
    await Job.create(kind="test.work", status="done", created_at=T0, finished_at=T0 + timedelta(days=1))
    prune = Runner("test", database, handlers={"queue.prune": HANDLERS["queue.prune"]})
    await prune.run_due(at=T0 + timedelta(days=30, seconds=1))
    left = sorted((j.status, j.finished_at) for j in await Job.filter(kind="test.work"))
    assert left == [("dead", T0), ("done", T0 + timedelta(days=1))]
    assert site_jobs.FINISHED_RETENTION == timedelta(days=30)


async def test_a_running_runner_keeps_its_free_slots_busy_while_one_job_is_slow(database):
    """`batch` is how many jobs run at once: a slow job holds one slot, not the whole runner
    (a job stuck in an SMTP exchange used to stop a worker from claiming anything else)."""
    release, slow_started, fast_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    running, most, runs = 0, 0, 0

    async def slow(ctx: JobContext) -> None:
        slow_started.set()
        await release.wait()

    async def fast(ctx: JobContext) -> None:
        nonlocal running, most, runs
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running, runs = running - 1, runs + 1
        if runs == 6:
            fast_done.set()

    handlers = {"test.slow": Handler("test.slow", slow, 4, None), "test.fast": Handler("test.fast", fast, 4, None)}
    jobs = Runner("loop", database, clock=lambda: T0, batch=3, handlers=handlers).start()
    try:
        slow_id = await defer("test.slow")
        await asyncio.wait_for(slow_started.wait(), 10)
        fast_ids = [await defer("test.fast") for _ in range(6)]  # each commit wakes the runner
        await asyncio.wait_for(fast_done.wait(), 10)
        assert (await Job.get(id=slow_id)).status == "running"
    finally:
        release.set()
        await jobs.stop()
    assert most <= 2  # the slow job kept one of the three slots
    assert {job.status for job in await Job.filter(id__in=[slow_id, *fast_ids])} == {"done"}


async def test_a_job_still_running_when_the_stop_grace_runs_out_is_handed_back_at_once(database):
    started, finished = asyncio.Event(), Calls()

    async def stuck(ctx: JobContext) -> None:
        started.set()
        await asyncio.Event().wait()  # never ends by itself

    handlers = {"test.stuck": Handler("test.stuck", stuck, 4, None)}
    jobs = Runner("loop", database, clock=lambda: T0, batch=2, handlers=handlers).start()
    stuck_id = await defer("test.stuck")
    await asyncio.wait_for(started.wait(), 10)
    assert (await Job.get(id=stuck_id)).attempts == 1
    await jobs.stop(grace=0.2)
    job = await Job.get(id=stuck_id)
    # Queued and due as it was, its interrupted attempt not counted, no lease: any runner may take it now.
    assert (job.status, job.attempts, job.lease_token, job.lease_until, job.due_at) == ("queued", 0, None, None, None)
    assert await Runner("next", database, handlers={"test.stuck": Handler("test.stuck", finished, 4, None)}).run_due(
        at=T0) == 1
    assert (await Job.get(id=stuck_id)).status == "done"


@dataclass
class BlippingRunner(Runner):
    """A runner whose first lease extension fails, as when the database drops a connection."""

    extensions: int = 0
    extended: asyncio.Event = field(default_factory=asyncio.Event)

    async def _extend(self, job_id: int, token: str, until: datetime) -> bool:
        self.extensions += 1
        if self.extensions == 1:
            raise ConnectionResetError("the database went away for a moment")
        held = await super()._extend(job_id, token, until)
        self.extended.set()
        return held


async def test_a_failed_lease_extension_does_not_end_the_heartbeat(database):
    started, release = asyncio.Event(), asyncio.Event()

    async def long(ctx: JobContext) -> None:
        started.set()
        await release.wait()

    now = [T0]
    lease = timedelta(seconds=0.3)  # a beat every 0.1 s of real time; the lease's end follows `now`
    handlers = {"test.long": Handler("test.long", long, 4, None)}
    holder = BlippingRunner("holder", database, clock=lambda: now[0], lease=lease, handlers=handlers)
    job_id = await defer("test.long")
    run = asyncio.create_task(holder.run_due(at=T0))
    try:
        await asyncio.wait_for(started.wait(), 10)
        await asyncio.wait_for(holder.extended.wait(), 10)  # the beat after the failed one
        now[0] = T0 + timedelta(seconds=10)
        holder.extended.clear()
        await asyncio.wait_for(holder.extended.wait(), 10)
        # The lease reaches past 10 s: another runner does not take the job that is still running.
        other = Runner("other", database, lease=lease, handlers={"test.long": Handler("test.long", Calls(), 4, None)})
        assert await other.run_due(at=T0 + timedelta(seconds=10.2)) == 0
        assert (await Job.get(id=job_id)).locked_by == "holder"
    finally:
        release.set()
        await asyncio.wait_for(run, 10)
    job = await Job.get(id=job_id)
    assert (job.status, job.attempts, holder.extensions >= 3) == ("done", 1, True)


async def test_a_job_whose_lease_is_taken_over_is_stopped_where_it_runs(database):
    """A runner that stalled past its lease: once its heartbeat finds the job taken, the
    handler still running there is cancelled rather than left to repeat the other's work."""
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def long_job(ctx: JobContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job_id = await defer()
    stalled = Runner("stalled", database, lease=timedelta(seconds=0.3),
                     handlers={"test.work": Handler("test.work", long_job, 4, None)})
    run = asyncio.create_task(stalled.run_due(at=T0))
    await started.wait()
    await Job.filter(id=job_id).update(lease_token="someone-else")  # the takeover
    await asyncio.wait_for(cancelled.wait(), 5)
    assert await run == 1
    assert (await Job.get(id=job_id)).lease_token == "someone-else"  # nothing recorded over it
    ctx = JobContext(job_id, "test.work", {}, T0, 1, database, "stale-token")
    with pytest.raises(LeaseLost):
        await ctx.check_lease()


async def test_a_recurring_kind_with_an_offset_runs_on_its_grid_not_from_start_up(database):
    calls = Calls()
    handlers = {"test.daily": Handler("test.daily", calls, 4, timedelta(days=1), timedelta(hours=7))}
    jobs = Runner("one", database, handlers=handlers)
    started = datetime(2026, 10, 24, 23, 59, tzinfo=UTC)  # the night London's clocks go back
    for minutes in range(0, 3 * 24 * 60, 30):  # every half hour for three days
        await jobs.run_due(at=started + timedelta(minutes=minutes))
    assert [c.at for c in calls.runs] == [datetime(2026, 10, d, 7, 29, tzinfo=UTC) for d in (25, 26, 27)]


def test_an_offset_needs_a_period_and_must_lie_within_it():
    from caretrack.core.queue import job

    with pytest.raises(JobError, match="within one period"):
        job("test.bad", every=timedelta(hours=1), offset=timedelta(hours=2))
    with pytest.raises(JobError, match="within one period"):
        job("test.bad", offset=timedelta(hours=2))


async def test_on_postgresql_the_claim_skips_rows_another_runner_has_locked(pg_database_url, monkeypatch):
    """Tortoise's values_list drops the lock clause; the claim must keep it, or runners queue
    up behind each other's claims."""
    from tortoise.backends.asyncpg.client import AsyncpgDBClient

    from caretrack.core import db
    from tests.conftest import base_settings

    settings = base_settings(database_url=pg_database_url)
    await db.start(settings)
    try:
        statements: list[str] = []
        original = AsyncpgDBClient.execute_query

        async def recording(self, query, values=None):
            statements.append(query)
            return await original(self, query, values)

        monkeypatch.setattr(AsyncpgDBClient, "execute_query", recording)
        await defer()
        assert len(await runner(settings, work=Calls()).claim(T0)) == 1
        # The pick is the one SELECT that orders by due time (Tortoise lists a model's columns
        # in a set's order, so a full-row SELECT may also start with "id").
        [pick] = [s for s in statements if s.startswith("SELECT") and 'ORDER BY COALESCE("due_at"' in s]
        assert pick.endswith("FOR UPDATE SKIP LOCKED")
    finally:
        await db.stop()


async def test_a_job_that_outruns_its_time_limit_is_stopped_and_retried(database):
    async def hangs(ctx: JobContext) -> None:
        await asyncio.Event().wait()

    job_id = await defer("test.hang")
    handlers = {"test.hang": Handler("test.hang", hangs, 4, None, None, timedelta(seconds=0.2))}
    assert await Runner("test", database, handlers=handlers).run_due(at=T0) == 1
    job = await Job.get(id=job_id)
    assert job.status == "queued" and job.due_at > T0
    assert "ran longer than its 0:00:00.200000 limit" in job.last_error
