"""A package's rota as dates and instants: each entry (caretrack.care.models.RotaEntry) recurs on
some weekdays at a start time on the package's clock, for a length; an occurrence is one such
visit on one date, with its real instants (caretrack.care.zones, so a visit at 01:30 on the day
the clocks change is read as that module says). Intervals are start-inclusive, end-exclusive:
visits back to back do not overlap. Pure functions, shared by the services and the commands."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from caretrack.care import zones
from caretrack.care.models import CarePackage, RotaEntry
from caretrack.core.errors import ValidationError

EVERY_DAY = "1234567"  # ISO weekdays, Monday is 1
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_NAMES = {name.lower(): str(i + 1) for i, name in enumerate(DAY_NAMES)}
DEFAULT_LENGTH = 30  # minutes: what a visit time given as "HH:MM" (PackageIn.visit_times) becomes
MIN_LENGTH, MAX_LENGTH = 5, 12 * 60
# How far ahead a new or changed entry is compared with the carer's other visits: a year and a
# week covers every offset two zones' daylight-saving rules can put between them.
CLASH_HORIZON = timedelta(days=371)


def check_weekdays(value: Any) -> str:
    """Weekdays as ISO numbers (1-7), three-letter names, or text of them ("1,3,5", "Mon Tue",
    "12345") -> "135" (sorted, once each)."""
    parts: Iterable[Any]
    if isinstance(value, (list, tuple)):
        parts = value
    else:
        text = str(value or "").strip()
        parts = list(text) if text.isdigit() else [p for p in re.split(r"[,\s]+", text) if p]
    days = set()
    for part in parts:
        word = str(part).strip().lower()[:3] if not isinstance(part, int) else str(part)
        day = _NAMES.get(word, word)
        if day not in EVERY_DAY or len(day) != 1:
            raise ValidationError(f"'{str(part)[:12]}' is not a weekday (1-7 from Monday, or Mon to Sun).")
        days.add(day)
    if not days:
        raise ValidationError("Choose at least one weekday for the visit.")
    return "".join(sorted(days))


def weekday_label(days: str) -> str:
    """"12345" -> "Mon–Fri", "1234567" -> "every day", "135" -> "Mon, Wed, Fri"."""
    if days == EVERY_DAY:
        return "every day"
    numbers = [int(d) for d in days]
    if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{DAY_NAMES[numbers[0] - 1]}–{DAY_NAMES[numbers[-1] - 1]}"
    return ", ".join(DAY_NAMES[n - 1] for n in numbers)


def runs_on(package: CarePackage, day: date) -> bool:
    return package.starts_on <= day and (package.ends_on is None or day <= package.ends_on)


@dataclass(frozen=True)
class Occurrence:
    """One visit of a rota entry: on the package's `day`, from `starts_at` to `ends_at` (UTC)."""

    entry: RotaEntry
    package: CarePackage
    day: date
    starts_at: datetime
    ends_at: datetime

    @property
    def time(self) -> str:
        """The start on the package's clock ("09:30")."""
        return zones.wall_time(self.package, self.starts_at)

    @property
    def end_time(self) -> str:
        return zones.wall_time(self.package, self.ends_at)


def on_day(entry: RotaEntry, package: CarePackage, day: date) -> Occurrence | None:
    """The entry's visit on the package's `day`, if it has one that day."""
    if str(day.isoweekday()) not in entry.weekdays or not runs_on(package, day):
        return None
    starts = zones.instant(package, day, entry.start)
    return Occurrence(entry, package, day, starts, starts + timedelta(minutes=entry.length))


def occurrences(entry: RotaEntry, package: CarePackage, first: date, last: date) -> list[Occurrence]:
    """The entry's visits on the package's dates `first` to `last`, in order."""
    first = max(first, package.starts_on)
    if package.ends_on is not None:
        last = min(last, package.ends_on)
    found = []
    for offset in range((last - first).days + 1):
        occurrence = on_day(entry, package, first + timedelta(days=offset))
        if occurrence is not None:
            found.append(occurrence)
    return found


def first_overlap(mine: Sequence[Occurrence], theirs: Sequence[Occurrence]) -> tuple[Occurrence, Occurrence] | None:
    """The earliest pair (one of `mine`, one of `theirs`) whose real times overlap."""
    ordered = sorted(theirs, key=lambda o: o.starts_at)
    starts = [o.starts_at for o in ordered]
    longest = timedelta(minutes=MAX_LENGTH)
    for visit in sorted(mine, key=lambda o: o.starts_at):
        i = bisect.bisect_left(starts, visit.ends_at) - 1  # the last of theirs starting before it ends
        while i >= 0 and ordered[i].starts_at > visit.starts_at - longest:
            if ordered[i].ends_at > visit.starts_at:
                return visit, ordered[i]
            i -= 1
    return None
