"""Instants as people read them: on the wall clock of the reader's zone, in a locale, and always
with the zone's name, so "09:05" never leaves the reader guessing which 09:05. Every page and
email formats times here (the templates' `show` and `show_day`).

Accounts have no locale yet (the translations issue adds one): until then every reader gets
DEFAULT_LOCALE, and callers that know better pass `locale`. Babel gives each locale its own
patterns ("09:05" and "Wed 2 Dec" in en_GB, "9:05 AM" and "Wed, Dec 2" in en_US).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from typing import Literal

from babel.dates import format_skeleton, format_time

from caretrack.core.clock import zone_of

DEFAULT_LOCALE = "en_GB"
Style = Literal["full", "short", "at", "time", "clock"]


def zone_name(name: str | None) -> str:
    """The zone a time is shown in: `name` when this system knows it, else UTC (as `zone_of`)."""
    return name if name and zone_of(name) is not UTC else "UTC"


def _clock(local: datetime, zone: tzinfo, locale: str) -> str:
    return format_time(local, "short", tzinfo=zone, locale=locale)


def show(instant: datetime | None, zone: str | None, style: Style = "full", locale: str = DEFAULT_LOCALE) -> str:
    """`instant` in zone `zone` (an IANA name; UTC when blank or unknown):

    - full:  "Wednesday, 2 December 2026, 09:05 (Europe/Berlin)"
    - short: "Wed 2 Dec, 09:05 (Europe/Berlin)"
    - at:    "09:05 (Europe/Berlin), Wed 2 Dec"
    - time:  "09:05 (Europe/Berlin)"
    - clock: "09:05", only where a heading or column names the zone beside it
    """
    if instant is None:
        return ""
    name = zone_name(zone)
    tz = zone_of(name)
    local = instant.astimezone(tz)
    clock = _clock(local, tz, locale)
    if style == "clock":
        return clock
    if style == "time":
        return f"{clock} ({name})"
    if style == "at":
        return f"{clock} ({name}), {format_skeleton('MMMEd', local, tzinfo=tz, locale=locale)}"
    if style == "short":
        return f"{format_skeleton('MMMEd', local, tzinfo=tz, locale=locale)}, {clock} ({name})"
    return f"{format_skeleton('yMMMMEEEEd', local, tzinfo=tz, locale=locale)}, {clock} ({name})"


def show_span(start: datetime, end: datetime, zone: str | None, locale: str = DEFAULT_LOCALE) -> str:
    """"Wednesday, 2 December 2026, 09:05–09:35 (Europe/Berlin)" (the end's date when it differs)."""
    name = zone_name(zone)
    tz = zone_of(name)
    first, last = start.astimezone(tz), end.astimezone(tz)
    day = format_skeleton("yMMMMEEEEd", first, tzinfo=tz, locale=locale)
    until = _clock(last, tz, locale)
    if last.date() != first.date():
        until = f"{format_skeleton('MMMEd', last, tzinfo=tz, locale=locale)}, {until}"
    return f"{day}, {_clock(first, tz, locale)}–{until} ({name})"


def show_day(day: date, locale: str = DEFAULT_LOCALE) -> str:
    """A local date as a heading: "Wednesday 2 December" (en_GB)."""
    return format_skeleton("MMMMEEEEd", datetime(day.year, day.month, day.day), locale=locale)
