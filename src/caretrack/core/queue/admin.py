"""What admins see of the queue and may do to it: counts, the jobs that need a person (dead,
failing), and a retry for a dead job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Q

from caretrack.core.audit.service import Actor
from caretrack.core.errors import NotFound, ValidationError
from caretrack.core.queue import store
from caretrack.core.queue.models import STATUSES, Job
from caretrack.core.transaction import atomic

PAGE_SIZE = 50


@dataclass(frozen=True)
class QueueView:
    counts: dict[str, int]
    jobs: list[Job]
    status: str | None
    page: int
    more: bool


async def queue_view(status: str | None, page: int = 1) -> QueueView:
    """Counts by status and one page of jobs: of `status`, or (None) those that need a
    person: dead ones and queued ones that have failed at least once."""
    if status is not None and status not in STATUSES:
        raise ValidationError(f"Unknown job status '{status}'; choose one of: {', '.join(STATUSES)}.")
    if page < 1:
        raise ValidationError("The page number starts at 1.")
    counts = {name: await Job.filter(status=name).count() for name in STATUSES}
    query = Job.filter(status=status) if status else Job.filter(
        Q(status="dead") | Q(status="queued", last_error__isnull=False))
    rows = await query.order_by("-id").offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
    return QueueView(counts, rows[:PAGE_SIZE], status, page, len(rows) > PAGE_SIZE)


async def do_retry(actor: Actor, job_id: int, *, at: datetime) -> Job:
    """Give a dead job a fresh set of attempts, due now."""
    async with atomic() as tx:
        job = await Job.filter(id=job_id).using_db(tx.conn).first()
        if job is None:
            raise NotFound("No such job.")
        if job.status != "dead":
            raise ValidationError(f"Only a dead job can be retried; job {job_id} is {job.status}.")
        await Job.filter(id=job_id, status="dead").using_db(tx.conn).update(
            status="queued", attempts=0, due_at=at, finished_at=None)
        await tx.audit(actor, "job.retried", "job", job_id, kind=job.kind, attempts=job.attempts)
        tx.after_commit(store.wake)
    await job.refresh_from_db()
    return job


async def prune_finished(before: datetime) -> int:
    """Delete the jobs that finished (other than dead) before `before`."""
    return await Job.filter(status__in=("done", "skipped", "cancelled"), finished_at__lt=before).delete()
