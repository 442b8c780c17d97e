"""One durable job queue for all deferred work (email, SMS, reminders, checks, pruning).

    @job("mail.deliver", max_attempts=15)          # in a domain's jobs.py
    async def deliver(ctx: JobContext) -> None: ...

    async with atomic() as tx:                     # in a service
        await tx.defer("mail.deliver", {"email_id": email.id}, key=f"mail:{email.id}")

Jobs commit with the change that causes them; a runner (caretrack.core.queue.runner) claims due
jobs with a lease, retries failures with exponential backoff and jitter, and marks those that
keep failing `dead` for admins to see."""

from caretrack.core.queue.registry import JobError, Retry, Skipped, job
from caretrack.core.queue.runner import JobContext, LeaseLost, Runner

__all__ = ["JobContext", "JobError", "LeaseLost", "Retry", "Runner", "Skipped", "job"]
