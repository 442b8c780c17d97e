"""Times of day in care plans: 'HH:MM' as minutes after midnight, and a package's visit
schedule. Shared by the commands (schemas) and the services."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from caretrack.care.models import CarePackage
from caretrack.core.errors import ValidationError

TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
MAX_VISITS = 12


def check_clock(value: Any, what: str) -> int:
    """'HH:MM' -> minutes after midnight."""
    text = str(value or "").strip()
    if text == "24:00":
        return 24 * 60
    match = TIME_RE.match(text)
    if not match:
        raise ValidationError(f"The {what} '{text[:10]}' is not a time of day (HH:MM).")
    return int(match.group(1)) * 60 + int(match.group(2))


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def check_visit_times(value: Any) -> str:
    """Visit times as a list or as text separated by commas or spaces -> 'HH:MM,HH:MM' sorted, once each."""
    parts: Iterable[Any]
    if isinstance(value, (list, tuple)):
        parts = [str(p) for p in value]
    else:
        parts = [p for p in re.split(r"[,\s]+", str(value or "")) if p]
    minutes = sorted({check_clock(p, "visit time") for p in parts})
    if len(minutes) > MAX_VISITS:
        raise ValidationError(f"A schedule has at most {MAX_VISITS} visits a day.")
    return ",".join(clock(m) for m in minutes)


def visit_times(package: CarePackage) -> list[str]:
    return [t for t in package.visit_times.split(",") if t]
