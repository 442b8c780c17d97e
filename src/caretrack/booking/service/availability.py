"""A doctor's hours and booking rules, their exceptions, and the free slots they give."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from caretrack.accounts.models import User
from caretrack.booking import slots as slotlib
from caretrack.booking.applications import is_bookable
from caretrack.booking.models import Appointment, AppointmentStatus, Availability, AvailabilityException, DoctorProfile
from caretrack.booking.schemas import AvailabilityIn, ExceptionIn, WeeklyWindow
from caretrack.booking.service.common import now, utc
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Forbidden, NotFound, ValidationError
from caretrack.core.transaction import atomic
from caretrack.core.validation import Problems

LIMITS = {
    "consultation_minutes": (5, 240),
    "buffer_before_minutes": (0, 120),
    "buffer_after_minutes": (0, 120),
    "min_notice_minutes": (0, 60 * 24 * 14),
    "horizon_days": (1, 365),
    "cancel_cutoff_hours": (0, 24 * 14),
    "late_cancel_refund_percent": (0, 100),
}


def limit_label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def check_limit(name: str, number: int) -> int:
    low, high = LIMITS[name]
    if not low <= number <= high:
        raise ValidationError(f"{limit_label(name)} must be between {low} and {high}.")
    return number


def check_window(window: WeeklyWindow) -> None:
    begins = slotlib.parse_hhmm(window.start, "start time")
    ends = slotlib.parse_hhmm(window.end, "end time")
    if begins is None or (ends is not None and ends <= begins):
        raise ValidationError(f"On {slotlib.WEEKDAYS[window.weekday]} the window {window.start}-{window.end} "
                              "ends before it starts.")


async def _approved_profile(doctor: User) -> DoctorProfile:
    profile = await DoctorProfile.get_or_none(user_id=doctor.id)
    if profile is None or profile.status != "approved":
        raise Forbidden("Your doctor application must be approved before you publish hours.")
    return profile


async def do_set_availability(doctor: User, command: AvailabilityIn) -> Availability:
    await _approved_profile(doctor)
    problems = Problems()  # every wrong field at once
    with problems.check("time_zone"):
        slotlib.zone(command.time_zone)
    for index, window in enumerate(command.weekly):
        with problems.check(f"weekly.{index}"):
            check_window(window)
    for name in LIMITS:
        with problems.check(name):
            check_limit(name, getattr(command, name))
    problems.raise_any()
    weekly = sorted((w.model_dump() for w in command.weekly), key=lambda w: (w["weekday"], w["start"]))
    values = {"time_zone": command.time_zone, "weekly": weekly, **{name: getattr(command, name) for name in LIMITS}}
    async with atomic() as tx:
        current = await Availability.get_or_none(doctor_id=doctor.id).using_db(tx.conn)
        if current is None:
            availability = await Availability.create(using_db=tx.conn, doctor_id=doctor.id, **values)
        else:
            await Availability.filter(doctor_id=doctor.id).using_db(tx.conn).update(**values)
            availability = await Availability.get(doctor_id=doctor.id).using_db(tx.conn)
        await tx.audit(Actor(doctor.id), "availability.updated", "user", doctor.id)
    return availability


async def do_add_exception(doctor: User, command: ExceptionIn) -> AvailabilityException:
    await _approved_profile(doctor)
    start, end = (command.start or None), (command.end or None)
    if command.kind == "extra" and not (start and end):
        raise ValidationError("Extra hours need a start and an end time.")
    if (start is None) != (end is None):
        raise ValidationError("Give both a start and an end time, or neither for a whole day off.")
    if start and end:
        begins, ends = slotlib.parse_hhmm(start, "start time"), slotlib.parse_hhmm(end, "end time")
        if begins is None or (ends is not None and ends <= begins):
            raise ValidationError(f"The hours {start}-{end} end before they start.")
    async with atomic() as tx:
        item = await AvailabilityException.create(using_db=tx.conn, doctor_id=doctor.id, on_date=command.on_date,
                                                  kind=command.kind, start=start, end=end)
        await tx.audit(Actor(doctor.id), "availability.exception_added", "user", doctor.id,
                       on=str(command.on_date), kind=command.kind)
    return item


async def do_remove_exception(doctor: User, exception_id: int) -> None:
    deleted = await AvailabilityException.filter(id=exception_id, doctor_id=doctor.id).delete()
    if not deleted:
        raise NotFound(f"No exception with id {exception_id}.")


async def rules_for(doctor_id: int, conn: BaseDBAsyncClient | None = None) -> tuple[Availability, slotlib.Rules]:
    query = Availability.filter(doctor_id=doctor_id)
    exceptions = AvailabilityException.filter(doctor_id=doctor_id)
    if conn is not None:
        query, exceptions = query.using_db(conn), exceptions.using_db(conn)
    availability = await query.first()
    if availability is None:
        raise NotFound(f"Doctor {doctor_id} has not published any hours.")
    return availability, slotlib.Rules(
        time_zone=availability.time_zone, weekly=availability.weekly,
        exceptions=[(e.on_date, e.kind, e.start, e.end) for e in await exceptions],
        consultation_minutes=availability.consultation_minutes,
        buffer_before_minutes=availability.buffer_before_minutes,
        buffer_after_minutes=availability.buffer_after_minutes,
        min_notice_minutes=availability.min_notice_minutes, horizon_days=availability.horizon_days,
    )


def _blocking(at: datetime) -> Q:
    """Active rows that still block time at `at`: a lapsed hold does not."""
    return Q(active=True) & ~Q(status=AppointmentStatus.HELD, hold_expires_at__lte=at)


async def list_slots(doctor_id: int, *, at: datetime | None = None, start_day: date | None = None,
                     days: int | None = 14, limit: int = 200) -> list[slotlib.Slot]:
    at = at or now()
    profile = await DoctorProfile.get_or_none(user_id=doctor_id)
    if profile is None or not is_bookable(profile, at.date()):
        raise NotFound(f"No bookable doctor with id {doctor_id}.")
    _, rules = await rules_for(doctor_id)
    horizon_end = at + timedelta(days=rules.horizon_days + 1)
    taken = await Appointment.filter(_blocking(at), doctor_id=doctor_id, blocked_until__gt=at,
                                     blocked_from__lt=horizon_end).values_list("blocked_from", "blocked_until")
    slots = slotlib.free_slots(rules, at, [(utc(a), utc(b)) for a, b in taken], start_day, days, limit)
    return [s for s in slots if s.ends_at.date() <= profile.licence_expires_on]
