"""Guests by link, no account: the doctor makes a single-use, expiring link for an
interpreter, a family member, a carer or another clinician; whoever opens it first (signed
out, or signed in: it is the same) gives a display name and their browser holds the seat
(a cookie, only its hash stored), until the call closes or the doctor revokes it.

A guest is a signalling principal of their own, "guest:<invite id>", which cannot collide
with a user's (digits). A guest sees the call and what is said in it while they are in it:
no appointment page, no patient record, no notes, no recordings, no chat from before.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Literal

from caretrack.accounts.models import User
from caretrack.accounts.sessions import digest
from caretrack.booking.models import Appointment
from caretrack.booking.zones import working_zone
from caretrack.consultations import service
from caretrack.consultations.models import GuestInvite
from caretrack.consultations.schemas import GuestInviteCreate, GuestJoin
from caretrack.core.audit.service import Actor
from caretrack.core.errors import NotFound, ValidationError
from caretrack.core.settings import Settings
from caretrack.core.transaction import atomic
from signalling import Principal, Refused, Seat, StoredChat
from signalling import protocol as wire

GUEST_INVITE_LIFETIME = timedelta(hours=24)
PREFIX = "guest:"
Status = Literal["open", "used", "revoked", "expired"]


def is_guest(principal: Principal) -> bool:
    return principal.id.startswith(PREFIX)


def invite_id_of(principal: Principal) -> int | None:
    rest = principal.id[len(PREFIX):]
    return int(rest) if is_guest(principal) and rest.isdigit() else None


def principal_of(invite: GuestInvite) -> Principal:
    """The guest as the call shows them: their name and what they are there as."""
    return Principal(f"{PREFIX}{invite.id}", f"{invite.display_name} ({invite.role.label.lower()})")


def status_of(invite: GuestInvite, at: datetime) -> Status:
    if invite.revoked_at is not None:
        return "revoked"
    if invite.redeemed_at is not None:
        return "used"
    return "expired" if invite.expires_at <= at else "open"


def seat_cookie_name(settings: Settings) -> str:
    return "__Host-caretrack_guest" if settings.https else "caretrack_guest"


# --- the doctor's side -----------------------------------------------------------------------


async def do_create_guest_invite(settings: Settings, user: User, appointment_id: int, command: GuestInviteCreate,
                                 *, at: datetime) -> tuple[GuestInvite, str]:
    """A new link (the invitation and the URL to give the guest); it expires after a day,
    or when the call's join window closes if that comes first."""
    access = await service._doctor_access(settings, user, appointment_id)
    if not access.open:
        raise ValidationError("This consultation is closed; a guest could not join it.")
    if at >= access.closes_at:
        raise ValidationError("This consultation's join window has ended; a guest could not join it.")
    secret = secrets.token_urlsafe(32)
    async with atomic() as tx:
        invite = await GuestInvite.create(
            using_db=tx.conn, appointment_id=appointment_id, token_hash=digest(secret), role=command.role,
            label=command.label, created_by=user, created_at=at,
            expires_at=min(at + GUEST_INVITE_LIFETIME, access.closes_at))
        await tx.audit(Actor(user.id), "consultation.guest_invited", "appointment", appointment_id,
                       invite=invite.id, role=command.role.value, label=command.label)
    return invite, f"{settings.base_url}/consultations/guest#{secret}"


async def list_guest_invites(settings: Settings, user: User, appointment_id: int) -> list[GuestInvite]:
    await service._doctor_access(settings, user, appointment_id)
    return await GuestInvite.filter(appointment_id=appointment_id).order_by("id")


async def do_revoke_guest_invite(settings: Settings, user: User, appointment_id: int, invite_id: int,
                                 *, at: datetime) -> GuestInvite:
    """The link no longer opens, and a guest who used it cannot join (or rejoin) the call."""
    await service._doctor_access(settings, user, appointment_id)
    async with atomic() as tx:
        invite = await GuestInvite.get_or_none(id=invite_id, appointment_id=appointment_id, using_db=tx.conn)
        if invite is None:
            raise NotFound(f"No guest link with id {invite_id} for this consultation.")
        if invite.revoked_at is None:
            invite.revoked_at = at
            await invite.save(using_db=tx.conn, update_fields=["revoked_at"])
            await tx.audit(Actor(user.id), "consultation.guest_revoked", "appointment", appointment_id,
                           invite=invite.id)
    return invite


# --- the guest's side ------------------------------------------------------------------------


