"""Reading appointments: one (for whom it may be shown), a user's list, and who has booked whom."""

from __future__ import annotations

from datetime import datetime

from tortoise.expressions import Q

from caretrack.accounts.models import User
from caretrack.booking.models import Appointment, AppointmentStatus
from caretrack.booking.service.common import now
from caretrack.core import timetext
from caretrack.core.errors import NotFound
from caretrack.core.roles import Role


def is_participant(user: User, appointment: Appointment) -> bool:
    return user.id in (appointment.patient_id, appointment.doctor_id)


async def get_appointment(user: User, appointment_id: int) -> Appointment:
    """The appointment, for its patient, its doctor or an admin; 404 for anyone else (and an
    expired hold for its doctor)."""
    appointment = await Appointment.get_or_none(id=appointment_id).prefetch_related("doctor", "patient")
    if appointment is None or not (is_participant(user, appointment) or user.role == Role.ADMIN):
        raise NotFound(f"No appointment with id {appointment_id}.")
    # An expired hold stays its patient's, so its page can say it expired; it was never the
    # doctor's appointment.
    if appointment.status == AppointmentStatus.EXPIRED and user.role != Role.ADMIN \
            and user.id != appointment.patient_id:
        raise NotFound(f"No appointment with id {appointment_id}.")
    return appointment


def hold_expired(appointment: Appointment, at: datetime) -> bool:
    """A hold that lapsed: marked expired, or still held past its time."""
    return appointment.status == AppointmentStatus.EXPIRED or (
        appointment.status == AppointmentStatus.HELD and appointment.hold_expires_at is not None
        and appointment.hold_expires_at <= at)


def expired_hold_notice(appointment: Appointment, zone: str) -> str:
    """What a lapsed hold's page and API say about it (times in the reader's zone)."""
    return (f"This hold expired at {timetext.show(appointment.hold_expires_at, zone, 'at')}, and the time was "
            "released; choose a time again from the doctor's free slots.")


async def list_appointments(user: User, *, upcoming: bool | None = None, limit: int = 100,
                            at: datetime | None = None) -> list[Appointment]:
    at = at or now()
    query = Appointment.filter(status__in=[AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED,
                                           AppointmentStatus.NO_SHOW, AppointmentStatus.CANCELLED])
    query = query.filter(doctor_id=user.id) if user.role == Role.DOCTOR else query.filter(patient_id=user.id)
    if upcoming is True:
        query = query.filter(ends_at__gt=at, status=AppointmentStatus.BOOKED).order_by("starts_at")
    elif upcoming is False:
        query = query.filter(Q(ends_at__lte=at) | ~Q(status=AppointmentStatus.BOOKED)).order_by("-starts_at")
    else:
        query = query.order_by("-starts_at")
    return await query.prefetch_related("doctor", "patient").limit(limit)


async def has_consultation(doctor_id: int, patient_id: int) -> bool:
    """The patient has a consultation with the doctor that stands or took place (booked,
    completed, no-show): what makes the two correspondents. A booking cancelled before it
    took place does not (book, cancel for a refund, and message any doctor)."""
    return await Appointment.filter(doctor_id=doctor_id, patient_id=patient_id, status__in=(
        AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW)).exists()


async def doctor_has_patient(doctor_id: int, patient_id: int) -> bool:
    """A doctor may see a patient's profile once the patient has booked them (any booking
    that was not just a hold)."""
    return await Appointment.filter(doctor_id=doctor_id, patient_id=patient_id, booked_at__isnull=False).exists()
