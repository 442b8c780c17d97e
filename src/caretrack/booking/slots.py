"""Free slots, computed date by date in the doctor's zone with that date's UTC offset.

Pure functions: no database. A window is a local [start, end) on one local date; it is
turned into UTC instants with zoneinfo on that date, so a daylight-saving day has a window
an hour shorter or longer, and the slots inside it are spaced in real (UTC) time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from caretrack.core.clock import zone_names
from caretrack.core.errors import ValidationError

HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Rules:
    time_zone: str
    weekly: Sequence[dict]                      # [{"weekday": 0-6, "start": "HH:MM", "end": "HH:MM"}]
    exceptions: Sequence[tuple[date, str, str | None, str | None]] = ()  # (date, off|extra, start, end)
    consultation_minutes: int = 30
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    min_notice_minutes: int = 0
    horizon_days: int = 30

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.time_zone)

    @property
    def step(self) -> timedelta:
        return timedelta(minutes=self.buffer_before_minutes + self.consultation_minutes + self.buffer_after_minutes)


@dataclass(frozen=True)
class Slot:
    starts_at: datetime        # UTC
    ends_at: datetime
    blocked_from: datetime     # with the buffers
    blocked_until: datetime


def zone(name: str) -> ZoneInfo:
    if not name or name not in zone_names():
        raise ValidationError(f"'{name}' is not a time zone (for example Europe/London).")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"'{name}' is not a time zone (for example Europe/London).") from None


def parse_hhmm(value: str, what: str = "time") -> time | None:
    """A local time of day; "24:00" (the end of the day) is returned as None."""
    if not isinstance(value, str) or not HHMM.match(value):
        raise ValidationError(f"The {what} '{value}' is not a time as HH:MM (00:00 to 24:00).")
    if value == "24:00":
        return None
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def local_instant(day: date, at: time | None, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time on `day` (None = the next midnight).
    A time skipped by a spring-forward change takes the offset before it (fold=0)."""
    if at is None:
        return local_instant(day + timedelta(days=1), time(0), tz)
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def windows_on(rules: Rules, day: date) -> list[tuple[datetime, datetime]]:
    """The UTC windows of one local date: weekly hours minus days/hours off, plus extra hours."""
    tz = rules.zone
    spans: list[tuple[datetime, datetime]] = []
    for item in rules.weekly:
        if item["weekday"] == day.weekday():
            spans.append((local_instant(day, parse_hhmm(item["start"]), tz),
                          local_instant(day, parse_hhmm(item["end"]), tz)))
    off: list[tuple[datetime, datetime]] = []
    for on_date, kind, start, end in rules.exceptions:
        if on_date != day:
            continue
        if kind == "extra" and start and end:
            spans.append((local_instant(day, parse_hhmm(start), tz), local_instant(day, parse_hhmm(end), tz)))
        elif kind == "off":
            if start and end:
                off.append((local_instant(day, parse_hhmm(start), tz), local_instant(day, parse_hhmm(end), tz)))
            else:
                off.append((local_instant(day, time(0), tz), local_instant(day, None, tz)))
    result = _merge(s for s in spans if s[0] < s[1])
    for cut in off:
        result = _subtract(result, cut)
    return result


def _merge(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _subtract(spans: list[tuple[datetime, datetime]], cut: tuple[datetime, datetime]):
    out = []
    for start, end in spans:
        if cut[1] <= start or end <= cut[0]:
            out.append((start, end))
            continue
        if start < cut[0]:
            out.append((start, cut[0]))
        if cut[1] < end:
            out.append((cut[1], end))
    return out


def slots_on(rules: Rules, day: date) -> list[Slot]:
    """Every slot of one local date, ignoring bookings and notice: a slot's blocked range
    (consultation plus buffers) lies inside a window; slots follow each other by one step."""
    before = timedelta(minutes=rules.buffer_before_minutes)
    length = timedelta(minutes=rules.consultation_minutes)
    after = timedelta(minutes=rules.buffer_after_minutes)
    slots = []
    for window_start, window_end in windows_on(rules, day):
        blocked_from = window_start
        while blocked_from + before + length + after <= window_end:
            start = blocked_from + before
            slots.append(Slot(start, start + length, blocked_from, start + length + after))
            blocked_from += rules.step
    return slots


def bookable_range(rules: Rules, now: datetime) -> tuple[datetime, datetime]:
    """The earliest and latest start a patient may book now."""
    return now + timedelta(minutes=rules.min_notice_minutes), now + timedelta(days=rules.horizon_days)


def free_slots(rules: Rules, now: datetime, taken: Sequence[tuple[datetime, datetime]],
               start_day: date | None = None, days: int | None = None, limit: int = 200) -> list[Slot]:
    """Free, bookable slots from `start_day` (local) on, for `days` local dates (to the horizon
    by default). `taken` are the blocked ranges of the doctor's active appointments."""
    tz = rules.zone
    earliest, latest = bookable_range(rules, now)
    first = start_day or earliest.astimezone(tz).date()
    last = latest.astimezone(tz).date()
    if days is not None:
        last = min(last, first + timedelta(days=days - 1))
    found: list[Slot] = []
    day = first
    while day <= last and len(found) < limit:
        for slot in slots_on(rules, day):
            if slot.starts_at < earliest or slot.starts_at > latest:
                continue
            if any(slot.blocked_from < t_end and t_start < slot.blocked_until for t_start, t_end in taken):
                continue
            found.append(slot)
            if len(found) >= limit:
                break
        day += timedelta(days=1)
    return found


def slot_at(rules: Rules, starts_at: datetime) -> Slot | None:
    """The slot that starts at `starts_at`, if the availability has one then."""
    tz = rules.zone
    local_day = starts_at.astimezone(tz).date()
    for day in (local_day - timedelta(days=1), local_day, local_day + timedelta(days=1)):
        for slot in slots_on(rules, day):
            if slot.starts_at == starts_at:
                return slot
    return None
