"""Notification preferences (a channel per kind, email by default), the helpers other
domains call to reach a user on the channels they chose, and the admin's outbound list of
every email and text message with resend."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from caretrack.accounts.models import User
from caretrack.core import crypto
from caretrack.core.audit.service import SYSTEM, Actor
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.logs import get_logger
from caretrack.core.roles import Role
from caretrack.core.transaction import Tx, atomic
from caretrack.mail import service as mail
from caretrack.mail.models import OutboundEmail
from caretrack.notifications import sms
from caretrack.notifications.models import NotificationPreference, OutboundSms
from caretrack.notifications.schemas import (
    CHANNEL_SETS,
    DEFAULT_CHANNEL,
    KINDS_FOR_ROLE,
    LABELS,
    Channel,
    Kind,
    OutboundQuery,
    OutboundRow,
    PreferenceOut,
    PreferencesOut,
    PreferencesUpdate,
)

log = get_logger("caretrack.notifications")
SMS_NEEDS_PHONE = "SMS needs a phone number: add one to your profile (/account) first."
PAGE_SIZE = 50
RESENDABLE = {"email": frozenset({"failed", "dead", "stored"}), "sms": frozenset({"failed", "undelivered", "stored"})}


def kinds_for(user: User) -> tuple[Kind, ...]:
    return KINDS_FOR_ROLE[Role(user.role)]


def has_phone(user: User) -> bool:
    """Whether the profile holds a phone (the ciphertext's presence: nothing is decrypted)."""
    return bool(user.phone)


async def _chosen(user: User) -> dict[str, Channel]:
    rows = await NotificationPreference.filter(user_id=user.id)
    return {row.kind: Channel(row.channel) for row in rows}


async def preferences_view(user: User) -> PreferencesOut:
    chosen = await _chosen(user)
    return PreferencesOut(
        preferences=[PreferenceOut(kind=kind, label=LABELS[kind], channel=chosen.get(kind, DEFAULT_CHANNEL))
                     for kind in kinds_for(user)],
        sms_available=has_phone(user))


def check_preferences(user: User, command: PreferencesUpdate) -> None:
    """Each kind must be one the user's role gets; SMS needs a phone on the profile. A 422
    naming each wrong entry at `preferences.<kind>`."""
    problems: dict[str, str] = {}
    offered = kinds_for(user)
    for kind, channel in command.preferences.items():
        if kind not in offered:
            problems[f"preferences.{kind}"] = (f"{LABELS[kind]} are not sent to {user.role} accounts; yours are "
                                               f"{', '.join(offered)}.")
        elif "sms" in CHANNEL_SETS[channel] and not has_phone(user):
            problems[f"preferences.{kind}"] = SMS_NEEDS_PHONE
    if problems:
        raise ValidationError("; ".join(f"field '{k}': {v}" for k, v in problems.items()),
                              fields=[{"field": k, "message": v} for k, v in problems.items()])


async def do_set_preferences(user: User, command: PreferencesUpdate, client_address: str | None, *,
                             at: datetime) -> None:
    check_preferences(user, command)
    if not command.preferences:
        return
    async with atomic() as tx:
        for kind, channel in command.preferences.items():
            updated = await NotificationPreference.filter(user_id=user.id, kind=kind).using_db(tx.conn).update(
                channel=channel, updated_at=at)
            if not updated:
                await NotificationPreference.create(using_db=tx.conn, user_id=user.id, kind=kind, channel=channel,
                                                    updated_at=at)
        await tx.audit(Actor(user.id, client_address), "notifications.preferences", "user", user.id,
                       preferences={str(k): str(v) for k, v in command.preferences.items()})


async def channels_for(user: User, kind: Kind | str) -> set[str]:
    """The channels `user` chose for `kind`: {"email"} by default, {"email", "sms"} for
    both, set() when they opted out. A choice of SMS made when the profile had a phone falls
    back to email once the phone is gone, so a reminder is not lost."""
    row = await NotificationPreference.get_or_none(user_id=user.id, kind=Kind(kind))
    channels = set(CHANNEL_SETS[Channel(row.channel) if row else DEFAULT_CHANNEL])
    if "sms" in channels and not has_phone(user):
        channels.discard("sms")
        channels.add("email")
    return channels


EmailSpec = tuple[str, dict[str, Any], Iterable[tuple[str, str, bytes]]]


async def notify(tx: Tx, user: User, kind: Kind | str, *, at: datetime, email: EmailSpec | None = None,
                 sms_text: str | None = None) -> set[str]:
    """Send one notification on the channels `user` chose for `kind`, in the caller's
    transaction; returns the channels used.

    `email` is (template, context, attachments) for mail.send. `sms_text` is the minimal
    text: an SMS travels unencrypted through the provider and the carriers and shows on a
    locked screen, so it must never carry PHI beyond what the user opted into — no diagnosis,
    no clinician's or patient's name, no message content; a time and a link to sign in are
    enough ("CareTrack: reminder of your appointment at 09:00. Details: <link>"). The
    details belong in the email or behind the link. A channel the caller gives nothing for
    is skipped (no SMS without `sms_text`)."""
    used: set[str] = set()
    channels = await channels_for(user, kind)
    if "sms" in channels and sms_text is not None:
        number = crypto.unseal(user.phone, "users.phone")
        await tx.audit(SYSTEM, "phi.read", "user", user.id, fields=["phone"], purpose=f"sms {kind}")
        if number and sms.E164.fullmatch(number):
            await sms.send(tx, number, sms_text, at=at, user_id=user.id)
            used.add("sms")
        else:  # saved before numbers were normalised: reach them by email, and say so (not the number)
            log.warning("sms skipped: the profile's phone is not in E.164 form", user_id=user.id, kind=str(kind))
            channels = channels | {"email"}
    if "email" in channels and email is not None:
        template, context, attachments = email
        await mail.send(tx, user.email, template, context, attachments)
        used.add("email")
    return used


# --- the admin's outbound list -----------------------------------------------------------------


@dataclass
class OutboundPage:
    rows: list[OutboundRow]
    page: int
    has_next: bool


async def _current_number(tx: Tx, text: OutboundSms) -> str:
    """Where a resent text goes: the person's phone as it is now (they may have changed it or
    removed it since: then the resend is refused), or the original number for a text that
    was sent to no user."""
    if text.user_id is None:
        return sms.number_of(text)
    user = await User.filter(id=text.user_id).using_db(tx.conn).first()
    number = crypto.unseal(user.phone, "users.phone") if user is not None and user.phone else None
    await tx.audit(SYSTEM, "phi.read", "user", text.user_id, fields=["phone"], purpose="sms resend")
    if not number or not sms.E164.fullmatch(number):
        raise Conflict("The person this text was for has no valid phone number on their profile any more; "
                       "it cannot be sent again.")
    return number


def _email_row(email: OutboundEmail) -> OutboundRow:
    return OutboundRow(channel="email", id=email.id, to=email.to_address, summary=email.subject,
                       status=email.status, attempts=email.attempts, last_error=email.last_error,
                       created_at=email.created_at, can_resend=email.status in RESENDABLE["email"])


def _sms_row(text: OutboundSms) -> OutboundRow:
    return OutboundRow(channel="sms", id=text.id, to=text.to_hint, summary=text.body,
                       status=text.status, attempts=text.attempts, last_error=text.last_error,
                       created_at=text.created_at, can_resend=text.status in RESENDABLE["sms"])


async def outbound(query: OutboundQuery, page_size: int = PAGE_SIZE) -> OutboundPage:
    """Every email and text message, newest first, filtered by channel and state. Each table
    gives its newest (page × size + 1) rows; merged, they hold the page and tell whether
    another follows."""
    wanted = query.page * page_size + 1
    rows: list[OutboundRow] = []
    if query.channel in ("all", "email"):
        emails = OutboundEmail.all() if not query.state else OutboundEmail.filter(status=query.state)
        rows += [_email_row(e) for e in await emails.order_by("-created_at", "-id").limit(wanted)]
    if query.channel in ("all", "sms"):
        texts = OutboundSms.all() if not query.state else OutboundSms.filter(status=query.state)
        rows += [_sms_row(t) for t in await texts.order_by("-created_at", "-id").limit(wanted)]
    rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    start = (query.page - 1) * page_size
    return OutboundPage(rows[start:start + page_size], query.page, len(rows) > start + page_size)


async def do_resend(admin: User, channel: str, item_id: int, client_address: str | None, *,
                    at: datetime) -> OutboundRow:
    """Queue a fresh delivery of a failed, dead or stored email or text message (audited);
    the new row."""
    async with atomic() as tx:
        if channel == "email":
            email = await OutboundEmail.filter(id=item_id).using_db(tx.conn).first()
            if email is None:
                raise NotFound(f"No email with id {item_id}.")
            _check_resendable("email", email.status)
            row = _email_row(await mail.send_again(tx, email))
        elif channel == "sms":
            text = await OutboundSms.filter(id=item_id).using_db(tx.conn).first()
            if text is None:
                raise NotFound(f"No text message with id {item_id}.")
            _check_resendable("sms", text.status)
            row = _sms_row(await sms.send_again(tx, text, at=at, to_number=await _current_number(tx, text)))
        else:
            raise NotFound(f"No outbound channel '{channel[:20]}'; it is email or sms.")
        await tx.audit(Actor(admin.id, client_address), "outbound.resend", channel, item_id, new_id=row.id)
    return row


def _check_resendable(channel: str, status: str) -> None:
    if status not in RESENDABLE[channel]:
        states = sorted(RESENDABLE[channel])
        raise Conflict(f"Only a {', '.join(states[:-1])} or {states[-1]} {channel} can be sent again; "
                       f"this one is {status}.")
