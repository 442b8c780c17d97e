"""Assessments' recurring job: each carer whose competency lapses within 30 days is assigned a
renewal. Pages and the API only read."""

from __future__ import annotations

from datetime import timedelta

from caretrack.assessments import service
from caretrack.core.logs import get_logger
from caretrack.core.queue import JobContext, job

log = get_logger("caretrack.assessments")


@job("assessments.assign_renewals", every=timedelta(minutes=5))
async def assign_renewals(ctx: JobContext) -> None:
    renewals = await service.check_renewals(ctx.at)
    if renewals:
        log.info("renewal check", renewals=renewals)
