from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyotp
import pytest

from caretrack.booking.models import Appointment, AppointmentStatus
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic
from caretrack.payments import ledger
from caretrack.site.app import create_app
from tests.conftest import base_settings, free_port, serve_in_loop, stop_serving
from tests.helpers import make_user
from tests.signalling.conftest import clients as clients  # a fixture, for the media-worker tests


async def make_appointment(doctor, patient, *, starts_in: timedelta = timedelta(minutes=5),
                           minutes: int = 30, status: AppointmentStatus = AppointmentStatus.BOOKED,
                           at: datetime | None = None) -> Appointment:
    """Starting `starts_in` after `at` (the wall clock unless a test pins it), and paid as a
    booking is: the fee waits in the doctor's escrow (a completion pays it out)."""
    starts = (at or datetime.now(UTC)).replace(microsecond=0) + starts_in
    ends = starts + timedelta(minutes=minutes)
    appointment = await Appointment.create(doctor=doctor, patient=patient, status=status,
                                           active=status != AppointmentStatus.CANCELLED, starts_at=starts,
                                           ends_at=ends, blocked_from=starts, blocked_until=ends,
                                           time_zone="Europe/London", fee_credits=10, booked_at=datetime.now(UTC))
    if status == AppointmentStatus.BOOKED:
        async with atomic() as tx:
            await ledger.transfer(tx.conn, ledger.GRANTS, ledger.escrow(doctor.id), appointment.fee_credits, "grant",
                                  "tests: the patient's payment", appointment_id=appointment.id)
    return appointment


@pytest.fixture
async def people(database):
    doctor_secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "doc@example.org", name="Dr Dora", totp_secret=doctor_secret)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    stranger = await make_user(Role.PATIENT, "eve@example.org", name="Eve Elsewhere")
    carer = await make_user(Role.CARER, "cal@example.org", name="Cal Carer")
    return {"doctor": doctor, "doctor_secret": doctor_secret, "patient": patient, "stranger": stranger, "carer": carer}


class MediaWorker:
    """A `caretrack media` process."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.env = env
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "caretrack", "media", "--port", str(self.port), "--id", self.name,
            env=self.env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        deadline = asyncio.get_running_loop().time() + 60
        async with httpx.AsyncClient() as probe:
            while asyncio.get_running_loop().time() < deadline:
                if self.process.returncode is not None:
                    stderr = (await self.process.stderr.read()).decode()
                    raise AssertionError(f"media worker {self.name} exited: {stderr}")
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get(f"http://127.0.0.1:{self.port}/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise AssertionError(f"media worker {self.name} did not start")

    async def consultations(self) -> int:
        async with httpx.AsyncClient() as probe:
            return (await probe.get(f"http://127.0.0.1:{self.port}/healthz")).json()["consultations"]

    async def stop(self, sig: int = signal.SIGTERM) -> str:
        if self.process is None or self.process.returncode is not None:
            return ""
        self.process.send_signal(sig)
        _, err = await asyncio.wait_for(self.process.communicate(), 30)
        return err.decode()


@pytest.fixture
async def scaled_out(pg_database_url, redis_url, tmp_path: Path) -> AsyncIterator[dict]:
    """The app with CARETRACK_MEDIA_MODE=workers on PostgreSQL and Redis, served in this loop,
    and two `caretrack media` processes ("wa", "wb")."""
    port = free_port()
    settings = base_settings(database_url=pg_database_url, redis_url=redis_url, media_mode="workers",
                             data_dir=tmp_path / "data", base_url=f"http://127.0.0.1:{port}")
    env = {**os.environ, "CARETRACK_ENVIRONMENT": "test", "CARETRACK_DATABASE_URL": pg_database_url,
           "CARETRACK_REDIS_URL": redis_url, "CARETRACK_MEDIA_MODE": "workers",
           "CARETRACK_SECRET_KEY": settings.secret_key, "CARETRACK_DATA_DIR": str(settings.data_dir)}
    workers = [MediaWorker("wa", env), MediaWorker("wb", env)]
    await asyncio.gather(*(w.start() for w in workers))
    app = create_app(settings)
    task, stop = await serve_in_loop(app, port)
    try:
        yield {"settings": settings, "url": settings.base_url, "workers": {w.name: w for w in workers}}
    finally:
        await stop_serving(task, stop)
        for worker in workers:
            await worker.stop()
