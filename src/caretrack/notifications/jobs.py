"""Notifications' jobs: delivery of each queued text message (caretrack.notifications.sms)."""

from __future__ import annotations

from caretrack.core.queue import JobContext, Retry, Skipped, job
from caretrack.notifications import sms
from caretrack.notifications.providers import provider_for


@job(sms.JOB, max_attempts=sms.MAX_ATTEMPTS)
async def deliver_sms(ctx: JobContext) -> None:
    """Hand the message to the provider (or store it); a 5xx or no answer is retried with the
    queue's backoff, a refusal ends the job as skipped with the provider's reason."""
    try:
        await sms.deliver(ctx.payload["sms_id"], provider_for(ctx.settings), at=ctx.at,
                          final=ctx.attempt >= sms.MAX_ATTEMPTS, before_send=ctx.check_lease, finish=ctx.finish)
    except sms.DeliveryDeferred as exc:
        raise Retry(str(exc)) from None
    except sms.DeliveryRefused as exc:
        raise Skipped(str(exc)) from None
