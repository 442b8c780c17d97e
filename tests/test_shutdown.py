"""Background loops stop between passes: a pass in progress at shut-down finishes, so no pooled
connection is left checked out (closing the PostgreSQL pool then stalls for 10 s)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from caretrack.mail import routes as mail_routes
from caretrack.mail import service as mail
from caretrack.realtime import outbox
from caretrack.realtime.bus import Bus
from tests.realtime.conftest import FAST


async def test_a_relay_pass_in_progress_at_shutdown_finishes_instead_of_being_cancelled(database, monkeypatch):
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def slow_pass(publish, batch: int = 200) -> int:
        started.set()
        try:
            await release.wait()  # stands in for a transaction that is still running
        except asyncio.CancelledError:
            finished.append("cancelled")
            raise
        finished.append("finished")
        return 0

    monkeypatch.setattr(outbox, "publish_pending", slow_pass)
    bus = Bus(database, None, FAST)
    await bus.start()
    await started.wait()
    stopping = asyncio.create_task(bus.stop())
    # stop() has asked the loops to end; the pass ends when its work does
    for _ in range(5):
        await asyncio.sleep(0)
    assert not stopping.done() and finished == []
    release.set()
    await stopping
    assert finished == ["finished"]
    assert all(task.done() for task in bus._tasks)


async def test_a_mail_pass_in_progress_at_shutdown_finishes_instead_of_being_cancelled(database, monkeypatch):
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def slow_delivery(settings, limit: int = 50) -> int:
        started.set()
        try:
            await release.wait()
        except asyncio.CancelledError:
            finished.append("cancelled")
            raise
        finished.append("finished")
        return 0

    monkeypatch.setattr(mail, "deliver_pending", slow_delivery)
    app = SimpleNamespace(state=SimpleNamespace(settings=database))
    await mail_routes.start(app)
    await started.wait()
    stopping = asyncio.create_task(mail_routes.stop(app))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not stopping.done() and finished == []
    release.set()
    await stopping
    assert finished == ["finished"] and app.state.mail_sender.done()
