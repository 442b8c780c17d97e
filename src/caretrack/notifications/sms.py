"""Text messages: written into outbound_sms inside the caller's transaction and handed to
the provider by the `sms.deliver` job (notifications/jobs.py). Without a provider (the
embedded default, CARETRACK_SMS_PROVIDER=none) each is kept as `stored`, and admins read it
on /admin/outbound, as they read emails without SMTP.

A message reaches the provider at least once: when a worker dies between the provider's
answer and our commit, the job runs again and the message is sent again (the provider's API
has no idempotency key). Everything else (a refusal, a retry, the provider's status
callbacks arriving late or out of order) leaves one message with one final state.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime

from caretrack.core import crypto
from caretrack.core.errors import ValidationError
from caretrack.core.logs import get_logger
from caretrack.core.transaction import Tx, atomic
from caretrack.notifications.models import OutboundSms
from caretrack.notifications.providers import ProviderRefused, ProviderUnavailable, Twilio

log = get_logger("caretrack.notifications.sms")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
MAX_BODY = 1600  # the provider's limit: ten concatenated segments
JOB = "sms.deliver"
MAX_ATTEMPTS = 12  # with the job queue's backoff, about a day of retries

# How far along a message is: a status callback only ever moves it forward.
_RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}
# The provider's message states, as ours (None: not news once it has accepted the message).
_PROVIDER_STATUS: dict[str, str | None] = {
    "accepted": None, "scheduled": None, "queued": None, "sending": None,
    "sent": "sent", "delivered": "delivered", "read": "delivered",
    "undelivered": "undelivered", "failed": "failed", "canceled": "failed",
}


class DeliveryDeferred(Exception):
    """Try again later (the provider is down or slow); the reason is kept as last_error."""


class DeliveryRefused(Exception):
    """This message will never be sent as it is; it is `failed` with the reason."""


SEALED = "outbound_sms.to_number"


def number_of(text: OutboundSms) -> str:
    """The number a text was (or is to be) sent to, unsealed."""
    return crypto.unseal(text.to_number, SEALED) or ""


def masked(number: str) -> str:
    """'+447911123456' -> '+44 ••• 3456': enough for an admin to tell texts apart, not a
    person's phone number on a page every admin reads."""
    return f"{number[:3]} ••• {number[-4:]}" if len(number) > 7 else "•••"


def check_message(to_number: str, body: str) -> None:
    if not E164.fullmatch(to_number):
        raise ValidationError(f"'{to_number[:20]}' is not an E.164 phone number (+ and 7 to 15 digits); "
                              "normalise it with caretrack.core.phones first.")
    if not body.strip() or len(body) > MAX_BODY:
        raise ValidationError(f"A text message has 1 to {MAX_BODY} characters, not {len(body)}.")


async def send(tx: Tx, to_number: str, body: str, *, at: datetime, user_id: int | None = None) -> OutboundSms:
    """Queue a text message in the caller's transaction; the `sms.deliver` job sends it once
    the transaction has committed. `body` is sent as given: callers keep it free of PHI."""
    check_message(to_number, body)
    sms = await OutboundSms.create(using_db=tx.conn, to_number=crypto.seal(to_number, SEALED),
                                   to_hint=masked(to_number), body=body, status="queued",
                                   created_at=at, user_id=user_id)
    await tx.defer(JOB, {"sms_id": sms.id}, due=at, key=f"sms:{sms.id}")
    return sms


async def deliver(sms_id: int, provider: Twilio | None, *, at: datetime, final: bool,
                  before_send: Callable[[], Awaitable[None]] | None = None,
                  finish: Callable[[Tx], Awaitable[None]] | None = None) -> str:
    """Hand one queued message to the provider (or store it, without one); its new status.
    Raises DeliveryDeferred to be retried (on the `final` attempt the message is `failed`
    instead) and DeliveryRefused when the provider refuses it for good. The job passes
    `before_send` (its lease check, just before the provider is called) and `finish` (its
    completion, committed with the stored or sent mark)."""
    sms = await OutboundSms.get_or_none(id=sms_id)
    if sms is None:
        raise DeliveryRefused(f"Text message {sms_id} no longer exists.")
    if sms.status not in ("queued", "sending"):
        raise DeliveryRefused(f"Text message {sms_id} is already {sms.status}.")
    if provider is None:
        async with atomic() as tx:
            await OutboundSms.filter(id=sms.id).using_db(tx.conn).update(status="stored")
            if finish is not None:
                await finish(tx)
        return "stored"
    await OutboundSms.filter(id=sms.id).update(status="sending")
    attempts = sms.attempts + 1
    if before_send is not None:
        await before_send()
    try:
        accepted = await provider.send(number_of(sms), sms.body)
    except ProviderRefused as exc:
        await OutboundSms.filter(id=sms.id).update(status="failed", attempts=attempts, last_error=str(exc)[:500])
        log.warning("sms refused by the provider", sms_id=sms.id, error=str(exc)[:200])
        raise DeliveryRefused(str(exc)) from None
    except ProviderUnavailable as exc:
        status = "failed" if final else "queued"
        await OutboundSms.filter(id=sms.id).update(status=status, attempts=attempts, last_error=str(exc)[:500])
        log.warning("sms delivery failed", sms_id=sms.id, attempts=attempts, final=final, error=str(exc)[:200])
        raise DeliveryDeferred(str(exc)) from None
    status = _PROVIDER_STATUS.get(accepted.status) or "sent"
    async with atomic() as tx:
        await OutboundSms.filter(id=sms.id).using_db(tx.conn).update(
            status=status, provider_sid=accepted.sid, attempts=attempts, sent_at=at, last_error=None)
        if finish is not None:
            await finish(tx)
    return status


async def apply_status(sid: str, provider_status: str, error_code: str | None) -> bool | None:
    """The provider's status callback for message `sid`: whether it changed the message, or
    None when no message has that sid. A status moves a message forward only (callbacks can
    arrive late, twice, or out of order)."""
    sms = await OutboundSms.get_or_none(provider_sid=sid)
    if sms is None:
        return None
    status = _PROVIDER_STATUS.get(provider_status.lower())
    if status is None or _RANK[status] <= _RANK.get(sms.status, 3):
        return False
    changes: dict[str, str | None] = {"status": status}
    if status in ("undelivered", "failed"):
        changes["last_error"] = (f"The provider reports the message {provider_status}"
                                 + (f" (error {error_code[:12]})" if error_code else "") + ".")
    # Compare-and-set: of two callbacks racing, the one that read a stale status changes nothing.
    return bool(await OutboundSms.filter(id=sms.id, status=sms.status).update(**changes))


async def send_again(tx: Tx, original: OutboundSms, *, at: datetime, to_number: str | None = None) -> OutboundSms:
    """A fresh copy of `original`, queued for delivery (the original keeps its history), to
    `to_number` when the caller looked up the person's current one."""
    return await send(tx, to_number or number_of(original), original.body, at=at, user_id=original.user_id)

