from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyotp
import pytest

from caretrack.accounts.models import Role
from caretrack.booking.models import Appointment, AppointmentStatus
from tests.helpers import make_user


async def make_appointment(doctor, patient, *, starts_in: timedelta = timedelta(minutes=5),
                           minutes: int = 30, status: AppointmentStatus = AppointmentStatus.BOOKED) -> Appointment:
    starts = datetime.now(timezone.utc).replace(microsecond=0) + starts_in
    ends = starts + timedelta(minutes=minutes)
    return await Appointment.create(doctor=doctor, patient=patient, status=status,
                                    active=status != AppointmentStatus.CANCELLED, starts_at=starts, ends_at=ends,
                                    blocked_from=starts, blocked_until=ends, time_zone="Europe/London",
                                    fee_credits=10, booked_at=datetime.now(timezone.utc))


@pytest.fixture
async def people(database):
    doctor_secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "doc@example.org", name="Dr Dora", totp_secret=doctor_secret)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    stranger = await make_user(Role.PATIENT, "eve@example.org", name="Eve Elsewhere")
    carer = await make_user(Role.CARER, "cal@example.org", name="Cal Carer")
    return {"doctor": doctor, "doctor_secret": doctor_secret, "patient": patient, "stranger": stranger, "carer": carer}
