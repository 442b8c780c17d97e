"""Slots are computed date by date with that date's UTC offset (daylight-saving days)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest

from caretrack.booking.slots import Rules, free_slots, slot_at, slots_on
from caretrack.core.errors import ValidationError

UTC = UTC


def rules(zone: str, start="09:00", end="12:00", **kw) -> Rules:
    return Rules(time_zone=zone, weekly=[{"weekday": d, "start": start, "end": end} for d in range(7)], **kw)


@pytest.mark.parametrize("zone, before_change, change_day, after_change, offset_before, offset_after", [
    # spring forward: local 09:00 moves an hour earlier in UTC
    ("Europe/London", date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30), 0, 1),
    ("America/New_York", date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9), -5, -4),
    # fall back: an hour later in UTC
    ("Europe/London", date(2026, 10, 24), date(2026, 10, 25), date(2026, 10, 26), 1, 0),
    ("America/New_York", date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2), -4, -5),
])
def test_local_hours_keep_their_wall_clock_across_a_change(zone, before_change, change_day, after_change,
                                                          offset_before, offset_after):
    r = rules(zone)
    for day, offset in ((before_change, offset_before), (change_day, offset_after), (after_change, offset_after)):
        slots = slots_on(r, day)
        assert len(slots) == 6
        expected = datetime(day.year, day.month, day.day, 9, tzinfo=UTC) - timedelta(hours=offset)
        assert slots[0].starts_at == expected, (zone, day)
        assert slots[-1].ends_at == expected + timedelta(hours=3)


@pytest.mark.parametrize("zone, spring, autumn", [
    ("Europe/London", date(2026, 3, 29), date(2026, 10, 25)),
    ("America/New_York", date(2026, 3, 8), date(2026, 11, 1)),
])
def test_a_window_across_the_change_is_an_hour_shorter_or_longer(zone, spring, autumn):
    night = rules(zone, start="00:00", end="05:00", consultation_minutes=60)
    assert len(slots_on(night, spring)) == 4     # 5 wall-clock hours, 4 real ones
    assert len(slots_on(night, autumn)) == 6     # 6 real ones
    normal = spring - timedelta(days=7)
    assert len(slots_on(night, normal)) == 5
    # consecutive slots are always one real hour apart, even across the change
    for day in (spring, autumn):
        slots = slots_on(night, day)
        assert all(b.starts_at - a.starts_at == timedelta(hours=1) for a, b in pairwise(slots))


def test_midnight_end_and_days_off_and_extra_hours():
    r = Rules(time_zone="Europe/London", weekly=[{"weekday": 0, "start": "22:00", "end": "24:00"}],
              exceptions=[(date(2026, 6, 8), "off", None, None), (date(2026, 6, 9), "extra", "10:00", "11:00"),
                          (date(2026, 6, 15), "off", "22:30", "23:30")])
    monday = date(2026, 6, 1)
    assert [s.starts_at.hour for s in slots_on(r, monday)] == [21, 21, 22, 22]  # BST: 22:00 local = 21:00 UTC
    assert slots_on(r, date(2026, 6, 8)) == []                                   # a day off
    assert [s.starts_at.hour for s in slots_on(r, date(2026, 6, 9))] == [9, 9]   # extra hours on a Tuesday
    assert [(s.starts_at.hour, s.starts_at.minute) for s in slots_on(r, date(2026, 6, 15))] == [(21, 0), (22, 30)]


def test_notice_horizon_buffers_and_taken_time():
    r = rules("UTC", start="09:00", end="12:00", consultation_minutes=30, buffer_before_minutes=10,
              buffer_after_minutes=5, min_notice_minutes=60, horizon_days=1)
    now = datetime(2026, 6, 1, 8, 30, tzinfo=UTC)
    slots = free_slots(r, now, taken=[])
    assert slots[0].starts_at == datetime(2026, 6, 1, 9, 55, tzinfo=UTC)   # 09:10 is under an hour away
    assert slots[0].blocked_from == slots[0].starts_at - timedelta(minutes=10)
    assert all(s.starts_at <= now + timedelta(days=1) for s in slots)
    taken = [(datetime(2026, 6, 1, 10, 0, tzinfo=UTC), datetime(2026, 6, 1, 10, 1, tzinfo=UTC))]
    assert slots[0] not in free_slots(r, now, taken=taken)
    assert slot_at(r, datetime(2026, 6, 1, 9, 10, tzinfo=UTC)) is not None
    assert slot_at(r, datetime(2026, 6, 1, 9, 11, tzinfo=UTC)) is None


def test_bad_zone_and_times_are_named():
    with pytest.raises(ValidationError, match="Mars/Olympus"):
        slots_on(rules("Mars/Olympus"), date(2026, 1, 1))
    with pytest.raises(ValidationError, match="25:00"):
        slots_on(rules("UTC", start="25:00"), date(2026, 1, 1))
