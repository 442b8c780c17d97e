"""Care's recurring job: find the tasks whose window closed without a completion."""

from __future__ import annotations

from datetime import timedelta

from caretrack.care import service
from caretrack.core.logs import get_logger
from caretrack.core.queue import JobContext, job

log = get_logger("caretrack.care")


@job("care.check_missed", every=timedelta(minutes=5))
async def check_missed(ctx: JobContext) -> None:
    missed = await service.check_missed(ctx.at)
    if missed:
        log.info("care check", missed=missed)
