"""The periodic check for missed tasks, started in the app's lifespan (caretrack.site.app)."""

from __future__ import annotations

from datetime import datetime

from starlette.applications import Starlette

from caretrack.care import service
from caretrack.core.logs import get_logger
from caretrack.core.loops import Periodic

CHECK_SECONDS = 300
FIRST_CHECK_SECONDS = 30.0  # after start-up settles
log = get_logger("caretrack.care")


async def periodic_check(at: datetime | None = None) -> None:
    missed = await service.check_missed(at)
    if missed:
        log.info("care check", missed=missed)


async def start(app: Starlette) -> None:
    # The pass is looked up when it runs (a test may replace it), the first delay at start.
    app.state.care_check = Periodic("care-check", lambda: periodic_check(), every=CHECK_SECONDS,
                                    first=FIRST_CHECK_SECONDS, log=log).start()


async def stop(app: Starlette) -> None:
    await app.state.care_check.stop()
