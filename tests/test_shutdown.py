"""Background loops stop between passes (caretrack.core.loops): a pass in progress at shut-down
finishes, so no pooled connection is left checked out (closing the PostgreSQL pool then stalls
for 10 s)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from caretrack.assessments import jobs as assessment_jobs
from caretrack.care import jobs as care_routes
from caretrack.core.outbox import store as outbox
from caretrack.mail import jobs as mail_routes
from caretrack.mail import service as mail
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


async def test_a_mail_pass_in_progress_at_shutdown_finishes_instead_of_being_cancelled(database, monkeypatch):
    slow = SlowPass()
    monkeypatch.setattr(mail, "deliver_pending", slow)
    app = SimpleNamespace(state=SimpleNamespace(settings=database))
    await mail_routes.start(app)
    await slow.stop_during_pass(mail_routes.stop(app))
    assert app.state.mail_sender.done()


async def test_a_care_check_in_progress_at_shutdown_finishes_instead_of_being_cancelled(database, monkeypatch):
    slow = SlowPass()
    monkeypatch.setattr(care_routes, "periodic_check", slow)
    monkeypatch.setattr(care_routes, "FIRST_CHECK_SECONDS", 0)
    app = SimpleNamespace(state=SimpleNamespace())
    await care_routes.start(app)
    await slow.stop_during_pass(care_routes.stop(app))
    assert app.state.care_check.done()


async def test_a_renewal_pass_in_progress_at_shutdown_finishes_instead_of_being_cancelled(database, monkeypatch):
    slow = SlowPass()
    monkeypatch.setattr(assessment_jobs, "assign_renewals", slow)
    monkeypatch.setattr(assessment_jobs, "FIRST_CHECK_SECONDS", 0)
    app = SimpleNamespace(state=SimpleNamespace())
    await assessment_jobs.start(app)
    await slow.stop_during_pass(assessment_jobs.stop(app))
    assert app.state.renewals_check.done()
