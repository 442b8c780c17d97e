"""Checks at save time, inside the action's transaction: the slot is one of the doctor's,
bookable now, and free (see the package's docstring for how overlaps cannot race)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from caretrack.accounts.models import User
from caretrack.booking import slots as slotlib
from caretrack.booking.models import Appointment, AppointmentStatus, Availability, DoctorLock, DoctorProfile
from caretrack.booking.service.availability import rules_for
from caretrack.booking.service.common import SlotTaken
from caretrack.core.errors import NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.transaction import Tx


@dataclass(frozen=True)
class Checked:
    profile: DoctorProfile
    availability: Availability
    slot: slotlib.Slot


async def check_slot(conn: BaseDBAsyncClient, doctor_id: int, starts_at: datetime, at: datetime) -> Checked:
    """Approval, licence, availability, minimum notice and horizon, for a start time."""
    profile = await DoctorProfile.get_or_none(user_id=doctor_id).using_db(conn)
    doctor = await User.get_or_none(id=doctor_id, role=Role.DOCTOR, is_active=True).using_db(conn)
    if doctor is None or profile is None or profile.status != "approved":
        raise NotFound(f"No bookable doctor with id {doctor_id}.")
    availability, rules = await rules_for(doctor_id, conn)
    earliest, latest = slotlib.bookable_range(rules, at)
    if starts_at < earliest:
        raise ValidationError(
            f"This doctor needs at least {rules.min_notice_minutes} minutes' notice; choose a later time.")
    if starts_at > latest:
        raise ValidationError(f"This doctor takes bookings at most {rules.horizon_days} days ahead.")
    slot = slotlib.slot_at(rules, starts_at)
    if slot is None:
        raise ValidationError(f"{starts_at.isoformat()} is not one of this doctor's slots.")
    if profile.licence_expires_on < slot.ends_at.date():
        raise ValidationError("This doctor's licence expires before that date; choose an earlier slot.")
    return Checked(profile, availability, slot)


async def serialise(tx: Tx, doctor_id: int) -> None:
    """On SQLite, take the write lock through the doctor's lock row before checking overlaps.
    PostgreSQL needs no lock: its exclusion constraint decides, and bookings of one doctor
    run in parallel until they collide."""
    if tx.conn.capabilities.dialect == "postgres":
        return
    if not await DoctorLock.filter(doctor_id=doctor_id).using_db(tx.conn).update(version=F("version") + 1):
        await tx.conn.execute_query(
            "INSERT INTO doctor_locks (doctor_id, version) VALUES (?, 1) ON CONFLICT (doctor_id) "
            "DO UPDATE SET version = version + 1", [doctor_id])


async def check_free(tx: Tx, doctor_id: int, slot: slotlib.Slot, at: datetime, exclude_id: int | None = None) -> None:
    """Expire lapsed holds in the way, then refuse when an active appointment overlaps."""
    await Appointment.filter(doctor_id=doctor_id, status=AppointmentStatus.HELD, hold_expires_at__lte=at,
                             active=True, blocked_from__lt=slot.blocked_until, blocked_until__gt=slot.blocked_from) \
        .using_db(tx.conn).update(status=AppointmentStatus.EXPIRED, active=False)
    clash = Appointment.filter(doctor_id=doctor_id, active=True, blocked_from__lt=slot.blocked_until,
                               blocked_until__gt=slot.blocked_from)
    if exclude_id is not None:
        clash = clash.exclude(id=exclude_id)
    if await clash.using_db(tx.conn).exists():
        raise SlotTaken("That time has just been taken; choose another slot.")


def is_overlap(exc: BaseException) -> bool:
    text = f"{exc} {exc.__cause__!r}"
    return "appointments_no_overlap" in text or "ExclusionViolation" in text
