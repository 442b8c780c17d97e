"""Telehealth booking: doctor applications, availability, appointments (and slot holds),
per-doctor lock rows, calendar feeds."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from caretrack.accounts.models import User
    from caretrack.intake.models import ConsultationType


class ApplicationStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class DoctorProfile(Model):
    """A doctor's application and, once approved, their public profile (one per doctor).
    A rejected doctor may edit and re-apply: the status goes back to pending."""

    user = fields.OneToOneField("caretrack.User", related_name="doctor_profile", on_delete=fields.CASCADE,
                                primary_key=True)
    status = fields.CharEnumField(ApplicationStatus, max_length=16, default=ApplicationStatus.PENDING, db_index=True)
    licence_number = fields.CharField(max_length=64)
    licence_body = fields.CharField(max_length=120)
    licence_expires_on = fields.DateField()
    specialty = fields.CharField(max_length=80, db_index=True)
    languages = fields.CharField(max_length=200)  # comma-separated, lower-case ISO-ish names
    biography = fields.TextField()
    fee_credits = fields.IntField()
    document_name = fields.CharField(max_length=80, null=True)  # generated file name under data_dir
    document_original_name = fields.CharField(max_length=200, null=True)
    document_size = fields.IntField(null=True)
    submitted_at = fields.DatetimeField()
    reviewed_at = fields.DatetimeField(null=True)
    reviewed_by = fields.ForeignKeyField("caretrack.User", related_name="reviewed_applications", null=True,
                                         on_delete=fields.SET_NULL)
    rejection_reason = fields.TextField(null=True)

    class Meta:
        table = "doctor_profiles"


class Availability(Model):
    """An approved doctor's booking rules. Weekly hours are local times in time_zone:
    JSON list of {"weekday": 0-6 (Monday=0), "start": "09:00", "end": "17:00"}."""

    doctor = fields.OneToOneField("caretrack.User", related_name="availability", on_delete=fields.CASCADE,
                                  primary_key=True)
    time_zone = fields.CharField(max_length=64)
    weekly = fields.JSONField(default=list)
    consultation_minutes = fields.IntField(default=30)
    buffer_before_minutes = fields.IntField(default=0)
    buffer_after_minutes = fields.IntField(default=0)
    min_notice_minutes = fields.IntField(default=120)
    horizon_days = fields.IntField(default=30)
    cancel_cutoff_hours = fields.IntField(default=24)
    late_cancel_refund_percent = fields.IntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "doctor_availability"


class AvailabilityException(Model):
    """A local date that differs from the weekly hours: off (whole day when no times, or
    the given hours) or extra hours."""

    id = fields.IntField(primary_key=True)
    doctor = fields.ForeignKeyField("caretrack.User", related_name="availability_exceptions",
                                    on_delete=fields.CASCADE)
    on_date = fields.DateField()
    kind = fields.CharField(max_length=8)  # off | extra
    start = fields.CharField(max_length=5, null=True)  # "HH:MM" local
    end = fields.CharField(max_length=5, null=True)

    class Meta:
        table = "doctor_availability_exceptions"


class AppointmentStatus(StrEnum):
    HELD = "held"            # a 5-minute hold; blocks the slot until hold_expires_at
    BOOKED = "booked"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    EXPIRED = "expired"      # a hold that lapsed


ACTIVE_STATUSES = frozenset({AppointmentStatus.HELD, AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED,
                             AppointmentStatus.NO_SHOW})


class Appointment(Model):
    """One consultation: starts_at/ends_at is the consultation, and blocked_from/
    blocked_until adds the doctor's buffers, and no two active rows of one doctor may
    overlap there (PostgreSQL exclusion constraint, migration 0003; a per-doctor lock row
    on SQLite). active is true for held/booked/completed/no-show."""

    id = fields.IntField(primary_key=True)
    doctor = fields.ForeignKeyField("caretrack.User", related_name="doctor_appointments", on_delete=fields.RESTRICT)
    patient = fields.ForeignKeyField("caretrack.User", related_name="patient_appointments", on_delete=fields.RESTRICT)
    doctor_id: int  # the key columns, for the type checker
    patient_id: int
    status = fields.CharEnumField(AppointmentStatus, max_length=16, db_index=True)
    active = fields.BooleanField(default=True)
    starts_at = fields.DatetimeField(db_index=True)
    ends_at = fields.DatetimeField()
    blocked_from = fields.DatetimeField()
    blocked_until = fields.DatetimeField()
    time_zone = fields.CharField(max_length=64)  # the availability's zone at booking time
    hold_expires_at = fields.DatetimeField(null=True)
    fee_credits = fields.IntField(default=0)
    # The cancellation policy fixed at booking time.
    cancel_cutoff_hours = fields.IntField(default=24)
    late_cancel_refund_percent = fields.IntField(default=0)
    idempotency_key = fields.CharField(max_length=80, null=True)
    booked_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    cancelled_by = fields.ForeignKeyField("caretrack.User", related_name="cancelled_appointments", null=True,
                                          on_delete=fields.SET_NULL)
    cancel_reason = fields.CharField(max_length=300, null=True)
    refunded_credits = fields.IntField(default=0)
    completed_at = fields.DatetimeField(null=True)
    reschedule_count = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    # The consultation type the patient chose (caretrack.intake); none when the doctor has none.
    consultation_type: fields.ForeignKeyNullableRelation[ConsultationType] = fields.ForeignKeyField(
        "caretrack.ConsultationType", related_name="appointments", null=True, on_delete=fields.RESTRICT)
    consultation_type_id: int | None

    class Meta:
        table = "appointments"
        unique_together = (("patient", "idempotency_key"),)


class DoctorLock(Model):
    """One row per doctor, updated first in every transaction that makes a booking active:
    serialises one doctor's bookings on SQLite (where there is no exclusion constraint)."""

    doctor_id = fields.IntField(primary_key=True)
    version = fields.BigIntField(default=0)

    class Meta:
        table = "doctor_locks"


class CalendarFeed(Model):
    """A private calendar URL. The token is stored as its SHA-256 (for lookup) and sealed
    (so its owner can see the URL again); regenerating revokes the old one."""

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField("caretrack.User", related_name="calendar_feeds", on_delete=fields.CASCADE)
    token_hash = fields.CharField(max_length=64, unique=True)
    token_sealed = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "calendar_feeds"


def default_reminder_offsets() -> list[int]:
    return [24 * 60, 60]  # a day before, and an hour before


class ReminderPolicy(Model):
    """When patients and doctors are reminded of a consultation (one row, set by admins):
    `offsets` minutes before its start (JSON list), and a reminder that could not go out by
    `grace_minutes` after its moment (the platform was down) is skipped, never sent late."""

    id = fields.IntField(primary_key=True)  # always 1
    offsets: fields.JSONField[list[int]] = fields.JSONField(default=default_reminder_offsets)
    grace_minutes = fields.IntField(default=15)
    updated_at = fields.DatetimeField(null=True)
    updated_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="reminder_policy_changes", null=True, on_delete=fields.SET_NULL)
    updated_by_id: int | None

    class Meta:
        table = "reminder_policy"
