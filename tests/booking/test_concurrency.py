"""Races through the service layer, on SQLite and PostgreSQL: one doctor's slot, one
patient's balance, one idempotency key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from caretrack.booking import service
from caretrack.booking.models import Appointment
from caretrack.booking.schemas import BookSlot
from caretrack.booking.service import bookings
from caretrack.core.errors import CareTrackError
from caretrack.payments import ledger
from caretrack.payments.ledger import InsufficientCredits
from tests.booking.conftest import make_doctor, make_patient, make_patients, next_hour


async def _no_overlaps(doctor_id: int) -> None:
    rows = await Appointment.filter(doctor_id=doctor_id, active=True).order_by("blocked_from")
    for a, b in pairwise(rows):
        assert a.blocked_until <= b.blocked_from, f"appointments {a.id} and {b.id} overlap"


async def test_200_concurrent_bookings_of_one_slot_give_one_success(database):
    doctor = await make_doctor(fee=10)
    patients = await make_patients(200, credits=10)
    start = next_hour()
    results = await asyncio.gather(*(service.do_book(database, p, BookSlot(doctor_id=doctor.id, starts_at=start))
                                    for p in patients),
                                   return_exceptions=True)
    booked = [r for r in results if isinstance(r, Appointment)]
    conflicts = [r for r in results if isinstance(r, service.SlotTaken)]
    others = [r for r in results if not isinstance(r, (Appointment, service.SlotTaken))]
    assert (len(booked), len(conflicts), others) == (1, 199, [])
    assert all(c.status_code == 409 and "taken" in c.message for c in conflicts)
    assert await Appointment.filter(doctor_id=doctor.id, active=True).count() == 1
    await _no_overlaps(doctor.id)
    winner = booked[0].patient_id
    # only the winner paid; every loser still has all their credits
    balances = {p.id: await ledger.balance(ledger.credits(p.id)) for p in patients}
    assert balances[winner] == 0
    assert all(b == 10 for pid, b in balances.items() if pid != winner)
    assert (await ledger.check_ledger()).ok


async def test_50_concurrent_bookings_with_credits_for_10_book_exactly_10(database):
    doctor = await make_doctor(fee=7)
    patient = await make_patient(credits=70)
    start = next_hour()
    starts = [start + timedelta(minutes=30 * i) for i in range(50)]
    results = await asyncio.gather(*(service.do_book(database, patient, BookSlot(doctor_id=doctor.id, starts_at=s))
                                    for s in starts),
                                   return_exceptions=True)
    booked = [r for r in results if isinstance(r, Appointment)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    others = [r for r in results if not isinstance(r, (Appointment, InsufficientCredits))]
    assert (len(booked), len(refused)) == (10, 40), others
    assert all(r.status_code == 402 for r in refused)
    assert await ledger.balance(ledger.credits(patient.id)) == 0
    assert await Appointment.filter(patient_id=patient.id, status="booked").count() == 10
    check = await ledger.check_ledger()
    assert check.ok, check


async def test_the_same_idempotency_key_retried_concurrently_charges_once(database):
    doctor = await make_doctor(fee=10)
    patient = await make_patient(credits=100)
    start = next_hour()
    results = await asyncio.gather(*(service.do_book(database, patient, BookSlot(doctor_id=doctor.id, starts_at=start),
                                                     idempotency_key="k-1")
                                     for _ in range(20)), return_exceptions=True)
    assert all(isinstance(r, Appointment) for r in results), results
    assert len({r.id for r in results}) == 1
    assert await ledger.balance(ledger.credits(patient.id)) == 90
    # a different request under the same key is refused, not silently answered
    with pytest.raises(CareTrackError, match="different booking"):
        await service.do_book(database, patient, BookSlot(doctor_id=doctor.id, starts_at=start + timedelta(hours=1)),
                              idempotency_key="k-1")


async def test_overlaps_through_buffers_are_refused(database):
    doctor = await make_doctor(buffer_after_minutes=10, buffer_before_minutes=5, weekly=[
        {"weekday": d, "start": "08:00", "end": "18:00"} for d in range(7)])
    a, b = await make_patient(credits=50), await make_patient(credits=50)
    at = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)  # before the day's hours: its first slots are free
    slots = await service.list_slots(doctor.id, at=at, days=3)
    first = slots[0]
    assert slots[1].starts_at - first.starts_at == timedelta(minutes=45)
    await service.do_book(database, a, BookSlot(doctor_id=doctor.id, starts_at=first.starts_at), at=at)
    with pytest.raises(service.SlotTaken):
        await service.do_book(database, b, BookSlot(doctor_id=doctor.id, starts_at=first.starts_at), at=at)
    await service.do_book(database, b, BookSlot(doctor_id=doctor.id, starts_at=slots[1].starts_at), at=at)
    await _no_overlaps(doctor.id)


async def test_postgres_exclusion_constraint_decides_without_the_service_check(pg_database_url, monkeypatch):
    """With the friendly pre-check switched off, PostgreSQL's constraint alone lets one of 30
    racing bookings through, and its violation reaches the caller as a 409."""
    from caretrack.core import crypto, db
    from tests.conftest import base_settings

    settings = base_settings(database_url=pg_database_url)
    crypto.configure(settings.phi_keys)
    await db.start(settings)
    try:
        async def no_check(*args, **kwargs):
            return None

        monkeypatch.setattr(bookings, "check_free", no_check)
        doctor = await make_doctor()
        patients = await make_patients(30, credits=10)
        start = next_hour()
        results = await asyncio.gather(*(service.do_book(settings, p, BookSlot(doctor_id=doctor.id, starts_at=start))
                                        for p in patients),
                                       return_exceptions=True)
        assert sum(isinstance(r, Appointment) for r in results) == 1
        assert sum(isinstance(r, service.SlotTaken) and r.status_code == 409 for r in results) == 29, results
        await _no_overlaps(doctor.id)
    finally:
        await db.stop()
