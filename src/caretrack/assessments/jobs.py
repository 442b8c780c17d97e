"""The periodic renewal check, started in the app's lifespan (caretrack.site.app): each carer
whose competency lapses within 30 days is assigned a renewal. Pages and the API only read."""

from __future__ import annotations

from datetime import datetime

from starlette.applications import Starlette

from caretrack.assessments import service
from caretrack.core.logs import get_logger
from caretrack.core.loops import Periodic

CHECK_SECONDS = 300
FIRST_CHECK_SECONDS = 30.0  # after start-up settles
log = get_logger("caretrack.assessments")


async def assign_renewals(at: datetime | None = None) -> int:
    """One pass: assign the renewals that are due at `at` (now by default)."""
    renewals = await service.check_renewals(at)
    if renewals:
        log.info("renewal check", renewals=renewals)
    return renewals


async def start(app: Starlette) -> None:
    app.state.renewals_check = Periodic("renewals-check", lambda: assign_renewals(), every=CHECK_SECONDS,
                                        first=FIRST_CHECK_SECONDS, log=log).start()


async def stop(app: Starlette) -> None:
    await app.state.renewals_check.stop()
