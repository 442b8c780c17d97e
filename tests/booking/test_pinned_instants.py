"""Booking at the pinned instants (before 10:00 UTC, a minute to midnight, daylight-saving change
days in London and New York): slots keep their local wall-clock hours, notice and holds count
real minutes, and the cancellation cutoff is 24 real hours, across a change."""

from __future__ import annotations

from collections import Counter
from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest

from caretrack.booking import service
from caretrack.booking.models import Appointment
from caretrack.booking.schemas import BookSlot, HoldSlot
from tests.booking.conftest import make_doctor, make_patient

MORNINGS = [{"weekday": d, "start": "09:00", "end": "12:00"} for d in range(7)]


@pytest.mark.parametrize("zone", ["Europe/London", "America/New_York"])
async def test_slots_holds_and_the_cancellation_cutoff_at_pinned_instants(database, now, zone):
    tz = ZoneInfo(zone)
    doctor = await make_doctor(time_zone=zone, weekly=MORNINGS, min_notice_minutes=60, fee=20)
    patient, other = await make_patient(credits=100, time_zone=zone), await make_patient(credits=100)
    slots = await service.list_slots(doctor.id, at=now, days=4)
    assert slots, f"no slots from {now} in {zone}"
    for slot in slots:
        local = slot.starts_at.astimezone(tz)
        assert time(9) <= local.time() < time(12) and local.minute in (0, 30), local
        assert slot.ends_at - slot.starts_at == timedelta(minutes=30)
        assert slot.starts_at >= now + timedelta(minutes=60)  # the notice, in real minutes
    per_day = Counter(s.starts_at.astimezone(tz).date() for s in slots)
    first_day = min(per_day)
    assert all(count == 6 for day, count in per_day.items() if day != first_day), per_day

    # a hold blocks others for five real minutes, then the slot is free again
    start = slots[-1].starts_at
    await service.do_hold(patient, HoldSlot(doctor_id=doctor.id, starts_at=start), at=now)
    with pytest.raises(service.SlotTaken):
        await service.do_hold(other, HoldSlot(doctor_id=doctor.id, starts_at=start),
                              at=now + timedelta(minutes=4, seconds=59))
    assert start in [s.starts_at for s in await service.list_slots(doctor.id, at=now + timedelta(minutes=5), days=4)]

    # booked, then cancelled either side of the cutoff: 24 real hours before the start
    booked = await service.do_book(database, patient, BookSlot(doctor_id=doctor.id, starts_at=start), at=now)
    appointment = await Appointment.get(id=booked.id)
    cutoff = start - timedelta(hours=24)
    assert service.refund_for(appointment, False, cutoff - timedelta(seconds=1)) == 20
    assert service.refund_for(appointment, False, cutoff) == 10
