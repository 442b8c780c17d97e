"""The periodic renewal check, started in the app's lifespan (caretrack.site.app): each carer
whose competency lapses within 30 days is assigned a renewal. Pages and the API only read."""

from __future__ import annotations

import asyncio
from datetime import datetime

from starlette.applications import Starlette

from caretrack.assessments import service
from caretrack.core.logs import get_logger
from caretrack.core.loops import pause, stop_loops

CHECK_SECONDS = 300
FIRST_CHECK_SECONDS = 30.0  # after start-up settles
log = get_logger("caretrack.assessments")


async def assign_renewals(at: datetime | None = None) -> int:
    """One pass: assign the renewals that are due at `at` (now by default)."""
    renewals = await service.check_renewals(at)
    if renewals:
        log.info("renewal check", renewals=renewals)
    return renewals


async def _loop(first_delay: float, stopping: asyncio.Event) -> None:
    await pause(stopping, first_delay)
    while not stopping.is_set():
        try:
            await assign_renewals()
        except asyncio.CancelledError:
            raise
        except Exception:  # a failed sweep is retried at the next tick
            log.exception("renewal check failed")
        await pause(stopping, CHECK_SECONDS)


async def start(app: Starlette) -> None:
    app.state.renewals_stop = asyncio.Event()
    app.state.renewals_check = asyncio.create_task(_loop(FIRST_CHECK_SECONDS, app.state.renewals_stop),
                                                   name="renewals-check")


async def stop(app: Starlette) -> None:
    await stop_loops([app.state.renewals_check], app.state.renewals_stop)
