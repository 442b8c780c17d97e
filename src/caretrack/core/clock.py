"""The one clock. Services take the instant they act at as `at=`; routes get it from `now(request)`,
which reads the app's clock, so a test can pin a whole app to a fixed instant."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def now(request: Any) -> datetime:
    """The instant a request acts at: the app's clock (`app.state.clock`, set by tests) or the wall clock."""
    return app_now(request.app)


def app_now(app: Any) -> datetime:
    """The app's clock (`app.state.clock`, set by tests) or the wall clock; for the app's own loops."""
    clock: Clock | None = getattr(app.state, "clock", None)
    return clock() if clock is not None else utcnow()


def zone_of(name: str | None) -> tzinfo:
    """A user's IANA zone (User.time_zone), or UTC when it is blank or unknown to this system."""
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def in_zone(instant: datetime, name: str | None) -> datetime:
    """`instant` on the wall clock of zone `name` (UTC when it is blank or unknown)."""
    return instant.astimezone(zone_of(name))


@functools.cache
def zone_names() -> frozenset[str]:
    """The IANA zones this system knows (a directory walk: once per process, not per request)."""
    return frozenset(available_timezones())
