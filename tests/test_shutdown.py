"""Background loops stop between passes (caretrack.core.loops): a pass in progress at shut-down
finishes, so no pooled connection is left checked out (closing the PostgreSQL pool then stalls
for 10 s)."""

from __future__ import annotations

import asyncio

from caretrack.core.outbox import store as outbox
from caretrack.core.queue import Runner
from caretrack.core.queue.models import Job
from caretrack.core.queue.registry import Handler
from caretrack.core.transaction import atomic
from caretrack.realtime.bus import Bus
from tests.realtime.conftest import FAST


class SlowPass:
    """Stands in for a pass whose transaction is still running; records how it ended."""

    def __init__(self) -> None:
        self.started, self.release = asyncio.Event(), asyncio.Event()
        self.ended: list[str] = []

    async def __call__(self, *args, **kwargs) -> int:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.ended.append("cancelled")
            raise
        self.ended.append("finished")
        return 0

    async def stop_during_pass(self, stop) -> None:
        """Start shutting down mid-pass: the stop waits for the pass, which then finishes."""
        await self.started.wait()
        stopping = asyncio.create_task(stop)
        for _ in range(5):
            await asyncio.sleep(0)
        assert not stopping.done() and self.ended == []
        self.release.set()
        await stopping
        assert self.ended == ["finished"]


async def test_a_relay_pass_in_progress_at_shutdown_finishes_instead_of_being_cancelled(database, monkeypatch):
    slow = SlowPass()
    monkeypatch.setattr(outbox, "publish_pending", slow)
    bus = Bus(database, None, FAST)
    await bus.start()
    await slow.stop_during_pass(bus.stop())
    assert all(task.done() for task in bus._tasks)


async def test_a_job_in_progress_at_shutdown_finishes_instead_of_being_cancelled(database, monkeypatch):
    slow = SlowPass()
    runner = Runner("shutdown-test", database, handlers={"test.slow": Handler("test.slow", slow, 3, None)})
    async with atomic() as tx:
        job_id = await tx.defer("test.slow", {})
    runner.start()
    await slow.stop_during_pass(runner.stop())
    assert (await Job.get(id=job_id)).status == "done"


async def test_a_job_that_overruns_the_grace_is_handed_back_not_lost(database):
    slow = SlowPass()
    runner = Runner("shutdown-test", database, handlers={"test.slow": Handler("test.slow", slow, 3, None)})
    async with atomic() as tx:
        job_id = await tx.defer("test.slow", {})
    runner.start()
    await slow.started.wait()
    await runner.stop(grace=0.05)
    assert slow.ended == ["cancelled"]
    job = await Job.get(id=job_id)
    assert (job.status, job.attempts, job.lease_token) == ("queued", 0, None)  # at once, not when the lease ends
