"""A package's clock. Care happens on the wall clock of the client's home: each package has an
IANA zone (CarePackage.time_zone; a new package takes the agency's, CARETRACK_CARE_TIME_ZONE),
and its days, task windows and visit times are local to that zone. Instants are stored in UTC.

Across a daylight-saving change a local day is 23 or 25 hours long; a wall time that does not
exist that day (01:30 when the clocks go forward at 01:00) is read as the instant the clocks
show it an hour later, and one that happens twice (01:30 when they go back) as the first."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

DAY_MINUTES = 24 * 60


class Zoned(Protocol):
    time_zone: str


def zone(package: Zoned) -> ZoneInfo:
    return ZoneInfo(package.time_zone or "UTC")


def local(package: Zoned, at: datetime) -> datetime:
    """The instant `at` on the package's wall clock."""
    return at.astimezone(zone(package))


def today(package: Zoned, at: datetime) -> date:
    """The package's date at the instant `at`."""
    return local(package, at).date()


def minute_of_day(package: Zoned, at: datetime) -> int:
    """Minutes since the package's midnight at `at`, as its clock reads them (09:30 -> 570)."""
    wall = local(package, at)
    return wall.hour * 60 + wall.minute


def instant(package: Zoned, day: date, minutes: int) -> datetime:
    """The UTC instant of `minutes` after midnight (0 to 1440) on the package's `day`."""
    if minutes >= DAY_MINUTES:
        day, minutes = day + timedelta(days=1), minutes - DAY_MINUTES
    wall = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=zone(package))
    # zoneinfo reads a wall time in a spring-forward gap with the offset before it, which is
    # the instant the clocks show that time an hour later; a repeated time, its first instant.
    return wall.astimezone(UTC)


def day_span(package: Zoned, first: date, last: date) -> tuple[datetime, datetime]:
    """The UTC instants from the package's midnight starting `first` to the one ending `last`."""
    return instant(package, first, 0), instant(package, last + timedelta(days=1), 0)


def wall_time(package: Zoned, at: datetime) -> str:
    """"09:30" on the package's clock."""
    return f"{local(package, at):%H:%M}"


def offsets(package: Zoned, start: datetime, end: datetime) -> list[tuple[datetime, timedelta]]:
    """The package's UTC offsets over [start, end): each pair is the instant an offset takes
    effect (the first is `start`) and the offset, so a day-by-day count can follow DST changes."""
    tz = zone(package)

    def offset_at(at: datetime) -> timedelta:
        return at.astimezone(tz).utcoffset() or timedelta(0)

    found = [(start, offset_at(start))]
    at = start
    while at < end:
        step = min(at + timedelta(days=1), end)
        if offset_at(step) == found[-1][1]:
            at = step
            continue
        low, high = at, step  # the change lies in (low, high]: find its second
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) // 2
            low, high = (middle, high) if offset_at(middle) == found[-1][1] else (low, middle)
        found.append((high, offset_at(high)))
        at = high
    return found
