"""Messaging fixtures: people with and without care relationships, and an API client per person."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from caretrack.accounts.models import User
from caretrack.accounts.sessions import cookie_name, create_session
from caretrack.booking.models import Appointment, AppointmentStatus
from caretrack.core.roles import Role
from tests.conftest import TEST_BASE_URL, base_settings
from tests.realtime.conftest import server as server  # the app on hypercorn, for /ws/events tests

# The instant the app acts at in these tests (the clock is pinned; sessions keep the wall clock).
T0 = datetime(2026, 3, 8, 23, 59, tzinfo=UTC)
_n = itertools.count(1)


async def person(role: Role, name: str, **fields) -> User:
    n = next(_n)
    user = await User.create(email=f"{role.value}{n}@example.test", full_name=name, role=role,
                             totp_enrolled_at=T0 if role in (Role.DOCTOR, Role.ADMIN) else None,
                             **fields)
    return user


async def booked(patient: User, doctor: User, *, status: AppointmentStatus = AppointmentStatus.BOOKED,
                 booked_at: datetime | None = T0) -> Appointment:
    starts = T0 + timedelta(days=next(_n))
    return await Appointment.create(doctor=doctor, patient=patient, status=status, starts_at=starts,
                                    ends_at=starts + timedelta(minutes=30), blocked_from=starts,
                                    blocked_until=starts + timedelta(minutes=30), time_zone="UTC",
                                    booked_at=booked_at, active=status != AppointmentStatus.CANCELLED)


@pytest.fixture
def settings(database_url, tmp_path):
    """Attachments go to this test's own data directory."""
    return base_settings(database_url=database_url, data_dir=tmp_path / "data")


@dataclass
class Clients:
    app: object
    opened: list

    async def of(self, user: User) -> httpx.AsyncClient:
        """An API and page client signed in as `user` (CSRF header and Origin as a browser sends)."""
        settings = self.app.state.settings
        secret, session = await create_session(user, settings, client_address="127.0.0.1", user_agent="tests",
                                               mfa_verified=True)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=TEST_BASE_URL,
                                   headers={"origin": TEST_BASE_URL, "x-csrf-token": session.csrf_token},
                                   cookies={cookie_name(settings): secret})
        client.csrf = session.csrf_token
        self.opened.append(client)
        return client


@pytest.fixture
async def clients(app):
    app.state.clock = lambda: T0
    made = Clients(app, [])
    yield made
    for client in made.opened:
        await client.aclose()


@dataclass
class Cast:
    patient: User
    doctor: User
    stranger: User        # another patient, no appointment with the doctor
    other_doctor: User    # never booked by the patient
    carer: User
    admin: User
    second_admin: User


@pytest.fixture
async def cast(app) -> Cast:
    people = Cast(
        patient=await person(Role.PATIENT, "Pat Patient"), doctor=await person(Role.DOCTOR, "Dr Dana"),
        stranger=await person(Role.PATIENT, "Sam Stranger"), other_doctor=await person(Role.DOCTOR, "Dr Other"),
        carer=await person(Role.CARER, "Cara Carer"), admin=await person(Role.ADMIN, "Ada Admin"),
        second_admin=await person(Role.ADMIN, "Bo Admin"),
    )
    await booked(people.patient, people.doctor)
    return people
