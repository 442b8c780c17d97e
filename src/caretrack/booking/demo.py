"""Demo data for telehealth: the demo doctor approved with weekday hours, the demo patient
with credits. Idempotent: what exists is left as it is."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from caretrack.accounts.models import User
from caretrack.booking.models import ApplicationStatus, Availability, DoctorProfile
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic
from caretrack.payments import ledger

DEMO_CREDITS = 200


async def create_demo_booking_data() -> None:
    async with atomic() as tx:
        for doctor in await User.filter(role=Role.DOCTOR, email__endswith="@caretrack.example").using_db(tx.conn):
            if not await DoctorProfile.filter(user_id=doctor.id).using_db(tx.conn).exists():
                await DoctorProfile.create(
                    using_db=tx.conn, user_id=doctor.id, status=ApplicationStatus.APPROVED,
                    licence_number="DEMO-0001", licence_body="Demo Medical Council",
                    licence_expires_on=date.today() + timedelta(days=730), specialty="General practice",
                    languages="english", biography="A demo general practitioner for trying CareTrack out.",
                    fee_credits=20, submitted_at=datetime.now(UTC), reviewed_at=datetime.now(UTC))
            if not await Availability.filter(doctor_id=doctor.id).using_db(tx.conn).exists():
                await Availability.create(
                    using_db=tx.conn, doctor_id=doctor.id, time_zone="Europe/London",
                    weekly=[{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)],
                    consultation_minutes=30, buffer_after_minutes=5, min_notice_minutes=60, horizon_days=30)
        for patient in await User.filter(role=Role.PATIENT, email__endswith="@caretrack.example").using_db(tx.conn):
            if await ledger.balance(ledger.credits(patient.id), tx.conn) == 0:
                await ledger.transfer(tx.conn, ledger.GRANTS, ledger.credits(patient.id), DEMO_CREDITS, "grant",
                                      "Demo credits")
