"""Care's jobs: the missed-task check, carers' visit reminders and the late- and missed-visit
alerts (each planned by a recurring job, each run by its own job at its moment)."""

from __future__ import annotations

from datetime import timedelta

from caretrack.care import service
from caretrack.care.service import reminders, visit_alerts, visits
from caretrack.core.logs import get_logger
from caretrack.core.queue import JobContext, job

log = get_logger("caretrack.care")


# On the minute (a grid from midnight), so a window closing at 10:00 is reported by 10:00:59
# whatever the runner's start time; the check itself is a fixed handful of queries.
@job("care.check_missed", every=timedelta(minutes=1), offset=timedelta(0))
async def check_missed(ctx: JobContext) -> None:
    missed = await service.check_missed(ctx.at)
    if missed:
        log.info("care check", missed=missed)


@job(reminders.PLAN, every=reminders.PLAN_EVERY)
async def plan_visit_reminders(ctx: JobContext) -> None:
    planned = await reminders.plan_visit_reminders(ctx.at)
    if planned:
        log.info("visit reminders planned", planned=planned)


# A failed send is retried with backoff; a retry past the grace is skipped, never sent late.
job(reminders.REMIND, max_attempts=5)(reminders.send_visit_reminder)


@job(visit_alerts.PLAN, every=visit_alerts.PLAN_EVERY)
async def plan_visit_alerts(ctx: JobContext) -> None:
    planned = await visit_alerts.plan_visit_alerts(ctx.at, visits.late_after(ctx.settings))
    if planned:
        log.info("visit alerts planned", planned=planned)


# A late or missed visit is raised once (marked done with its event); a failure is retried.
job(visit_alerts.LATE, max_attempts=5)(visit_alerts.raise_visit_alert)
job(visit_alerts.MISSED, max_attempts=5)(visit_alerts.raise_visit_alert)