async def do_redeem_guest_invite(command: GuestJoin, *, user: User | None, at: datetime,
                                 held_seat: str | None = None) -> tuple[GuestInvite, str | None]:
    """Open a link: the invitation and the new seat secret for this browser's cookie. The
    browser that already holds the link's seat (`held_seat`) gets the invitation again and
    no new secret; anyone else gets a 422 once the link is used."""
    async with atomic() as tx:
        invite = await GuestInvite.get_or_none(token_hash=digest(command.token), using_db=tx.conn)
        if invite is not None and invite.seat_hash is not None and held_seat \
                and secrets.compare_digest(invite.seat_hash, digest(held_seat)) and invite.revoked_at is None:
            return invite, None
        if invite is None or status_of(invite, at) != "open":
            raise ValidationError("This invitation link is invalid, used, revoked or expired; "
                                  "ask the doctor for a new one.")
        appointment = await Appointment.get(id=invite.appointment_id, using_db=tx.conn)
        if user is not None and user.id in (appointment.doctor_id, appointment.patient_id):
            raise ValidationError("You are already part of this consultation: open it from your appointments.")
        seat = secrets.token_urlsafe(32)
        claimed = await GuestInvite.filter(id=invite.id, redeemed_at=None, revoked_at=None).using_db(tx.conn).update(
            redeemed_at=at, guest_id=user.id if user else None, display_name=command.name, seat_hash=digest(seat))
        if not claimed:
            raise ValidationError("This invitation link has already been used.")
        await tx.audit(Actor(user.id if user else None), "consultation.guest_joined", "appointment", appointment.id,
                       invite=invite.id, name=command.name)
        await invite.refresh_from_db(using_db=tx.conn)
    return invite, seat


async def seat_invite(seat_secret: str | None) -> GuestInvite | None:
    """The redeemed, unrevoked invitation this browser's seat cookie holds, if any."""
    if not seat_secret or len(seat_secret) > 100:
        return None
    return await GuestInvite.get_or_none(seat_hash=digest(seat_secret), revoked_at=None)


async def seat_still_held(invite_id: int) -> bool:
    """Whether the invitation behind an open guest socket still stands (not revoked)."""
    return await GuestInvite.exists(id=invite_id, revoked_at=None)


async def guest_access(settings: Settings, invite: GuestInvite) -> service.CallAccess:
    appointment = await Appointment.get(id=invite.appointment_id).prefetch_related("doctor")
    # a guest has no profile: they read times on the clock of the doctor who invited them
    return await service.call_access(settings, appointment, "guest", zone=await working_zone(appointment.doctor))


async def guest_seat(settings: Settings, principal: Principal, consultation_id: str) -> Seat:
    """`authorize` for a guest principal: a seat in their invitation's consultation only,
    while it is not revoked and the call is open."""
    invite_id = invite_id_of(principal)
    invite = None if invite_id is None else await GuestInvite.get_or_none(id=invite_id, revoked_at=None)
    if invite is None or invite.redeemed_at is None:
        raise Refused(reason="your guest link was revoked; ask the doctor for a new one")
    if str(invite.appointment_id) != consultation_id:
        raise Refused(reason="your guest link is for another consultation")
    access = await guest_access(settings, invite)
    if not access.open:
        raise Refused(service.CLOSE_CLOSED, "this consultation is closed")
    async with atomic() as tx:
        await tx.audit(Actor(None), "consultation.guest_connected", "appointment", invite.appointment_id,
                       invite=invite.id)
    return Seat("guest", True, access.opens_at, access.closes_at, admitted=invite.admitted_at is not None,
                show=access.show)


def make_authorize(settings: Settings) -> Callable[[Principal, str], Awaitable[Seat]]:
    """The call's `authorize`: guests by their invitation, users by their appointment."""
    users = service.make_authorize(settings)

    async def authorize(principal: Principal, consultation_id: str) -> Seat:
        if is_guest(principal):
            return await guest_seat(settings, principal, consultation_id)
        seat: Seat = await users(principal, consultation_id)
        return seat

    return authorize


class CallHooks(service.CallHooks):
    """The call's hooks, for guests too: a guest's admission is kept on their invitation,
    their consent is audited against it; guests read the chat but do not post in it (a
    chat message's sender is an account)."""

    async def on_admit(self, consultation_id: str, host: Principal, admitted: Principal) -> None:
        invite_id = invite_id_of(admitted)
        if invite_id is None:
            return await super().on_admit(consultation_id, host, admitted)
        async with atomic() as tx:
            claimed = await GuestInvite.filter(id=invite_id, admitted_at=None).using_db(tx.conn).update(
                admitted_at=service.now())
            if claimed:
                await tx.audit(Actor(int(host.id)), "consultation.guest_admitted", "appointment",
                               int(consultation_id), invite=invite_id)
        return None

    async def on_recording_consent(self, consultation_id: str, principal: Principal, role: str,
                                   granted: bool) -> None:
        invite_id = invite_id_of(principal)
        if invite_id is None:
            return await super().on_recording_consent(consultation_id, principal, role, granted)
        async with atomic() as tx:
            await tx.audit(Actor(None), "recording.consent_granted" if granted else "recording.consent_withdrawn",
                           "appointment", int(consultation_id), role=role, invite=invite_id)
        return None

    async def on_chat(self, consultation_id: str, principal: Principal, text: str) -> StoredChat:
        if is_guest(principal):
            raise wire.ProtocolError(wire.CLOSE_REFUSED, "guests can read the chat but not post in it")
        return await super().on_chat(consultation_id, principal, text)
