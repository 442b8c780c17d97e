"""`caretrack demo`: one account per role (and later features' sample data). Idempotent:
an account that exists is left as it is."""

from __future__ import annotations

from datetime import UTC, datetime

from caretrack.accounts import passwords
from caretrack.accounts.models import User
from caretrack.booking.demo import create_demo_booking_data
from caretrack.care.demo import create_care_demo
from caretrack.core.audit.service import Actor
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.transaction import atomic

DEMO_ACCOUNTS = [
    ("admin@caretrack.example", "demo-admin-2026", Role.ADMIN, "Ada Admin"),
    ("doctor@caretrack.example", "demo-doctor-2026", Role.DOCTOR, "Dr Dana Doctor"),
    ("carer@caretrack.example", "demo-carer-2026", Role.CARER, "Cal Carer"),
    ("patient@caretrack.example", "demo-patient-2026", Role.PATIENT, "Pat Patient"),
]


async def create_demo_data(settings: Settings) -> list[tuple[str, str, str]]:
    for email, password, role, name in DEMO_ACCOUNTS:
        if await User.exists(email=email):
            continue
        async with atomic() as tx:
            user = await User.create(using_db=tx.conn, email=email, full_name=name, role=role,
                                     password_hash=passwords.hash_password(password),
                                     email_verified_at=datetime.now(UTC))
            await tx.audit(Actor(None, "cli"), "user.created_demo", "user", user.id, role=str(role))
    await create_demo_booking_data()
    await create_care_demo()
    return [(email, password, str(role)) for email, password, role, _ in DEMO_ACCOUNTS]
