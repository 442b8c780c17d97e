"""The periodic check for missed tasks, started in the app's lifespan (caretrack.site.app)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from starlette.applications import Starlette

from caretrack.care import service
from caretrack.core.logs import get_logger
from caretrack.core.loops import pause, stop_loops

CHECK_SECONDS = 300
FIRST_CHECK_SECONDS = 30.0  # after start-up settles
log = get_logger("caretrack.care")


async def periodic_check(at: datetime | None = None) -> None:
    missed = await service.check_missed(at)
    if missed:
        log.info("care check", missed=missed)


async def _loop(first_delay: float, stopping: asyncio.Event) -> None:
    await pause(stopping, first_delay)
    while not stopping.is_set():
        try:
            await periodic_check()
        except asyncio.CancelledError:
            raise
        except Exception:  # a failed sweep is retried at the next tick
            log.exception("care check failed")
        await pause(stopping, CHECK_SECONDS)


async def start(app: Starlette) -> None:
    app.state.care_stop = asyncio.Event()
    app.state.care_check = asyncio.create_task(_loop(FIRST_CHECK_SECONDS, app.state.care_stop), name="care-check")


async def stop(app: Starlette) -> None:
    await stop_loops([app.state.care_check], app.state.care_stop)
