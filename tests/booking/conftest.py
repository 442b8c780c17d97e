"""Booking fixtures: approved doctors with published hours, patients with credits."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from caretrack.accounts.models import User
from caretrack.booking.models import ApplicationStatus, Availability, DoctorProfile
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic
from caretrack.payments import ledger

_n = itertools.count(1)
ALL_WEEK = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]


async def make_doctor(name: str | None = None, *, fee: int = 10, time_zone: str = "UTC", weekly=None,
                      licence_days: int = 365, specialty: str = "General practice", languages: str = "english",
                      **limits) -> User:
    n = next(_n)
    doctor = await User.create(email=f"doc{n}@example.test", full_name=name or f"Dr Test {n}", role=Role.DOCTOR,
                               time_zone=time_zone)
    await DoctorProfile.create(user=doctor, status=ApplicationStatus.APPROVED, licence_number=f"GMC{n:05d}",
                               licence_body="General Medical Council",
                               licence_expires_on=date.today() + timedelta(days=licence_days), specialty=specialty,
                               languages=languages, biography="A doctor who exists for the tests.", fee_credits=fee,
                               submitted_at=datetime.now(UTC))
    values = {"consultation_minutes": 30, "buffer_before_minutes": 0, "buffer_after_minutes": 0,
              "min_notice_minutes": 0, "horizon_days": 60, "cancel_cutoff_hours": 24,
              "late_cancel_refund_percent": 50, **limits}
    await Availability.create(doctor=doctor, time_zone=time_zone, weekly=ALL_WEEK if weekly is None else weekly,
                              **values)
    return doctor


async def make_patient(credits: int = 0, name: str | None = None, time_zone: str = "UTC") -> User:
    n = next(_n)
    patient = await User.create(email=f"pat{n}@example.test", full_name=name or f"Patient {n}", role=Role.PATIENT,
                                time_zone=time_zone)
    if credits:
        await give(patient, credits)
    return patient


async def make_patients(count: int, credits: int) -> list[User]:
    start = next(_n)
    for _ in range(count):
        next(_n)
    await User.bulk_create([User(email=f"bulk{start}-{i}@example.test", full_name=f"Bulk {i}", role=Role.PATIENT)
                            for i in range(count)])
    patients = await User.filter(email__startswith=f"bulk{start}-").order_by("id")
    async with atomic() as tx:
        for patient in patients:
            await ledger.transfer(tx.conn, ledger.GRANTS, ledger.credits(patient.id), credits, "grant", "tests")
    return patients


async def give(user: User, credits: int) -> None:
    async with atomic() as tx:
        await ledger.transfer(tx.conn, ledger.GRANTS, ledger.credits(user.id), credits, "grant", "tests")


def next_hour(hours: int = 48, at: datetime | None = None) -> datetime:
    """A whole hour `hours` after `at` (default now): a slot of the all-week, 30-minute availability."""
    at = at or datetime.now(UTC)
    return (at + timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
