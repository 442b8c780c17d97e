"""Assessments' jobs: each carer whose competency lapses within 30 days is assigned a renewal;
carers are reminded of due dates; admins get a daily digest of lapsing competencies. Pages and
the API only read."""

from __future__ import annotations

from datetime import timedelta

from caretrack.assessments import service
from caretrack.assessments.service import reminders
from caretrack.core.logs import get_logger
from caretrack.core.queue import JobContext, job

log = get_logger("caretrack.assessments")


@job("assessments.assign_renewals", every=timedelta(minutes=5))
async def assign_renewals(ctx: JobContext) -> None:
    renewals = await service.check_renewals(ctx.at)
    if renewals:
        log.info("renewal check", renewals=renewals)


# A failed send is retried with backoff; a retry past the grace is skipped, never sent late.
job(reminders.REMIND, max_attempts=5)(reminders.send_due_reminder)
job(reminders.DIGEST, every=reminders.DIGEST_EVERY, offset=reminders.DIGEST_AT)(reminders.send_competency_digest)
