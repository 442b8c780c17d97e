"""Calendar files: one appointment as an .ics attachment, and each user's private feed."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event

from caretrack.accounts.models import User
from caretrack.booking.models import Appointment, AppointmentStatus, CalendarFeed
from caretrack.core import crypto
from caretrack.core.audit.service import Actor
from caretrack.core.clock import zone_of
from caretrack.core.errors import NotFound
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.transaction import atomic

PRODID = "-//CareTrack//Telehealth//EN"
SEALED = "calendar_feeds.token"


def _event(appointment: Appointment, doctor: User, patient: User, settings: Settings, viewer: User | None,
           cancelled: bool) -> Event:
    event = Event()
    host = settings.base_url.split("://", 1)[-1].split("/")[0]
    event.add("uid", f"appointment-{appointment.id}@{host}")
    event.add("dtstamp", datetime.now(UTC))
    # On the wall clock of the zone the doctor's hours were published in, named by TZID (the
    # calendar's VTIMEZONE says its offsets), so a calendar app shows the intended local hour.
    zone = zone_of(appointment.time_zone)
    event.add("dtstart", appointment.starts_at.astimezone(zone))
    event.add("dtend", appointment.ends_at.astimezone(zone))
    # No clinical detail: who, when, where to join.
    other = patient if viewer is not None and viewer.id == doctor.id else doctor
    title = f"Video consultation with {other.full_name}" if viewer is not None else \
        f"Video consultation: {doctor.full_name} and {patient.full_name}"
    event.add("summary", title)
    event.add("url", f"{settings.base_url}/appointments/{appointment.id}")
    event.add("location", f"{settings.base_url}/consultations/{appointment.id}")
    event.add("description", f"Join the video consultation: {settings.base_url}/consultations/{appointment.id}\n"
                             f"The appointment: {settings.base_url}/appointments/{appointment.id}")
    event.add("sequence", appointment.reschedule_count + (1 if cancelled else 0))
    event.add("status", "CANCELLED" if cancelled or appointment.status == AppointmentStatus.CANCELLED else "CONFIRMED")
    return event


def _with_zones(calendar: Calendar, appointments: list[Appointment]) -> bytes:
    """The calendar with a VTIMEZONE for each zone its events name, covering their dates only."""
    if appointments:
        first = min(a.starts_at for a in appointments) - timedelta(days=370)
        last = max(a.ends_at for a in appointments) + timedelta(days=370)
        calendar.add_missing_timezones(first.date(), last.date())
    return calendar.to_ical()


def appointment_ics(appointment: Appointment, doctor: User, patient: User, settings: Settings, *,
                    cancelled: bool = False, viewer: User | None = None) -> bytes:
    """One appointment (an email's attachment, or `viewer`'s download from its page); a
    cancellation is METHOD:CANCEL with STATUS:CANCELLED, so calendars remove it."""
    cancelled = cancelled or appointment.status == AppointmentStatus.CANCELLED
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    calendar.add_component(_event(appointment, doctor, patient, settings, viewer, cancelled))
    return _with_zones(calendar, [appointment])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def feed_url(settings: Settings, user: User) -> str | None:
    feed = await CalendarFeed.filter(user_id=user.id, revoked_at=None).order_by("-id").first()
    if feed is None:
        return None
    return f"{settings.base_url}/calendar/{crypto.unseal(feed.token_sealed, SEALED)}.ics"


async def do_regenerate_feed(settings: Settings, user: User) -> str:
    """A new private URL; the previous one stops working."""
    token = secrets.token_urlsafe(32)
    async with atomic() as tx:
        await CalendarFeed.filter(user_id=user.id, revoked_at=None).using_db(tx.conn) \
            .update(revoked_at=datetime.now(UTC))
        await CalendarFeed.create(using_db=tx.conn, user_id=user.id, token_hash=_digest(token),
                                  token_sealed=crypto.seal(token, SEALED))
        await tx.audit(Actor(user.id), "calendar_feed.regenerated", "user", user.id)
    return f"{settings.base_url}/calendar/{token}.ics"


async def do_revoke_feed(user: User) -> None:
    await CalendarFeed.filter(user_id=user.id, revoked_at=None).update(revoked_at=datetime.now(UTC))


async def feed_ics(settings: Settings, token: str) -> bytes:
    feed = await CalendarFeed.get_or_none(token_hash=_digest(token or ""), revoked_at=None).prefetch_related("user")
    if feed is None or not feed.user.is_active:
        raise NotFound("No such calendar.")
    user = feed.user
    query = Appointment.filter(status__in=[AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED,
                                           AppointmentStatus.CANCELLED])
    query = query.filter(doctor_id=user.id) if user.role == Role.DOCTOR else query.filter(patient_id=user.id)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "CareTrack appointments")
    appointments = await query.prefetch_related("doctor", "patient").order_by("-starts_at").limit(500)
    for appointment in appointments:
        calendar.add_component(_event(appointment, appointment.doctor, appointment.patient, settings, user,
                                      appointment.status == AppointmentStatus.CANCELLED))
    return _with_zones(calendar, list(appointments))
